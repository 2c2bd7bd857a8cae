"""Never lose applied state: keep Terraform's ``errored.tfstate`` and push it back.

When Terraform cannot write state to the backend during an apply (S3 unreachable,
credentials expired, the runner shutting down), it writes ``errored.tfstate`` in the
working directory: the only record of what it just created. Invariants:

- A working directory holding ``errored.tfstate`` is never deleted by the job
  (:func:`services.executor.workspace.working_directory`); it goes only once the state is
  back in the backend.
- The state is kept at once, durably: a local copy (file 0600 in a 0700 directory under the
  runner's data directory) and, when object storage answers, an artifact
  (``jobs/<id>/errored.tfstate``, through the artifact store, which encrypts what it
  uploads). ``recovery.json`` next to the copy says what it is, so a restarted runner
  resumes.
- The snapshot service records the pending recovery (``RecordStateRecovery``); until it is
  resolved the workspace takes no job but an UNLOCK.
- :class:`RecoveryLoop` retries, at start-up and every few seconds: release the lock the
  failed apply itself left (only that exact lock ID), then ``terraform state push`` (which
  refuses another lineage or an older serial: never ``-force``), then
  ``ResolveStateRecovery``, then the local copy and the working directory are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alethia.errors import AlethiaError, FailedPrecondition
from services.executor.artifacts import ArtifactStore
from services.executor.statelock import StateBucket, unlock_command
from services.executor.terraform import InitOptions, Terraform, TerraformBinary
from services.executor.workspace import ERRORED_STATE, S3Backend, backend_config, backend_only_dir

log = logging.getLogger(__name__)

RECORD = "recovery.json"
# Written into each job's working directory: what a leftover errored.tfstate belongs to.
JOB_MARKER = ".alethia-job.json"


@dataclass
class Recovery:
    """One kept state and what is known about it (``recovery.json``)."""

    job_id: str
    spec_id: str
    workspace: str
    state_key: str
    resources_applied: int
    lock_id: str = ""
    local_path: str = ""
    artifact_key: str = ""
    artifact_bucket: str = ""
    workdir: str = ""
    host: str = ""
    registered: bool = False  # the snapshot service knows about it
    pushed: bool = False  # the backend has it (only ResolveStateRecovery is left)
    created: float = field(default_factory=time.time)
    last_error: str = ""

    def location(self) -> str:
        """Where the kept state is, most durable first (what the job and the record name)."""
        places = []
        if self.artifact_key:
            places.append(f"s3://{self.artifact_bucket}/{self.artifact_key}")
        if self.local_path:
            places.append(f"file://{self.host}{self.local_path}")
        return " and ".join(places)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, and make it durable (fsync)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.chmod(0o600)
    tmp.replace(path)


class RecoveryKeeper:
    """The runner's kept states, under ``root`` (0700), one directory per job."""

    def __init__(self, root: Path, artifacts: ArtifactStore | None, host: str = "") -> None:
        self.root = root
        self.artifacts = artifacts
        self.host = host or socket.gethostname()

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)

    async def keep(
        self,
        *,
        job_id: str,
        spec_id: str,
        workspace: str,
        state_key: str,
        workdir: Path,
        resources_applied: int,
        lock_id: str,
    ) -> Recovery:
        """Keep ``workdir/errored.tfstate`` on local disk and, when it answers, in object storage."""
        data = await asyncio.to_thread((workdir / ERRORED_STATE).read_bytes)
        rec = Recovery(
            job_id=job_id,
            spec_id=spec_id,
            workspace=workspace,
            state_key=state_key,
            resources_applied=resources_applied,
            lock_id=lock_id,
            workdir=str(workdir),
            host=self.host,
        )
        directory = self.root / job_id
        await asyncio.to_thread(self._ensure_root)
        await asyncio.to_thread(lambda: directory.mkdir(mode=0o700, exist_ok=True))
        local = directory / ERRORED_STATE
        await asyncio.to_thread(_write_private, local, data)
        rec.local_path = str(local)
        self.save(rec)
        if self.artifacts is not None:
            try:
                stored = await self.artifacts.put(job_id, ERRORED_STATE, data, "application/json")
                rec.artifact_key, rec.artifact_bucket = stored.key, self.artifacts.bucket
                self.save(rec)
            except AlethiaError as exc:  # the store is down too: the local copy is what we have
                log.warning("job %s: errored.tfstate not stored as an artifact (%s); kept at %s",
                            job_id, exc, local)  # fmt: skip
        return rec

    def _leftovers(self, work_root: Path) -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
        known = {r.workdir for r in self.pending()}
        out = []
        for marker in sorted(work_root.glob(f"job-*/{JOB_MARKER}")):
            wd = marker.parent
            if str(wd) in known or not (wd / ERRORED_STATE).exists():
                continue
            try:
                out.append(
                    (wd, json.loads(marker.read_bytes()), json.loads((wd / ERRORED_STATE).read_bytes()))
                )
            except (OSError, ValueError) as exc:
                log.error("leftover %s cannot be read: %s", wd, exc)
        return out

    async def adopt_leftovers(self, work_root: Path) -> list[Recovery]:
        """Working directories holding ``errored.tfstate`` that no record covers (the runner
        died before it could keep them, e.g. killed while Terraform wrote the file): kept now."""
        adopted = []
        for wd, about, state in await asyncio.to_thread(self._leftovers, work_root):
            # How many changes the dead apply made is unknown: what the kept state holds is.
            held = sum(
                len(r.get("instances", [])) for r in state.get("resources", []) if r.get("mode") == "managed"
            )
            rec = await self.keep(
                job_id=str(about["job_id"]),
                spec_id=str(about["spec_id"]),
                workspace=str(about["workspace"]),
                state_key=str(about["state_key"]),
                workdir=wd,
                resources_applied=held,
                lock_id=str(about.get("lock_id") or ""),
            )
            log.warning("job %s: adopted a leftover errored.tfstate from %s", rec.job_id, wd)
            adopted.append(rec)
        return adopted

    def save(self, rec: Recovery) -> None:
        """Write ``recovery.json`` (0600) next to the kept state."""
        directory = self.root / rec.job_id
        _write_private(directory / RECORD, json.dumps(asdict(rec), indent=2, sort_keys=True).encode())

    def pending(self) -> list[Recovery]:
        """Every kept state of this runner not yet resolved, oldest first."""
        out: list[Recovery] = []
        if not self.root.is_dir():
            return out
        for record in sorted(self.root.glob(f"*/{RECORD}")):
            try:
                doc: dict[str, Any] = json.loads(record.read_bytes())
                out.append(Recovery(**{k: v for k, v in doc.items() if k in Recovery.__dataclass_fields__}))
            except (OSError, ValueError, TypeError) as exc:
                log.error("unreadable state recovery record %s: %s", record, exc)
        return sorted(out, key=lambda r: r.created)

    def done(self, rec: Recovery) -> None:
        """The state is back in the backend and recorded so: drop the copy and the working directory."""
        shutil.rmtree(self.root / rec.job_id, ignore_errors=True)
        if rec.workdir and (Path(rec.workdir) / ERRORED_STATE).exists():
            shutil.rmtree(rec.workdir, ignore_errors=True)


