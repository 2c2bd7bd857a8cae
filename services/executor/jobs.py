"""One claimed job, run to a result: PLAN, DEPLOY (stored plan or plan+apply), DESTROY.

Invariants:
- The Spec's ``terraform_version`` is checked before anything runs.
- A DEPLOY with ``plan_job_id`` downloads that plan's artifacts, decrypts them (bound to the
  plan job and file name), checks each digest against the one the plan's job row recorded
  (handed over with the claim) and the manifest's config hash against this job's, all
  BEFORE a workspace exists: a tampered, swapped or stale plan never reaches ``terraform
  apply``. It then applies exactly that plan file.
- Artifacts go under ``jobs/<job_id>/``, encrypted by the artifact store; ``manifest.json``
  is uploaded last and only when the job succeeded, so a failed job's partial set can
  never be applied.
- Terraform, git, helm/kubectl and Infracost run with the environments the runner built
  once at start (``ExecutorContext.child_env``), never this process's own.
- Outputs leave the runner redacted; ``plan.json``, ``terraform.log`` and every log event are
  redacted with every secret known (git token, S3 secret key, sensitive values).
- A cancel ends the job CANCELLED after Terraform stopped cleanly; the result says whether
  the state lock object is gone. A job during which resources were applied (Terraform's
  ``apply_complete`` messages) is never plain CANCELLED: it is FAILED, saying how many.
- When Terraform could not write state (``errored.tfstate``), the state is kept aside
  (:mod:`services.executor.recovery`), the snapshot service records the pending recovery and
  the job ends ERRORED saying how many resource changes were applied and where the state is.
- Before Terraform plans, the state lock is read: a job meeting another job's apply lock
  fails at once naming the lock, the job and ``alethia unlock``; a plan's lock left behind
  is released (this job is the workspace's only running one, and a plan writes no state).
  The lock the job's own apply takes is reported with the heartbeat, so a rescue names it.
- An UNLOCK runs ``terraform force-unlock`` of exactly the lock ID it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alethia.errors import AlethiaError, FailedPrecondition
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from alethia.terraform_versions import check_constraint, parse_version
from services.executor import cost as cost_mod
from services.executor.artifacts import (
    LOG_FILE,
    MANIFEST,
    PLAN_FILE,
    PLAN_JSON,
    ArtifactStore,
    StoredArtifact,
    artifact_key,
    build_manifest,
    sha256_hex,
    verify_manifest,
    verify_recorded,
)
from services.executor.childenv import ChildEnvironments
from services.executor.logstream import LogPublisher
from services.executor.plan_summary import ChangeSummary, ResourceChange, summarize_plan
from services.executor.plandirs import KeptPlans, ReuseKey, remove_dir, sha256_text
from services.executor.postapply import (
    Checkout,
    PostApplyContext,
    Step,
    apps_repository,
    checkout,
    parse_url_rewrites,
    run_post_apply,
)
from services.executor.recovery import JOB_MARKER, Recovery, RecoveryKeeper
from services.executor.redaction import RedactedOutput, Redactor, redact_outputs, redact_plan
from services.executor.statelock import PLAN_OPERATION, StateBucket, locked_message
from services.executor.terraform import (
    ApplyOptions,
    CancelToken,
    InitOptions,
    PlanOptions,
    ShowOptions,
    Terraform,
    TerraformBinary,
    TerraformCancelled,
    TerraformError,
)
from services.executor.workspace import (
    ERRORED_STATE,
    LOCK_FILE,
    PluginCache,
    S3Backend,
    backend_config,
    backend_only_dir,
    configuration_fingerprint,
    state_key,
    template_dir,
    working_directory,
)

log = logging.getLogger(__name__)

# Adapters to the other services (gRPC in production; wired by the runner).
RenderTfvars = Callable[[str], Awaitable[tuple[str, str]]]  # snapshot_json -> (template, tfvars_json)
GetJob = Callable[[str], Awaitable[snapshot_pb2.Job]]
GetGitToken = Callable[[], Awaitable[str]]
RecordRecovery = Callable[[Recovery], Awaitable[None]]
# (workspace, lock_id) -> a description of the job whose Terraform took that lock, or "".
FindLockHolder = Callable[[str, str], Awaitable[str]]


class StateKept(AlethiaError):
    """Terraform could not write state; it is kept aside for a push (the job ends ERRORED)."""


@dataclass
class ExecutorContext:
    """What every job needs, built once per runner."""

    binary: TerraformBinary
    terraform_version: str
    templates_dir: Path
    template_set: str
    work_root: Path
    plugin_cache: PluginCache
    backend: S3Backend
    artifacts: ArtifactStore
    render_tfvars: RenderTfvars
    get_job: GetJob
    # The child processes' environments, built once by the runner from its settings.
    child_env: ChildEnvironments
    js: Any = None  # JetStreamContext, or None: no live log
    git_url_rewrite: str = ""
    terraform_grace_seconds: float = 20.0
    state_bucket: StateBucket | None = None  # None: no lock checks
    keeper: RecoveryKeeper | None = None  # None: an errored.tfstate stays in its working directory
    record_recovery: RecordRecovery | None = None
    on_state_kept: Callable[[], None] | None = None  # wakes the recovery loop
    find_lock_holder: FindLockHolder | None = None
    lock_poll_seconds: float = 0.5
    runner_tfvars: str = ""  # runner.auto.tfvars.json (alethia.runner_vars); empty: not written
    runner_id: str = ""
    # A PLAN's initialised directory kept for its DEPLOY on this runner; None: never kept.
    kept_plans: KeptPlans | None = None


@dataclass
class JobOutcome:
    status: int = events_pb2.SUCCEEDED
    error: str = ""
    changes: ChangeSummary | None = None
    cost: cost_mod.Cost | None = None
    outputs: list[RedactedOutput] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    artifacts: list[StoredArtifact] = field(default_factory=list)


class JobExecution:
    """Runs one job; ``stage`` is what GetStatus reports while it runs."""

    def __init__(
        self,
        ctx: ExecutorContext,
        job: snapshot_pb2.Job,
        attempt: int,
        cancel: CancelToken,
        get_git_token: GetGitToken | None = None,
        plan_artifacts: Sequence[events_pb2.Artifact] = (),
    ) -> None:
        self.ctx = ctx
        # A DEPLOY of a saved plan: the plan's artifacts as its job row recorded them.
        self.plan_artifacts = list(plan_artifacts)
        self.job = job
        self.attempt = attempt
        self.cancel = cancel
        self.get_git_token = get_git_token
        self.stage = "prepare"
        self.started = time.time()
        self.redactor = Redactor([ctx.backend.secret_key, ctx.artifacts.secret_key])
        self.publisher = LogPublisher(
            ctx.js,
            job.id,
            job.spec_id,
            attempt,
            self.redactor,
            job_type=job.type,
            workspace=job.workspace,
        )
        self.outcome = JobOutcome()
        self._extra_manifest: dict[str, Any] = {}
        self.applied_plan_sha256 = ""
        # Resource changes Terraform completed (apply_complete), and the lock its apply took.
        self.applied = 0
        self.state_lock_id = ""
        self.lock_seen = asyncio.Event()
        self._workdir: Path | None = None
        # The outputs apply's -json stream printed (its "outputs" message), when it did.
        self._streamed_outputs: dict[str, Any] | None = None
        self._manifest: bytes = b""
        self._kept_pending = False  # this PLAN's directory is set aside for its DEPLOY
        self.reused_workdir = False  # this DEPLOY runs in its plan's initialised directory
        self._kept_files_rejected = False

    # ------------------------------------------------------------------ entry

    async def run(self) -> snapshot_pb2.JobResult:
        """Run the job and return the result for ``CompleteJob`` (never raises for job errors)."""
        self.publisher.start()
        out = self.outcome
        try:
            await self._run()
            out.status = events_pb2.SUCCEEDED
        except StateKept as exc:
            out.status, out.error = events_pb2.ERRORED, self.redactor.redact(str(exc))
        except TerraformCancelled as exc:
            out.status = events_pb2.CANCELLED
            out.error = await self._cancel_message(exc)
        except AlethiaError as exc:
            if self.cancel.cancelled:
                out.status, out.error = events_pb2.CANCELLED, await self._cancel_message(None)
            else:
                out.status, out.error = events_pb2.FAILED, self.redactor.redact(str(exc))
                if self.applied:
                    out.error += (
                        f" ({self.applied} resource change(s) were applied before the failure; "
                        "Terraform saved them in the state: re-plan to see what is left)"
                    )
        except Exception as exc:
            log.exception("job %s failed unexpectedly", self.job.id)
            out.status = events_pb2.FAILED
            out.error = self.redactor.redact(f"runner error: {type(exc).__name__}: {exc}")
        if out.status == events_pb2.CANCELLED and self.applied:
            # Not "nothing happened": part of the change is real, and the state says so.
            out.status = events_pb2.FAILED
            out.error = (
                f"{self.applied} resource change(s) were applied before Terraform stopped, so this "
                f"is not a clean cancel ({out.error}). Terraform saved them in the state: the "
                "infrastructure is partly changed; re-plan, then deploy or destroy"
            )
        if out.status != events_pb2.SUCCEEDED:
            self.publisher.note(self.stage, "error", out.error)
        # Flush the live log first, so the log artifact also records lines NATS never got.
        await self.publisher.close()
        await self._finish_artifacts(out.status == events_pb2.SUCCEEDED)
        if self._kept_pending and self.ctx.kept_plans is not None:
            kept = self.ctx.kept_plans
            if out.status == events_pb2.SUCCEEDED and self._manifest:
                await asyncio.to_thread(kept.commit, self.job.id, self._manifest)
            else:
                await asyncio.to_thread(kept.discard, self.job.id)
        return self.result()

    async def _cancel_message(self, exc: TerraformCancelled | None) -> str:
        reason = self.cancel.reason or "cancel requested"
        msg = f"cancelled during {self.stage}: {reason}"
        if exc is not None and exc.killed:
            msg += "; Terraform did not stop within the grace period and was killed"
        try:
            lock_key = state_key(self.snapshot) + ".tflock"
            keys = await self.ctx.artifacts.list_keys(lock_key, bucket=self.ctx.backend.bucket)
            msg += f"; state lock {lock_key} still held" if lock_key in keys else "; state lock released"
        except Exception as err:  # reporting only
            msg += f"; could not check the state lock: {err}"
        return msg

    @property
    def snapshot(self) -> dict[str, Any]:
        return dict(json.loads(self.job.snapshot_json or "{}"))

    # ------------------------------------------------------------------ stages

    async def _run(self) -> None:
        snapshot = self.snapshot
        constraint = str(snapshot.get("terraform_version") or "")
        problem = check_constraint(self.ctx.terraform_version, constraint)
        if problem:
            raise FailedPrecondition(f"{problem} ({self.ctx.binary.display})")
        self.publisher.note(
            "prepare",
            "info",
            f"Terraform {self.ctx.terraform_version} ({self.ctx.binary.display}); attempt {self.attempt}",
        )

        if self.job.type == events_pb2.UNLOCK:
            await self._unlock(state_key(snapshot))
            return

        key = state_key(snapshot)
        plan_job: asyncio.Future[snapshot_pb2.Job] | None = None
        if self.job.type == events_pb2.DEPLOY and self.job.plan_job_id:
            # The plan's job row is read while the mapper renders (both are needed below).
            plan_job = asyncio.ensure_future(self.ctx.get_job(self.job.plan_job_id))
        try:
            template, tfvars = await self.ctx.render_tfvars(self.job.snapshot_json)
        except BaseException:
            if plan_job is not None:
                plan_job.cancel()
                with contextlib.suppress(BaseException):
                    await plan_job
            raise
        reuse_key = ReuseKey(
            runner_id=self.ctx.runner_id,
            terraform_version=self.ctx.terraform_version,
            backend_config=backend_config(self.ctx.backend, key),
            tfvars_sha256=sha256_text(tfvars),
            runner_tfvars_sha256=sha256_text(self.ctx.runner_tfvars),
        )
        plan_bytes: bytes | None = None
        kept: Path | None = None
        if plan_job is not None:
            self.stage = "verify"
            kept, local = await self._take_kept_plan(self.job.plan_job_id, reuse_key)
            try:
                plan_bytes = await self._verified_plan(self.job.plan_job_id, local, plan_job)
            except BaseException:
                if kept is not None:  # taken, so no one else removes it
                    await asyncio.to_thread(remove_dir, kept)
                raise
            if kept is not None and self._kept_files_rejected:  # verified by download instead
                await asyncio.to_thread(remove_dir, kept)
                kept = None

        source = template_dir(self.ctx.templates_dir, self.ctx.template_set, template)
        async with working_directory(
            self.ctx.work_root,
            f"job-{self.job.id[:12]}",
            source,
            tfvars,
            self.ctx.runner_tfvars,
            existing=kept,
        ) as wd:
            tf = self._terraform(wd)
            await asyncio.to_thread(self._mark_workdir, wd, key)
            if kept is None:
                await self._init(tf, key)
            else:
                self.reused_workdir = True
                self.publisher.note(
                    "init",
                    "info",
                    f"reusing the initialised working directory of plan job {self.job.plan_job_id} "
                    "(its inputs, lock file and plan file verified by digest): no init",
                )
            await self._check_lock(tf, key)
            if self.job.type == events_pb2.PLAN:
                await self._plan(tf, wd, destroy=False)
                self.outcome.cost = await self._cost(wd)
                if self.ctx.kept_plans is not None and self.ctx.kept_plans.enabled:
                    # Last: a failure above leaves nothing kept. Committed once the manifest is stored.
                    kept_plans = self.ctx.kept_plans
                    pending = await asyncio.to_thread(kept_plans.set_aside, wd, self.job.id, reuse_key)
                    self._kept_pending = pending is not None
                return
            if plan_bytes is not None and kept is None:
                await asyncio.to_thread((wd / PLAN_FILE).write_bytes, plan_bytes)
            elif plan_bytes is None:
                await self._plan(tf, wd, destroy=self.job.type == events_pb2.DESTROY)
            self.stage = "apply"
            self._streamed_outputs = None
            # The apps repository is cloned while Terraform applies (the push needs only the outputs).
            prefetch = self._prefetch_repository(snapshot) if self.job.type == events_pb2.DEPLOY else None
            try:
                await self._apply(tf, wd, key)
                self.stage = "output"
                raw_outputs = self._streamed_outputs
                if raw_outputs is None:  # apply printed none (no outputs, or an older Terraform)
                    raw_outputs = await tf.output(cancel=self.cancel)
                outputs, secrets = redact_outputs(raw_outputs)
                self.redactor.add(secrets)
                self.outcome.outputs = outputs
                if self.job.type == events_pb2.DEPLOY:
                    self.stage = "post_apply"
                    await self._post_apply(snapshot, outputs, prefetch)
            finally:
                if prefetch is not None:
                    await _discard_checkout(prefetch)

    async def _take_kept_plan(
        self, plan_job_id: str, reuse_key: ReuseKey
    ) -> tuple[Path | None, tuple[bytes, bytes] | None]:
        """The plan's kept directory (taken: no other job can have it) once its record matches,
        and its (manifest, plan file) for :meth:`_verified_plan`; (None, None) otherwise."""
        kept_plans = self.ctx.kept_plans
        if kept_plans is None or not kept_plans.enabled:
            return None, None
        name = f"job-{self.job.id[:12]}"
        kept = await asyncio.to_thread(kept_plans.take, plan_job_id, self.ctx.work_root, name)
        if kept is None:
            return None, None

        def check() -> tuple[list[str], tuple[bytes, bytes] | None]:
            problems, manifest = KeptPlans.check(kept, plan_job_id, reuse_key)
            if problems or manifest is None:
                return problems, None
            return [], (manifest, (kept / PLAN_FILE).read_bytes())

        try:
            problems, local = await asyncio.to_thread(check)
        except OSError as exc:
            problems, local = [f"reading it failed: {exc}"], None
        if problems:
            await asyncio.to_thread(remove_dir, kept)
            self.publisher.note(
                "verify",
                "warn",
                f"not reusing the working directory of plan job {plan_job_id}: {'; '.join(problems)}; "
                "initialising a fresh one",
            )
            return None, None
        return kept, local

    async def _init(self, tf: Terraform, key: str) -> None:
        self.stage = "init"
        opts = InitOptions(
            backend_config=backend_config(self.ctx.backend, key),
            json=parse_version(self.ctx.terraform_version) >= (1, 9, 0),
        )
        cache = self.ctx.plugin_cache

        def before() -> tuple[str, bool, bool]:
            fp = configuration_fingerprint(tf.working_dir, self.ctx.terraform_version)
            return fp, (tf.working_dir / LOCK_FILE).is_file(), cache.ready(fp)

        fingerprint, pinned, ready = await asyncio.to_thread(before)
        if ready:
            # Nothing to write to the shared cache (see workspace.py): no queue behind other inits.
            await tf.init(opts, cancel=self.cancel)
            return
        async with cache.lock():
            await tf.init(opts, cancel=self.cancel)
            await asyncio.to_thread(cache.record, fingerprint, tf.working_dir, pinned)

    def _mark_workdir(self, wd: Path, key: str) -> None:
        """Say in the working directory whose it is: a restarted runner adopts a leftover state."""
        self._workdir = wd
        about = {
            "job_id": self.job.id,
            "spec_id": self.job.spec_id,
            "workspace": self.job.workspace,
            "state_key": key,
            "lock_id": self.state_lock_id,
        }
        (wd / JOB_MARKER).write_text(json.dumps(about))

    async def _check_lock(self, tf: Terraform, key: str) -> None:
        """Fail at once on a workspace whose state another job's apply holds locked.

        A plan's lock left behind (its runner was killed) is released: this job is the only
        RUNNING one of the workspace (the queue's unique index holds that) and a plan never
        writes state, so no person needs to look at it.
        """
        if self.ctx.state_bucket is None:
            return
        try:
            lock = await self.ctx.state_bucket.read_lock(key)
        except AlethiaError as exc:  # Terraform itself refuses a held lock (-lock=true)
            log.warning("job %s: reading the state lock failed: %s", self.job.id, exc)
            return
        if lock is None:
            return
        if lock.operation == PLAN_OPERATION:
            await tf.force_unlock(lock.id, cancel=self.cancel)
            self.publisher.note(
                self.stage,
                "warn",
                f"released a stale plan {lock.describe()} on {key} (a plan writes no state)",
            )
            return
        holder = ""
        if self.ctx.find_lock_holder is not None:
            with contextlib.suppress(Exception):
                holder = await self.ctx.find_lock_holder(self.job.workspace, lock.id)
        raise FailedPrecondition(locked_message(key, lock, self.job.spec_id, holder))

    async def _apply(self, tf: Terraform, wd: Path, key: str) -> None:
        """``terraform apply`` of the plan file; a state Terraform could not write is kept aside."""
        watcher = asyncio.ensure_future(self._watch_lock(key)) if self.ctx.state_bucket is not None else None
        try:
            await tf.apply(ApplyOptions(plan_file=PLAN_FILE), cancel=self.cancel)
        except TerraformError as exc:
            if await asyncio.to_thread((wd / ERRORED_STATE).exists):
                raise await self._keep_state(wd, key, exc) from exc
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher

    async def _watch_lock(self, key: str) -> None:
        """Note the lock this job's apply takes (reported with the next heartbeat, sent at once)."""
        assert self.ctx.state_bucket is not None
        while True:
            try:
                lock = await self.ctx.state_bucket.read_lock(key)
            except AlethiaError:
                lock = None
            if lock is not None and lock.operation != PLAN_OPERATION:
                self.state_lock_id = lock.id
                self.lock_seen.set()
                if self._workdir is not None:  # a restarted runner then knows the lock too
                    with contextlib.suppress(OSError):
                        await asyncio.to_thread(self._mark_workdir, self._workdir, key)
                self.publisher.note("apply", "info", f"state {lock.describe()} on {key}")
                return
            await asyncio.sleep(self.ctx.lock_poll_seconds)

    async def _keep_state(self, wd: Path, key: str, exc: TerraformError) -> StateKept:
        """Keep ``errored.tfstate`` durably, record the pending recovery; the ERRORED message."""
        self.stage = "keep_state"
        reason = str(exc)
        if len(reason) > 600:
            reason = reason[:600] + "…"
        where = f"{wd / ERRORED_STATE} (working directory kept)"
        if self.ctx.keeper is not None:
            rec = await self.ctx.keeper.keep(
                job_id=self.job.id,
                spec_id=self.job.spec_id,
                workspace=self.job.workspace,
                state_key=key,
                workdir=wd,
                resources_applied=self.applied,
                lock_id=self.state_lock_id,
            )
            where = rec.location()
            if self.ctx.record_recovery is not None:
                try:
                    await self.ctx.record_recovery(rec)
                    rec.registered = True
                    self.ctx.keeper.save(rec)
                except Exception as err:  # the recovery loop records it when the service answers
                    log.warning("job %s: recording the state recovery failed: %s", self.job.id, err)
            if self.ctx.on_state_kept is not None:
                self.ctx.on_state_kept()
        lock = f" and releases the lock {self.state_lock_id} the apply left" if self.state_lock_id else ""
        return StateKept(
            f"Terraform could not write the state to the backend ({reason}). {self.applied} resource "
            f"change(s) were applied; the state Terraform kept (errored.tfstate) is at {where}. The "
            f"runner pushes it back to s3://{self.ctx.backend.bucket}/{key} (terraform state push, "
            f"which checks lineage and serial){lock} as soon as the backend answers; until then this "
            "workspace takes no job. Do not apply again before that (see docs/operations.md, "
            "'Recovered state')."
        )

    async def _unlock(self, key: str) -> None:
        """UNLOCK: ``terraform force-unlock`` of exactly the lock ID the job names."""
        self.stage = "unlock"
        if self.ctx.state_bucket is None:
            raise FailedPrecondition("this runner cannot read the state bucket: no unlock")
        wanted = self.job.lock_id
        lock = await self.ctx.state_bucket.read_lock(key)
        if lock is None:
            raise FailedPrecondition(f"the state {key} is not locked: nothing to release")
        if lock.id != wanted:
            raise FailedPrecondition(
                f"the state {key} is held by {lock.describe()}, not by lock {wanted}: nothing released "
                "(a PLAN of the Spec names the current lock)"
            )
        wd = await asyncio.to_thread(backend_only_dir, self.ctx.work_root, f"unlock-{self.job.id[:12]}")
        try:
            tf = self._terraform(wd)
            await self._init(tf, key)
            self.stage = "unlock"
            await tf.force_unlock(wanted, cancel=self.cancel)
        finally:
            await asyncio.to_thread(shutil.rmtree, wd, True)
        after = await self.ctx.state_bucket.read_lock(key)
        if after is not None and after.id == wanted:
            raise FailedPrecondition(f"terraform force-unlock ran but {after.describe()} is still on {key}")
        self.publisher.note("unlock", "info", f"released {lock.describe()} on {key}")

    async def _plan(self, tf: Terraform, wd: Path, destroy: bool) -> None:
        self.stage = "plan"
        # Every plan takes the lock (-lock=true): a PLAN on a workspace whose state another
        # Terraform holds is refused by Terraform itself, not only by _check_lock.
        await tf.plan(PlanOptions(out=PLAN_FILE, destroy=destroy, lock=True), cancel=self.cancel)
        # The plan file goes up while Terraform renders it as JSON: off the critical path.
        upload = asyncio.ensure_future(
            self.ctx.artifacts.put(self.job.id, PLAN_FILE, (wd / PLAN_FILE).read_bytes())
        )
        try:
            self.stage = "show"
            plan = await tf.show(ShowOptions(plan_file=PLAN_FILE), cancel=self.cancel)
            # Summarised first, then redacted in place (``plan`` is not used after): the parsed
            # plan is this job's own, so it is not copied (a serialize and a parse of the whole plan).
            changes = summarize_plan(plan)
            redacted, secrets = redact_plan(plan, copy=False)
            self.redactor.add(secrets)
            self.outcome.changes = changes
            plan_json = json.dumps(redacted, sort_keys=True).encode()
            (wd / PLAN_JSON).write_bytes(plan_json)
            stored_json = await self.ctx.artifacts.put(self.job.id, PLAN_JSON, plan_json, "application/json")
        except BaseException:
            with contextlib.suppress(BaseException):
                await upload
            raise
        self._uploaded(await upload)
        self._uploaded(stored_json)

    async def _cost(self, wd: Path) -> cost_mod.Cost:
        self.stage = "cost"
        return await cost_mod.estimate(wd / PLAN_JSON, self.ctx.child_env.infracost)

    async def _verified_plan(
        self,
        plan_job_id: str,
        local: tuple[bytes, bytes] | None = None,
        plan_job: asyncio.Future[snapshot_pb2.Job] | None = None,
    ) -> bytes:
        """The plan file of ``plan_job_id`` once it decrypts and its digest is the recorded one.

        Three checks, all before Terraform runs: each file opens (AES-GCM with the plan
        job's id and the file's name as associated data: altered, or moved from another job,
        it does not), its digest equals the one the plan job's database row recorded at
        CompleteJob (handed over with the claim), and the manifest vouches for the config
        hash and Terraform version. ``local`` is the (manifest, plan file) kept in the plan's
        working directory on this runner: checked against the same recorded digests instead
        of downloading; should they differ, the stored artifacts are downloaded and checked.
        ``plan_job``: the plan's job row, already being read.
        """
        recorded = {a.name: (a.sha256, int(a.size)) for a in self.plan_artifacts if a.name and a.sha256}
        plan_job_task = (
            plan_job if plan_job is not None else asyncio.ensure_future(self.ctx.get_job(plan_job_id))
        )
        try:
            if PLAN_FILE not in recorded or MANIFEST not in recorded:
                raise FailedPrecondition(
                    f"plan job {plan_job_id} has no artifact digests in its job record "
                    f"(recorded: {', '.join(sorted(recorded)) or 'none'}); re-plan"
                )
            return await self._verified_plan_files(plan_job_id, recorded, plan_job_task, local)
        finally:
            if not plan_job_task.done():
                plan_job_task.cancel()
                with contextlib.suppress(BaseException):
                    await plan_job_task
            elif not plan_job_task.cancelled():
                plan_job_task.exception()  # retrieved: a failure here is not the one reported

    async def _verified_plan_files(
        self,
        plan_job_id: str,
        recorded: dict[str, tuple[str, int]],
        plan_job_task: asyncio.Future[snapshot_pb2.Job],
        local: tuple[bytes, bytes] | None,
    ) -> bytes:
        if local is not None:
            manifest, plan_file = local
            try:
                verify_recorded({MANIFEST: manifest, PLAN_FILE: plan_file}, recorded)
            except FailedPrecondition as exc:
                self.publisher.note(
                    "verify", "warn", f"the kept plan files differ from the recorded digests ({exc.message})"
                )
                self._kept_files_rejected = True
                local = None
        try:
            if local is not None:
                manifest, files = local[0], {PLAN_FILE: local[1]}
            else:
                # Both downloads at once (the plan job row is being read meanwhile too).
                manifest, plan_file = await asyncio.gather(
                    self.ctx.artifacts.get(artifact_key(plan_job_id, MANIFEST)),
                    self.ctx.artifacts.get(artifact_key(plan_job_id, PLAN_FILE)),
                )
                files = {PLAN_FILE: plan_file}
        except FailedPrecondition as exc:
            raise FailedPrecondition(
                f"the plan artifact was altered: {exc.message}; re-plan", exc.preconditions
            ) from None
        except AlethiaError as exc:
            raise FailedPrecondition(
                f"plan job {plan_job_id} has no usable artifacts: {exc}; re-plan"
            ) from exc
        verify_recorded({MANIFEST: manifest, **files}, recorded)
        plan_job = await plan_job_task
        doc = verify_manifest(
            manifest, files, self.job.config_hash, terraform_version=self.ctx.terraform_version
        )
        if doc.get("job_id") != plan_job_id:
            raise FailedPrecondition(
                f"plan manifest belongs to job {doc.get('job_id')!r}, not {plan_job_id!r}"
            )
        plan_key = artifact_key(plan_job_id, PLAN_FILE)
        self.applied_plan_sha256 = sha256_hex(files[PLAN_FILE])
        # What this deploy applies is exactly the verified plan: report its change summary
        # (kept on the plan job) rather than an empty one.
        pc = plan_job.changes
        self.outcome.changes = ChangeSummary(
            add=pc.add,
            change=pc.change,
            destroy=pc.destroy,
            resources=tuple(ResourceChange(r.address, tuple(r.actions)) for r in pc.resources),
        )
        self._extra_manifest["applied_plan"] = {
            "job_id": plan_job_id,
            "sha256": self.applied_plan_sha256,
            "key": plan_key,
        }
        self.publisher.note(
            "verify", "info", f"plan of job {plan_job_id} verified (sha256 {self.applied_plan_sha256[:16]}…)"
        )
        return files[PLAN_FILE]

    def _prefetch_repository(self, snapshot: dict[str, Any]) -> asyncio.Future[Checkout] | None:
        """Start cloning the Spec's apps repository (token first: we hold the lease), or None."""
        repo = apps_repository(snapshot)
        if repo is None:
            return None
        url, branch = repo

        async def prefetch() -> Checkout:
            token = await self.get_git_token() if self.get_git_token is not None else ""
            self.redactor.add([token])
            rewrites = parse_url_rewrites(self.ctx.git_url_rewrite)
            return await checkout(url, branch, token, rewrites, self.redactor, self.ctx.child_env.git)

        return asyncio.ensure_future(prefetch())

    async def _post_apply(
        self,
        snapshot: dict[str, Any],
        outputs: list[RedactedOutput],
        prefetched: asyncio.Future[Checkout] | None = None,
    ) -> None:
        async def store(name: str, data: bytes) -> None:
            self._uploaded(await self.ctx.artifacts.put(self.job.id, name, data, "application/yaml"))

        steps = await run_post_apply(
            PostApplyContext(
                snapshot=snapshot,
                outputs=outputs,
                redactor=self.redactor,
                git_rewrites=parse_url_rewrites(self.ctx.git_url_rewrite),
                job_id=self.job.id,
                fetch_git_token=self.get_git_token,
                store_artifact=store,
                git_env=self.ctx.child_env.git,
                kube_env=self.ctx.child_env.kube,
                prefetched=prefetched,
            )
        )
        self.outcome.steps = steps
        for s in steps:
            self.publisher.note(
                "post_apply", "error" if s.status == "failed" else "info", f"{s.name}: {s.status} {s.detail}"
            )
        failed = [s for s in steps if s.status == "failed"]
        if failed:
            raise FailedPrecondition(
                "post-apply failed: "
                + "; ".join(f"{s.name}: {s.detail}" for s in failed)
                + " (the infrastructure is applied; a new DEPLOY re-runs the steps)"
            )

    # ------------------------------------------------------------------ plumbing

    def _terraform(self, wd: Path) -> Terraform:
        """Terraform in ``wd`` as every command of a job runs it: its env, messages, grace."""
        return Terraform(
            wd,
            self.ctx.binary,
            env=self.ctx.child_env.terraform,
            on_message=self._on_message,
            grace_seconds=self.ctx.terraform_grace_seconds,
        )

    def _on_message(self, stage: str, message: dict[str, Any], raw: str) -> None:
        kind = message.get("type")
        if kind == "apply_complete":
            self.applied += 1
        elif kind == "outputs" and stage == "apply":
            self._streamed_outputs = streamed_outputs(message)
        self.publisher.emit(stage, message, raw)

    def _uploaded(self, art: StoredArtifact) -> None:
        self.outcome.artifacts = [a for a in self.outcome.artifacts if a.name != art.name] + [art]

    async def _finish_artifacts(self, succeeded: bool) -> None:
        """The log always; the manifest last and only for a successful job."""
        try:
            self._uploaded(
                await self.ctx.artifacts.put(self.job.id, LOG_FILE, self.publisher.log_text(), "text/plain")
            )
            if succeeded:
                manifest = build_manifest(
                    self.job.id,
                    self.job.config_hash,
                    self.ctx.terraform_version,
                    list(self.outcome.artifacts),
                    {
                        "job_type": events_pb2.JobType.Name(self.job.type),
                        "attempt": self.attempt,
                        "encryption": self.ctx.artifacts.encryption(),
                        **self._extra_manifest,
                    },
                )
                self._uploaded(
                    await self.ctx.artifacts.put(self.job.id, MANIFEST, manifest, "application/json")
                )
                self._manifest = manifest
        except AlethiaError as exc:
            if self.outcome.status == events_pb2.SUCCEEDED:
                self.outcome.status = events_pb2.FAILED
                self.outcome.error = f"storing artifacts failed: {exc}"
            else:
                self.outcome.error += f"; storing the log failed: {exc}"

    def result(self) -> snapshot_pb2.JobResult:
        """The outcome as the ``CompleteJob`` result message."""
        out = self.outcome
        res = snapshot_pb2.JobResult(
            status=out.status,  # type: ignore[arg-type]
            error=out.error,
            resources_applied=self.applied,
            state_lock_id=self.state_lock_id,
        )
        if out.changes is not None:
            res.changes.CopyFrom(
                events_pb2.ChangeSummary(
                    add=out.changes.add,
                    change=out.changes.change,
                    destroy=out.changes.destroy,
                    resources=[
                        events_pb2.ResourceChange(address=r.address, actions=list(r.actions))
                        for r in out.changes.resources
                    ],
                )
            )
        if out.cost is not None:
            res.cost.CopyFrom(
                events_pb2.CostEstimate(
                    status=out.cost.status,
                    reason=out.cost.reason,
                    currency=out.cost.currency,
                    total_monthly_cost=out.cost.total_monthly_cost,
                    breakdown_json=out.cost.breakdown_json,
                )
            )
        res.outputs.extend(
            events_pb2.Output(name=o.name, sensitive=o.sensitive, value_json=o.value_json)
            for o in out.outputs
        )
        res.artifacts.extend(
            events_pb2.Artifact(name=a.name, key=a.key, sha256=a.sha256, size=a.size) for a in out.artifacts
        )
        res.post_apply_steps.extend(
            events_pb2.StepResult(name=s.name, status=s.status, detail=s.detail) for s in out.steps
        )
        return res


def streamed_outputs(message: dict[str, Any]) -> dict[str, Any] | None:
    """The ``outputs`` message of ``apply -json`` as ``output -json`` prints them, or None.

    Terraform prints every root output there once the apply is done, in the shape
    ``output -json`` has (``sensitive``, ``type``, ``value``), except that a sensitive
    output's value is left out: it is redacted anyway (:func:`redact_outputs`), so it never
    reaches this process at all. None when the message is not that shape (then
    ``terraform output -json`` is asked).
    """
    outputs = message.get("outputs")
    if not isinstance(outputs, dict):
        return None
    for entry in outputs.values():
        if not isinstance(entry, dict) or "action" in entry:
            return None  # a plan's planned output changes, not values
        if not entry.get("sensitive") and "value" not in entry:
            return None
    return outputs


async def _discard_checkout(prefetch: asyncio.Future[Checkout]) -> None:
    """Stop a clone still running, remove one left unused (the push closes the one it used)."""
    if not prefetch.done():
        prefetch.cancel()
        with contextlib.suppress(BaseException):
            await prefetch
        return
    if prefetch.cancelled() or prefetch.exception() is not None:
        return  # a failed clone cleaned up after itself; the push reported its own attempt
    await asyncio.to_thread(prefetch.result().close)
