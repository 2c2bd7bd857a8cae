"""A PLAN's initialised working directory, kept for the DEPLOY of that plan on the same runner.

``terraform init`` (backend, modules, providers from the plugin cache, lock file) is most
of what a DEPLOY of a stored plan spends besides ``apply``. The plan job's directory has
all of it, so a successful PLAN leaves its directory here and a DEPLOY of exactly that
plan on this runner takes it over instead of initialising a fresh copy.

Invariants:
- Only a SUCCEEDED plan's directory is kept: it is set aside (``<job>.pending``) when
  Terraform is done and becomes usable (``<job>``) only once the job's manifest is stored;
  a failed, errored or cancelled job's directory is removed as before.
- What Terraform reads from the directory is recorded at plan time
  (:data:`REUSE_RECORD`): the sha256 of every file (template files, ``terraform.tfvars.json``,
  ``runner.auto.tfvars.json``, ``.terraform.lock.hcl``, ``plan.tfplan``, ``.terraform``'s backend
  and module records; provider links by target), the backend configuration, the Terraform
  version and the runner. A DEPLOY reuses the directory only when all of it is unchanged,
  its own rendered tfvars and backend configuration are the recorded ones and the plan file
  is the one the plan's job row recorded; anything else (another runner, a changed byte, a
  missing record) means a fresh directory and ``init``, as without a kept directory.
- A directory is taken by one job only (an atomic rename out of the kept set) and never
  comes back: after the DEPLOY it is removed like any job's directory, unless it holds
  ``errored.tfstate`` (issue 11's recovery rules; recovery finds it under ``job-*``).
- Bounded: at most ``keep`` directories, none older than ``max_age_seconds`` (checked each
  time a plan is kept or taken, so an expired one is never used); the oldest go first. The
  set is 0700 and is cleaned of pending, unrecorded and expired directories when the runner
  starts. A directory holding ``errored.tfstate`` is never deleted here. What is kept is what
  a job's working directory holds while it runs (the plan file in the clear among it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.executor.workspace import ERRORED_STATE

log = logging.getLogger(__name__)

REUSE_RECORD = ".alethia-reuse.json"
PENDING = ".pending"
KEPT_MANIFEST = ".alethia-manifest.json"
# Job bookkeeping written into a directory after the record: not something Terraform reads.
_NOT_INPUTS = frozenset({REUSE_RECORD, KEPT_MANIFEST, ".alethia-job.json"})
RECORD_VERSION = 1


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def directory_digests(workdir: Path) -> dict[str, str]:
    """``{relative path: digest}`` of what Terraform reads from ``workdir``.

    Files by sha256; symbolic links (the providers ``init`` linked from the plugin cache)
    by their target, which is what decides what Terraform loads: the provider packages
    themselves are checked by Terraform against the lock file's hashes, which is hashed here.
    """
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(workdir, followlinks=False):
        base = Path(root)
        for name in dirs + files:
            path = base / name
            rel = path.relative_to(workdir).as_posix()
            if rel in _NOT_INPUTS:
                continue
            if path.is_symlink():
                out[rel] = "link:" + str(path.readlink())
            elif name in files and path.is_file():
                out[rel] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return out


@dataclass(frozen=True)
class ReuseKey:
    """What must be equal between the plan and the DEPLOY for the directory to be reused."""

    runner_id: str
    terraform_version: str
    backend_config: tuple[str, ...]
    tfvars_sha256: str
    runner_tfvars_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "runner_id": self.runner_id,
            "terraform_version": self.terraform_version,
            "backend_config_sha256": sha256_text("\n".join(self.backend_config)),
            "tfvars_sha256": self.tfvars_sha256,
            "runner_tfvars_sha256": self.runner_tfvars_sha256,
        }


class KeptPlans:
    """The kept directories of one runner, under ``root`` (0700)."""

    def __init__(self, root: Path, keep: int = 8, max_age_seconds: float = 21600.0) -> None:
        self.root = root
        self.keep = keep
        self.max_age_seconds = max_age_seconds

    @property
    def enabled(self) -> bool:
        return self.keep > 0

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)

    # ------------------------------------------------------------------ plan side

    def set_aside(self, workdir: Path, job_id: str, key: ReuseKey) -> Path | None:
        """Move a finished PLAN's directory out of the job's hands (``<job>.pending``).

        The record is written first, from the directory as Terraform left it. None when
        the directory cannot be kept (it is then removed by the job as usual).
        """
        if not self.enabled:
            return None
        try:
            self._ensure_root()
            record = {
                "version": RECORD_VERSION,
                "job_id": job_id,
                "created": time.time(),
                **key.as_dict(),
                "files": directory_digests(workdir),
            }
            (workdir / REUSE_RECORD).write_text(json.dumps(record, sort_keys=True))
            target = self.root / f"{job_id}{PENDING}"
            workdir.rename(target)
            target.chmod(0o700)
            return target
        except OSError as exc:
            log.warning("plan %s: its working directory cannot be kept: %s", job_id, exc)
            return None

    def commit(self, job_id: str, manifest: bytes) -> None:
        """The plan's manifest is stored: its directory may now be reused (then the bounds apply)."""
        pending = self.root / f"{job_id}{PENDING}"
        try:
            (pending / KEPT_MANIFEST).write_bytes(manifest)
            pending.rename(self.root / job_id)
        except OSError as exc:
            log.warning("plan %s: keeping its working directory failed: %s", job_id, exc)
            self.discard(job_id)
        self.prune()

    def discard(self, job_id: str) -> None:
        """The plan did not succeed (or its artifacts were not stored): nothing is kept."""
        for path in (self.root / f"{job_id}{PENDING}", self.root / job_id):
            _remove(path)

    # ------------------------------------------------------------------ deploy side

    def take(self, plan_job_id: str, work_root: Path, name: str) -> Path | None:
        """The kept directory of ``plan_job_id``, moved to ``work_root/<name>`` (None: none kept).

        The move is atomic, so two jobs never get the same directory; from here on it is
        the taking job's working directory, removed (or kept for recovery) like any other.
        """
        if not self.enabled or not plan_job_id or "/" in plan_job_id or plan_job_id.startswith("."):
            return None
        self.prune()  # an expired directory is never taken
        source = self.root / plan_job_id
        target = work_root / f"{name}-kept"
        try:
            source.rename(target)
        except OSError:
            return None
        return target

    @staticmethod
    def check(workdir: Path, plan_job_id: str, key: ReuseKey) -> tuple[list[str], bytes | None]:
        """What differs between the taken directory and its record (empty: reusable), and the
        plan's manifest as kept beside it."""
        try:
            record = json.loads((workdir / REUSE_RECORD).read_text())
            manifest = (workdir / KEPT_MANIFEST).read_bytes()
        except (OSError, ValueError) as exc:
            return [f"no readable reuse record ({type(exc).__name__})"], None
        problems = []
        if record.get("version") != RECORD_VERSION or record.get("job_id") != plan_job_id:
            problems.append("the record belongs to another plan")
        for field_name, want in key.as_dict().items():
            if record.get(field_name) != want:
                problems.append(field_name.removesuffix("_sha256").replace("_", " ") + " differs")
        recorded = record.get("files")
        actual = directory_digests(workdir)
        if not isinstance(recorded, dict):
            problems.append("the record lists no files")
        else:
            changed = sorted(p for p in set(recorded) | set(actual) if recorded.get(p) != actual.get(p))
            if changed:
                more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
                problems.append(f"changed since the plan: {', '.join(changed[:5])}{more}")
        return problems, manifest

    # ------------------------------------------------------------------ bounds

    def prune(self, now: float | None = None) -> list[str]:
        """Remove expired, pending-too-long and surplus directories; returns what went."""
        now = time.time() if now is None else now
        try:
            entries = [p for p in self.root.iterdir() if p.is_dir()]
        except OSError:
            return []
        ready: list[tuple[float, Path]] = []
        removed = []
        for path in entries:
            created = _created(path)
            too_old = created is None or now - created > self.max_age_seconds
            if path.name.endswith(PENDING):
                # A pending one is only ever pending between a plan's end and its CompleteJob.
                if too_old or now - (created or 0) > 3600:
                    removed += _remove(path)
                continue
            if too_old:
                removed += _remove(path)
            else:
                ready.append((created or 0.0, path))
        ready.sort(reverse=True)
        for _, path in ready[max(self.keep, 0) :]:
            removed += _remove(path)
        return removed

    def clean_on_start(self) -> list[str]:
        """At start: no job is running, so nothing pending survives; then the bounds."""
        removed: list[str] = []
        if not self.root.exists():
            return removed
        self._ensure_root()
        for path in list(self.root.iterdir()):
            if path.name.endswith(PENDING) or not path.is_dir():
                removed += _remove(path)
        if not self.enabled:
            for path in list(self.root.iterdir()):
                removed += _remove(path)
        return removed + self.prune()


def _created(path: Path) -> float | None:
    try:
        value = json.loads((path / REUSE_RECORD).read_text()).get("created")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def remove_dir(path: Path) -> None:
    """Remove a taken or kept directory (not one holding ``errored.tfstate``)."""
    _remove(path)


def _remove(path: Path) -> list[str]:
    """Remove a kept directory unless it holds ``errored.tfstate`` (never deleted here)."""
    if path.is_dir() and (path / ERRORED_STATE).exists():
        log.warning("keeping %s: it holds %s", path, ERRORED_STATE)
        return []
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
    return [path.name]