def _read_file(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes() if path else None
    except OSError:
        return None


@dataclass
class Pusher:
    """Pushes a kept state back with Terraform, in a backend-only working directory."""

    binary: TerraformBinary
    backend: S3Backend
    state_bucket: StateBucket
    work_root: Path
    env: dict[str, str]
    grace_seconds: float = 20.0
    artifacts: ArtifactStore | None = None

    async def _kept_state(self, rec: Recovery) -> bytes:
        """The kept state: the local copy, else the artifact (another disk may hold none)."""
        data = await asyncio.to_thread(_read_file, rec.local_path)
        if data is None and rec.artifact_key and self.artifacts is not None:
            data = await self.artifacts.get(rec.artifact_key)
        if data is None:
            raise FailedPrecondition(f"the kept state of job {rec.job_id} is missing ({rec.location()})")
        return data

    def _prepare(self, rec: Recovery, data: bytes) -> Path:
        wd = backend_only_dir(self.work_root, f"recover-{rec.job_id[:12]}")
        _write_private(wd / ERRORED_STATE, data)
        return wd

    async def push(self, rec: Recovery) -> str:
        """Release the failed apply's own lock if it is still there, then ``state push``.

        Returns what was done; raises when the backend does not answer, the lock held is not
        the failed apply's, or Terraform refuses the state (lineage, serial).
        """
        data = await self._kept_state(rec)
        wd = await asyncio.to_thread(self._prepare, rec, data)
        try:
            tf = Terraform(wd, self.binary, env=self.env, grace_seconds=self.grace_seconds)
            await tf.init(InitOptions(backend_config=backend_config(self.backend, rec.state_key), json=False))
            done = []
            lock = await self.state_bucket.read_lock(rec.state_key)
            if lock is not None:
                if not rec.lock_id or lock.id != rec.lock_id:
                    raise FailedPrecondition(
                        f"the state {rec.state_key} is locked by {lock.describe()}, not by the lock the "
                        f"failed apply held ({rec.lock_id or 'not seen'}): not pushing. If no Terraform "
                        f"runs on it, release it with `{unlock_command(rec.spec_id, lock.id)}`"
                    )
                await tf.force_unlock(lock.id)
                done.append(f"released the failed apply's lock {lock.id}")
            await tf.state_push(ERRORED_STATE)
            serial = json.loads(data).get("serial")
            done.append(
                f"pushed the kept state (serial {serial}, {rec.resources_applied} resource change(s) "
                f"applied) to s3://{self.backend.bucket}/{rec.state_key}"
            )
            return "; ".join(done)
        finally:
            shutil.rmtree(wd, ignore_errors=True)


RecordFn = Callable[[Recovery], Awaitable[None]]
ResolveFn = Callable[[Recovery, str], Awaitable[None]]


class RecoveryLoop:
    """Pushes kept states back as soon as the backend answers; also at runner start-up."""

    def __init__(
        self,
        keeper: RecoveryKeeper,
        pusher: Pusher,
        record: RecordFn,
        resolve: ResolveFn,
        interval: float = 5.0,
    ) -> None:
        self.keeper = keeper
        self.pusher = pusher
        self.record = record
        self.resolve = resolve
        self.interval = interval
        self.resolved = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pass_lock = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="state-recovery")

    def wake(self) -> None:
        """Try now (a new state was kept)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        try:
            await self.keeper.adopt_leftovers(self.pusher.work_root)
        except Exception:
            log.exception("adopting leftover errored.tfstate files failed")
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("state recovery pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run_once(self) -> int:
        """One pass over every kept state; returns how many were resolved."""
        resolved = 0
        async with self._pass_lock:
            for rec in self.keeper.pending():
                resolved += await self._one(rec)
        self.resolved += resolved
        return resolved

    async def _one(self, rec: Recovery) -> int:
        if not rec.registered:
            try:
                await self.record(rec)
                rec.registered = True
                self.keeper.save(rec)
            except Exception as exc:  # the snapshot service is down: the push may still go on
                log.warning("job %s: recording the state recovery failed: %s", rec.job_id, exc)
        if not rec.pushed:
            try:
                what = await self.pusher.push(rec)
            except Exception as exc:
                if str(exc) != rec.last_error:
                    log.warning("job %s: state not pushed back yet: %s", rec.job_id, exc)
                rec.last_error = str(exc)
                self.keeper.save(rec)
                return 0
            rec.pushed, rec.last_error = True, what
            self.keeper.save(rec)
            log.warning("job %s: %s", rec.job_id, what)
        if not rec.registered:
            return 0  # record first, then resolve: the next pass does both
        try:
            await self.resolve(rec, rec.last_error)
        except Exception as exc:
            log.warning("job %s: state pushed but ResolveStateRecovery failed: %s", rec.job_id, exc)
            return 0
        self.keeper.done(rec)
        return 1
