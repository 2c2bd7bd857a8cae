"""A job's Terraform working directory, its S3 backend settings and the shared plugin cache.

Invariants:
- The working directory is a fresh copy of ``templates/<set>/<template>/`` (symlinks
  followed, so the copy stands alone) plus ``terraform.tfvars.json`` (the mapper's) and
  ``runner.auto.tfvars.json`` (the runner's own variables, when given); no ``.tf`` file is
  ever generated or edited. It is removed when the job ends, unless it holds Terraform's
  ``errored.tfstate`` (applied state the backend never got): that one stays until the
  state is pushed back (:mod:`services.executor.recovery`).
- The backend is configured only with ``-backend-config`` key=value pairs; credentials
  reach Terraform through environment variables, never argv or files.
- Inits that may write to the shared plugin cache are serialized: an asyncio lock within
  the process and an ``fcntl`` file lock across runner processes. Only an init that can
  write nothing there goes without the lock, so runners sharing a cache do not queue behind
  each other: a configuration that needs no provider at all (the sandbox templates), or one
  whose template pins its providers (a ``.terraform.lock.hcl``) when every pinned package is
  in the cache already (recorded after its first init, each checked to be there still).
  Without a lock file Terraform may pick and download a newer release: always locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alethia import naming
from alethia.errors import FailedPrecondition
from alethia.runner_vars import RUNNER_TFVARS_FILE

TFVARS_FILE = "terraform.tfvars.json"
LOCK_FILE = ".terraform.lock.hcl"
# What Terraform writes when it cannot persist state to the backend after changing resources.
ERRORED_STATE = "errored.tfstate"

log = logging.getLogger(__name__)


def workspace_name(snapshot: dict[str, Any]) -> str:
    """``{zone_id}/{project}-{env}-{region}``: the unit that runs one job at a time."""
    return naming.workspace_key(
        str(snapshot.get("zone_id", "")),
        str(snapshot.get("project_name", "")),
        str(snapshot.get("environment", "")),
        str(snapshot.get("region", "")),
    )


def state_key(snapshot: dict[str, Any]) -> str:
    """The state object key: ``{zone_id}/{project}-{env}-{region}/terraform.tfstate``."""
    return naming.state_key(workspace_name(snapshot))


@dataclass(frozen=True)
class S3Backend:
    bucket: str
    region: str = "us-east-1"
    endpoint: str = ""  # empty: AWS S3
    access_key: str = ""
    secret_key: str = ""
    # Server-side encryption of the state object: ``encrypt`` (SSE-S3, or SSE-KMS with
    # ``kms_key_id``). The state holds every resource attribute, sensitive ones included.
    encrypt: bool = False
    kms_key_id: str = ""


def backend_config(backend: S3Backend, key: str) -> tuple[str, ...]:
    """The ``-backend-config`` pairs for the S3 backend (no credentials: see :func:`backend_env`).

    With a custom endpoint the store is S3-compatible (SeaweedFS, MinIO, Supabase): path-style
    addressing and no AWS-only validation calls.
    """
    pairs = [
        f"bucket={backend.bucket}",
        f"key={key}",
        f"region={backend.region}",
        "use_lockfile=true",
    ]
    if backend.encrypt or backend.kms_key_id:
        pairs.append("encrypt=true")
    if backend.kms_key_id:
        pairs.append(f"kms_key_id={backend.kms_key_id}")
    if backend.endpoint:
        pairs += [
            f'endpoints={{s3="{backend.endpoint}"}}',
            "use_path_style=true",
            "skip_credentials_validation=true",
            "skip_region_validation=true",
            "skip_requesting_account_id=true",
            "skip_metadata_api_check=true",
            "skip_s3_checksum=true",
        ]
    return tuple(pairs)


def backend_env(backend: S3Backend) -> dict[str, str]:
    """Environment that carries the S3 credentials to Terraform (empty: the default chain)."""
    env: dict[str, str] = {}
    if backend.access_key:
        env["AWS_ACCESS_KEY_ID"] = backend.access_key
        env["AWS_SECRET_ACCESS_KEY"] = backend.secret_key
    if backend.endpoint:
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def template_dir(templates_dir: Path, template_set: str, template: str) -> Path:
    """``templates/<set>/<template>/``; a clear error when it does not exist."""
    if not template or "/" in template or template.startswith("."):
        raise FailedPrecondition(f"invalid template name {template!r}")
    path = templates_dir / template_set / template
    if not path.is_dir():
        raise FailedPrecondition(f"template directory {path} does not exist")
    return path


def prepare(work_root: Path, name: str, source: Path, tfvars_json: str, runner_tfvars_json: str = "") -> Path:
    """A fresh working directory: the template copied (symlinks followed) plus the tfvars."""
    json.loads(tfvars_json)  # refuse something Terraform would reject later, before any I/O
    if runner_tfvars_json:
        json.loads(runner_tfvars_json)
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_root))
    try:
        shutil.copytree(
            source,
            workdir,
            symlinks=False,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(
                ".terraform", "*.tfstate", "*.tfstate.backup", ".terraform.tfstate.lock.info"
            ),
        )
        (workdir / TFVARS_FILE).write_text(tfvars_json)
        if runner_tfvars_json:
            (workdir / RUNNER_TFVARS_FILE).write_text(runner_tfvars_json)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return workdir


@contextlib.asynccontextmanager
async def working_directory(
    work_root: Path,
    name: str,
    source: Path,
    tfvars_json: str,
    runner_tfvars_json: str = "",
    existing: Path | None = None,
) -> AsyncIterator[Path]:
    """:func:`prepare` (or ``existing``: a kept plan's directory taken over), and removal of
    the directory when the job ends.

    Never removed while it holds ``errored.tfstate``: that file may be the only record of
    resources Terraform just created. A directory the job moved away (a PLAN's, kept for
    its DEPLOY: :mod:`services.executor.plandirs`) is no longer the job's to remove.
    """
    if existing is not None:
        workdir = existing
    else:
        workdir = await asyncio.to_thread(prepare, work_root, name, source, tfvars_json, runner_tfvars_json)
    try:
        yield workdir
    finally:
        if (workdir / ERRORED_STATE).exists():
            log.warning("keeping %s: it holds %s (applied state not in the backend)", workdir, ERRORED_STATE)
        elif workdir.exists():
            await asyncio.to_thread(shutil.rmtree, workdir, True)


BACKEND_ONLY_TF = 'terraform {\n  backend "s3" {}\n}\n'


def backend_only_dir(work_root: Path, name: str) -> Path:
    """A working directory with nothing but the S3 backend block: for state-level commands
    (force-unlock, state push) that need the backend and no configuration or provider."""
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_root))
    (workdir / "backend.tf").write_text(BACKEND_ONLY_TF)
    return workdir


_CONFIG_SUFFIXES = (".tf", ".tf.json", ".terraform.lock.hcl")


def configuration_fingerprint(workdir: Path, terraform_version: str) -> str:
    """sha256 over the configuration files of ``workdir`` (what decides the providers) and the
    Terraform version: the same template gives the same fingerprint whatever its tfvars."""
    h = hashlib.sha256(terraform_version.encode())
    for path in sorted(workdir.iterdir()):
        if path.is_file() and path.name.endswith(_CONFIG_SUFFIXES):
            h.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class PluginCache:
    """The shared ``TF_PLUGIN_CACHE_DIR`` and the lock that serializes inits using it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_path = directory / ".alethia-init.lock"
        self._ready_dir = directory / ".alethia-ready"
        self._local = asyncio.Lock()

    def ready(self, fingerprint: str) -> bool:
        """Whether an init of this configuration writes nothing to the cache (no lock needed):
        it needs no provider, or its pinned providers were all cached and still are."""
        try:
            doc = json.loads((self._ready_dir / f"{fingerprint}.json").read_text())
            providers, pinned = doc["providers"], doc["pinned"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not isinstance(providers, list) or not all(isinstance(p, str) for p in providers):
            return False
        if not providers:
            return True
        return pinned is True and all((self.directory / p).is_dir() for p in providers)

    def record(self, fingerprint: str, workdir: Path, pinned: bool) -> None:
        """After a (locked) init of ``workdir``: which providers it uses from the cache, and
        whether the template pinned them (its own ``.terraform.lock.hcl``)."""
        root = workdir / ".terraform" / "providers"
        # host/namespace/type/version/os_arch, as in the cache itself
        providers = (
            sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*/*/*")) if root.is_dir() else []
        )
        try:
            self._ready_dir.mkdir(exist_ok=True)
            tmp = self._ready_dir / f".{fingerprint}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"providers": providers, "pinned": pinned}))
            tmp.replace(self._ready_dir / f"{fingerprint}.json")
        except OSError as exc:  # the next init takes the lock again: slower, never wrong
            log.warning("recording the plugin cache's providers failed: %s", exc)

    def env(self) -> dict[str, str]:
        return {"TF_PLUGIN_CACHE_DIR": str(self.directory)}

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Held around ``terraform init``: one init at a time per cache, across processes."""
        async with self._local:
            fd = await asyncio.to_thread(self._acquire)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                fd.close()

    def _acquire(self) -> Any:
        fd = open(self._lock_path, "a+")  # noqa: SIM115 - closed by lock()
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
