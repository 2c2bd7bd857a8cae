"""The job queue: queue, claim, heartbeat, complete, cancel, rescue, and the git token gate.

Each operation is one database transaction that changes the job row with a guarded
``UPDATE`` and writes the job's events (and runner wake-ups) to the outbox in that same
transaction; the relay publishes them after commit. Calls to the spec service happen
before the transaction opens, never inside it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alethia.database import Query, Steps, begin_write, driver_statement, run_on_driver
from alethia.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
)
from services.snapshot import store
from services.snapshot.events import (
    dispatch_outbox_row,
    event_outbox_row,
    job_event,
    redact_outputs,
)
from services.snapshot.git_tokens import GitTokenSource
from services.snapshot.jobs import (
    COMPLETION_STATUSES,
    TERMINAL,
    TERMINAL_EVENTS,
    JobRecord,
    JobStatus,
    JobType,
    SetState,
    completion_events,
    infrastructure_summary,
    rescue_target,
)
from services.snapshot.snapshot import (
    build_snapshot,
    changed_fields,
    freeze,
    remember_job_text,
    snapshot_workspace,
    state_key,
)
from services.snapshot.spec_source import SpecReader

log = logging.getLogger(__name__)

Row = store.Row

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_LEASE_SECONDS = 3600
# One answer for every refusal of GetGitToken, so a caller learns nothing from it.
GIT_TOKEN_REFUSED = "no current lease on this job for that token"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Snapshot:
    """A frozen Spec: the snapshot, its hash and the revision it was read at."""

    snapshot: dict[str, Any]
    config_hash: str
    spec_revision: int
    text: str = ""  # the canonical JSON of ``snapshot`` (computed with the hash, in one pass)


@dataclass(frozen=True)
class Claim:
    """A claimed job and its lease."""

    job: Row
    lease_token: str
    expires_at: datetime
    # A DEPLOY of a saved plan: that plan's artifacts as its row recorded them at CompleteJob.
    plan_artifacts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JobResult:
    """What a runner reports in CompleteJob (outputs already redacted by the runner)."""

    status: str
    changes: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    post_apply_steps: list[dict[str, Any]] = field(default_factory=list)
    resources_applied: int = 0
    state_lock_id: str = ""


@dataclass(frozen=True)
class RecoveryReport:
    """What a runner reports when Terraform could not write state: where the state is kept."""

    job_id: str
    location: str
    resources_applied: int = 0
    lock_id: str = ""
    runner_id: str = ""
    detail: str = ""


def _check_held(row: Row | None, job_id: str, token: str) -> Row:
    """``row`` when it is RUNNING under lease ``token``; NotFound / lease lost otherwise."""
    if row is None:
        raise NotFound(f"job {job_id} not found")
    if (
        row["status"] != JobStatus.RUNNING
        or not row["lease_token"]
        or not hmac.compare_digest(row["lease_token"], token)
    ):
        raise _lease_lost(job_id)
    return row


def _lease_lost(job_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"job {job_id} is not held by this lease (it expired, was rescued, or the job is finished): "
        "stop working on it",
        [PreconditionViolation("LEASE", f"jobs/{job_id}", "lease is not current")],
    )


def unlock_command(spec_id: str, lock_id: str) -> str:
    """The exact command that releases a stale state lock through a runner."""
    return f"alethia unlock {spec_id} --lock-id {lock_id or '<LOCK_ID>'}"


def recovery_message(rec: Row) -> str:
    """Why a workspace takes no job: applied state is kept aside and not yet pushed back."""
    return (
        f"workspace {rec['workspace']} has applied state that is not in the backend yet: job "
        f"{rec['job_id']} applied {rec['resources_applied']} resource change(s) but Terraform could "
        f"not write the state {rec['state_key']}; it is kept at {rec['location']} and a runner pushes "
        "it back (terraform state push) as soon as the backend answers. No job may run on this "
        "workspace until then (see docs/operations.md, 'Recovered state')"
    )


def _recovery_refusal(rec: Row) -> FailedPrecondition:
    return FailedPrecondition(
        recovery_message(rec),
        [PreconditionViolation("STATE_RECOVERY_PENDING", f"workspaces/{rec['workspace']}", rec["location"])],
    )


class JobQueue:
    """The domain operations of the snapshot service, over its store and the spec service."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        specs: SpecReader,
        tokens: GitTokenSource,
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.specs = specs
        self.tokens = tokens
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._on_commit = on_commit

    def _committed(self) -> None:
        """Wake the relay: new outbox rows are committed."""
        if self._on_commit is not None:
            self._on_commit()

    # ------------------------------------------------------------ snapshot

    async def build_snapshot(self, spec_id: str) -> Snapshot:
        """Read the Spec through the spec service and freeze it (no job is created)."""
        if not spec_id:
            raise InvalidArgument.one("spec_id", "required")
        spec = await self.specs.get_spec(spec_id)
        snap = build_snapshot(spec)
        text, chash = freeze(snap)
        return Snapshot(snap, chash, int(spec.revision), text)

    # ------------------------------------------------------------ queue

    async def queue_job(
        self,
        spec_id: str,
        job_type: str,
        plan_job_id: str = "",
        idempotency_key: str = "",
        requested_by: str = "",
        check_zone: Callable[[str], None] | None = None,
        lock_id: str = "",
    ) -> tuple[Row, int]:
        """Freeze the Spec and queue a job; the same idempotency key returns the same job.

        Returns the job and its 1-based queue position in its workspace (0 unless QUEUED),
        read in the same transaction: QueueJob answered it with a second read (a checkout,
        BEGIN, two statements and ROLLBACK) after the commit.

        ``check_zone`` is called with the Spec's zone before anything is written (it raises
        to refuse a caller outside that zone).
        Refused while the workspace has applied state not pushed back yet (but an UNLOCK).
        An UNLOCK names the lock (``lock_id``) and is refused while a job of the workspace runs.
        """
        violations: list[FieldViolation] = []
        if not spec_id:
            violations.append(FieldViolation("spec_id", "required"))
        if job_type not in JobType.__members__:
            violations.append(FieldViolation("type", "must be PLAN, DEPLOY, DESTROY or UNLOCK"))
        else:
            if plan_job_id and job_type != JobType.DEPLOY:
                violations.append(FieldViolation("plan_job_id", "only a DEPLOY applies a plan"))
            if job_type == JobType.UNLOCK and not lock_id:
                violations.append(
                    FieldViolation("lock_id", "required for an UNLOCK (the ID of the state lock)")
                )
            elif lock_id and job_type != JobType.UNLOCK:
                violations.append(FieldViolation("lock_id", "only an UNLOCK names a lock"))
        if lock_id and not _LOCK_ID.fullmatch(lock_id):
            violations.append(
                FieldViolation("lock_id", "not a Terraform lock ID (letters, digits and '-', at most 64)")
            )
        for name, value, limit in (
            ("idempotency_key", idempotency_key, 256),
            ("requested_by", requested_by, 256),
        ):
            if problem := _text_problem(value, limit):
                violations.append(FieldViolation(name, problem))
        if _text_problem(plan_job_id, 36):
            violations.append(FieldViolation("plan_job_id", "not a job id"))
        if violations:
            raise InvalidArgument(violations)
        jtype = JobType(job_type)

        if idempotency_key:
            # The key is looked up while the Spec is read and frozen (both wait on another
            # server): a first request no longer waits for the two one after the other; a
            # retry drops the snapshot (and any error reading it).
            build = asyncio.ensure_future(self.build_snapshot(spec_id))
            answered = True
            try:
                async with self.sessions() as session:
                    existing = await store.get_job_by_idempotency_key(session, idempotency_key)
                    if existing is not None:
                        same = self._same_request(existing, spec_id, jtype, plan_job_id)
                        return same, await store.queue_position(session, same)
                answered = False
            finally:
                if answered:  # returned or raised: the snapshot is not needed
                    _drop(build)
            frozen = await build
        else:
            frozen = await self.build_snapshot(spec_id)
        if check_zone is not None:
            check_zone(str(frozen.snapshot.get("zone_id", "")))
        now = _now()
        job_id = str(uuid.uuid4())
        try:
            async with begin_write(self.sessions) as session:
                snap, chash, revision = frozen.snapshot, frozen.config_hash, frozen.spec_revision
                if plan_job_id:
                    plan = await self._applicable_plan(session, plan_job_id, spec_id, frozen)
                    # The deploy applies exactly what was planned: the plan's frozen snapshot.
                    snap, chash, revision = plan["snapshot"], plan["config_hash"], plan["spec_revision"]
                workspace = snapshot_workspace(snap)
                await self._workspace_open(session, workspace, jtype, spec_id)
                values = store.new_job_row(
                    job_id=job_id,
                    spec_id=spec_id,
                    job_type=jtype,
                    snapshot=snap,
                    config_hash=chash,
                    spec_revision=revision,
                    workspace=workspace,
                    plan_job_id=plan_job_id or None,
                    idempotency_key=idempotency_key or None,
                    requested_by=requested_by,
                    max_attempts=self.max_attempts if jtype is JobType.PLAN else 1,
                    now=now,
                    lock_id=lock_id or None,
                )
                row = await store.insert_job(session, values)
                if not plan_job_id:  # a DEPLOY of a plan carries the plan's snapshot, not this one
                    remember_job_text(job_id, chash, frozen.text)
                what = f"{jtype.value} of lock {lock_id}" if lock_id else jtype.value
                ev = job_event(row, "queued", f"{what} queued by {requested_by or 'unknown'}", now)
                await store.add_outbox(
                    session,
                    [event_outbox_row(ev, now), dispatch_outbox_row(row["id"], row["workspace"], now)],
                )
                position = await store.queue_position(session, row)
        except IntegrityError:
            # Lost a race: either the same idempotency key, or another deploy took the plan.
            async with self.sessions() as session:
                if idempotency_key:
                    existing = await store.get_job_by_idempotency_key(session, idempotency_key)
                    if existing is not None:
                        same = self._same_request(existing, spec_id, jtype, plan_job_id)
                        return same, await store.queue_position(session, same)
                if plan_job_id:
                    other = await store.consuming_deploy(session, plan_job_id)
                    raise FailedPrecondition(
                        f"plan {plan_job_id} is already applied or being applied"
                        + (f" by job {other['id']}" if other else ""),
                        [PreconditionViolation("PLAN_APPLIED", f"jobs/{plan_job_id}", "already applied")],
                    ) from None
            raise
        self._committed()
        return row, position

    async def _workspace_open(
        self, session: AsyncSession, workspace: str, jtype: JobType, spec_id: str
    ) -> None:
        """Refuse a job the workspace cannot take now (pending state recovery; UNLOCK while running)."""
        if jtype is not JobType.UNLOCK:
            rec = await store.pending_recovery(session, workspace)
            if rec is not None:
                raise _recovery_refusal(rec)
            return
        running = await store.running_job(session, workspace)
        if running is not None:
            raise FailedPrecondition(
                f"job {running['id']} ({running['type']}) is RUNNING on workspace {workspace}: its "
                "Terraform may hold the lock right now. Wait for it to end (or cancel it: "
                f"`alethia jobs cancel {running['id']}`), then unlock if the lock is still there",
                [PreconditionViolation("JOB_RUNNING", f"jobs/{running['id']}", "status is RUNNING")],
            )

    @staticmethod
    def _same_request(existing: Row, spec_id: str, jtype: JobType, plan_job_id: str) -> Row:
        if (existing["spec_id"], existing["type"], existing["plan_job_id"] or "") != (
            spec_id,
            jtype.value,
            plan_job_id,
        ):
            raise InvalidArgument.one(
                "idempotency_key", f"already used by job {existing['id']} for a different request"
            )
        return existing

    async def _applicable_plan(
        self, session: AsyncSession, plan_job_id: str, spec_id: str, current: Snapshot
    ) -> Row:
        """The PLAN a DEPLOY may apply, or the reason it may not."""
        plan = await store.get_job(session, plan_job_id)
        if plan is None:
            raise NotFound(f"plan job {plan_job_id} not found")
        if plan["type"] != JobType.PLAN:
            raise InvalidArgument.one("plan_job_id", f"job {plan_job_id} is a {plan['type']}, not a PLAN")
        if plan["spec_id"] != spec_id:
            raise InvalidArgument.one("plan_job_id", f"plan {plan_job_id} belongs to another spec")
        subject = f"jobs/{plan_job_id}"
        if plan["status"] != JobStatus.SUCCEEDED:
            raise FailedPrecondition(
                f"plan {plan_job_id} is {plan['status']}: only a SUCCEEDED plan can be applied",
                [PreconditionViolation("PLAN_STATUS", subject, f"status is {plan['status']}")],
            )
        if plan["applied_by_job_id"]:
            raise FailedPrecondition(
                f"plan {plan_job_id} was already applied by job {plan['applied_by_job_id']}: re-plan",
                [PreconditionViolation("PLAN_APPLIED", subject, "already applied")],
            )
        other = await store.consuming_deploy(session, plan_job_id)
        if other is not None:
            raise FailedPrecondition(
                f"plan {plan_job_id} is already being applied by job {other['id']} ({other['status']})",
                [
                    PreconditionViolation(
                        "PLAN_APPLIED", subject, f"deploy {other['id']} is {other['status']}"
                    )
                ],
            )
        if plan["config_hash"] != current.config_hash:
            changes = changed_fields(plan["snapshot"], current.snapshot)
            paths = list(dict.fromkeys(c.field for c in changes))
            raise FailedPrecondition(
                f"the spec changed since plan {plan_job_id} (hash mismatch): re-plan before applying. "
                f"Changed: {', '.join(paths) if paths else '(unknown)'}",
                [PreconditionViolation("PLAN_HASH", c.field, c.description) for c in changes],
            )
        return plan

    # ------------------------------------------------------------ reads

    async def infrastructure_state(self, spec_id: str) -> dict[str, Any]:
        """What the Spec's job history says about its infrastructure (see ``jobs.infrastructure_summary``)."""
        _require_id(spec_id, "spec_id", "spec")
        async with self.sessions() as session:
            rows = await store.infrastructure_jobs(session, spec_id)
        summary = infrastructure_summary(rows)
        summary["spec_id"] = spec_id
        summary["state_key"] = state_key(str(summary["workspace"])) if summary["workspace"] else ""
        return summary

    async def get_job(self, job_id: str) -> tuple[Row, int]:
        """The job and its 1-based queue position within its workspace (0 unless QUEUED)."""
        _require_id(job_id, "id", "job")
        async with self.sessions() as session:
            row = await store.get_job(session, job_id)
            if row is None:
                raise NotFound(f"job {job_id} not found")
            return row, await store.queue_position(session, row)

    async def list_jobs(
        self,
        spec_id: str = "",
        status: str = "",
        page_size: int = 0,
        page_token: str = "",
        zones: Sequence[str] | None = None,
    ) -> tuple[list[Row], str]:
        """Jobs newest first, filtered by spec and status (and to ``zones`` when given);
        returns (jobs, next_page_token)."""
        violations = []
        if page_size < 0:
            violations.append(FieldViolation("page_size", "must not be negative"))
        if status and status not in JobStatus.__members__:
            violations.append(FieldViolation("status", "unknown status"))
        if _text_problem(spec_id, 64):
            violations.append(FieldViolation("spec_id", "not a spec id"))
        before: int | None = None
        if page_token:
            try:
                before = store.decode_page_token(page_token)
            except (ValueError, UnicodeDecodeError):
                violations.append(FieldViolation("page_token", "not a page token from ListJobs"))
        if violations:
            raise InvalidArgument(violations)
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self.sessions() as session:
            rows = await store.list_jobs(session, spec_id, status, limit + 1, before, zones)
        next_token = store.encode_page_token(rows[limit - 1]["seq"]) if len(rows) > limit else ""
        return rows[:limit], next_token

    # ------------------------------------------------------------ cancel

    async def cancel_job(self, job_id: str) -> Row:
        """QUEUED: cancelled at once. RUNNING: the request is recorded and the runner told."""
        _require_id(job_id, "id", "job")
        now = _now()
        async with begin_write(self.sessions) as session:
            for _ in range(3):  # a claim may win between our read and our guarded update
                row = await store.get_job(session, job_id)
                if row is None:
                    raise NotFound(f"job {job_id} not found")
                job = JobRecord.from_row(row)
                status = job.status
                if status is JobStatus.QUEUED:
                    updated = await store.set_state(session, SetState.cancel_queued(job, now))
                    if updated is None:
                        continue
                    rows = [event_outbox_row(job_event(updated, "cancelled", updated["error"], now), now)]
                    rows += await self._next_dispatch(session, updated["workspace"], now)
                    await store.add_outbox(session, rows)
                    break
                if status is JobStatus.RUNNING:
                    if job.cancel_requested:
                        return row
                    updated = await store.set_state(session, SetState.request_cancel(job, now))
                    if updated is None:
                        continue
                    ev = job_event(
                        updated, "cancel_requested", "cancel requested: the runner stops Terraform", now
                    )
                    await store.add_outbox(session, [event_outbox_row(ev, now)])
                    break
                raise FailedPrecondition(
                    f"job {job_id} is already {status.value}: nothing to cancel",
                    [PreconditionViolation("JOB_STATUS", f"jobs/{job_id}", f"status is {status.value}")],
                )
            else:  # pragma: no cover - three lost races in a row
                raise FailedPrecondition(f"job {job_id} changed while cancelling it: retry")
        self._committed()
        return updated

    # ------------------------------------------------------------ runner side

    async def claim_job(self, runner_id: str, lease_seconds: int = 0) -> Claim | None:
        """Claim the oldest claimable job (per-workspace FIFO, one running per workspace)."""
        _require_claim(runner_id, lease_seconds)
        now = _now()
        engine = self._driver_engine()
        if engine is not None:
            try:
                fast = await run_on_driver(
                    engine, lambda: self._fast_steps(engine, None, runner_id, lease_seconds, now)
                )
            except IntegrityError:
                return None  # as below: another claimer took the workspace first
            if fast is not None:
                _, claim, _ = fast
                if claim is not None:
                    self._committed()
                return claim
        try:
            async with begin_write(self.sessions) as session:
                claim, rows, refused = await self._claim_in(session, runner_id, lease_seconds, now)
                await store.add_outbox(session, rows)
        except IntegrityError:
            # Another claimer started a job in the same workspace first (the partial unique
            # index refused a second RUNNING row): nothing is claimable for us right now.
            return None
        if claim is not None or refused:
            self._committed()  # a claim, or the refusals a claim that found nothing committed
        return claim

    async def _claim_in(
        self, session: AsyncSession, runner_id: str, lease_seconds: int, now: datetime
    ) -> tuple[Claim | None, list[Row], int]:
        """The claim inside the caller's write transaction: the claim (or None), the outbox
        rows it calls for (the caller writes them), and how many blocked jobs it refused.

        Raises ``IntegrityError`` when another claimer took the workspace first."""
        seconds, token, expires = self._new_lease(lease_seconds, now)
        refused = 0
        row = await store.claim(session, runner_id, token, round(seconds), expires, now)
        if row is None:
            # Only an idle queue pays for this check (the rescuer makes it too): a job
            # that slipped in before a recovery was recorded is never claimed, but it
            # may be all that keeps an UNLOCK of its workspace waiting.
            refused = await self._refuse_blocked(session, now)
            if refused:
                row = await store.claim(session, runner_id, token, round(seconds), expires, now)
        if row is None:
            return None, [], refused
        plan = await store.get_job(session, row["plan_job_id"]) if _applies_a_plan(row) else None
        claim, started = _started(row, runner_id, token, expires, plan, now)
        return claim, [started], refused

    def _new_lease(self, lease_seconds: int, now: datetime) -> tuple[float, str, datetime]:
        """A claim's lease: its duration (the request's, else the default), token and expiry."""
        seconds = lease_seconds or self.lease_seconds
        return seconds, secrets.token_urlsafe(32), now + timedelta(seconds=seconds)

    async def _refuse_blocked(self, session: AsyncSession, now: datetime) -> int:
        """FAIL the QUEUED jobs (but UNLOCKs) of workspaces whose applied state is not pushed back.

        QueueJob refuses them already; this catches one queued in the instant before a
        recovery was recorded, so it neither runs on a stale state nor blocks an UNLOCK.
        Made by a claim that found nothing, and by every rescuer pass. Returns how many.
        """
        pending = await store.list_recoveries(session, include_resolved=False, workspace="")
        if not pending:
            return 0
        rows = []
        for rec in pending:
            reason = recovery_message(rec)
            for queued in await store.queued_jobs(session, rec["workspace"]):
                if queued["type"] == JobType.UNLOCK:
                    continue
                failed = await store.set_state(
                    session, SetState.refuse_queued(JobRecord.from_row(queued), reason, now)
                )
                if failed is not None:
                    rows.append(event_outbox_row(job_event(failed, "failed", reason, now), now))
        await store.add_outbox(session, rows)
        return len(rows)

    async def _held(self, session: AsyncSession, job_id: str, token: str) -> Row:
        return _check_held(await store.get_job(session, job_id), job_id, token)

    async def heartbeat(self, job_id: str, token: str, state_lock_id: str = "") -> tuple[datetime, bool]:
        """Extend the lease by its duration; answers whether a cancel was requested.

        ``state_lock_id``: the state lock the job's Terraform holds now (kept on the job, so
        a rescue can name it and a PLAN that meets it can say which job took it).
        """
        _require_lease(job_id, token)
        if state_lock_id and not _LOCK_ID.fullmatch(state_lock_id):
            raise InvalidArgument.one("state_lock_id", "not a Terraform lock ID")
        now = _now()
        async with begin_write(self.sessions) as session:
            job = JobRecord.from_row(await self._held(session, job_id, token))
            expires = now + timedelta(seconds=job.lease_seconds or self.lease_seconds)
            change = SetState.extend_lease(job, token, expires, now, state_lock_id=state_lock_id)
            updated = await store.set_state(session, change)
            if updated is None:
                raise _lease_lost(job_id)
        return expires, bool(updated["cancel_requested"])

    async def complete_job(self, job_id: str, token: str, result: JobResult) -> Row:
        """Record a runner's result; only the current lease holder may. A retry is answered alike."""
        target, outcome = _completion(job_id, token, result)
        now = _now()
        engine = self._driver_engine()
        if engine is not None and target in _UNREAD_TARGETS:
            completion = _Completion(job_id, token, target, outcome, result.error)
            fast = await run_on_driver(engine, lambda: self._fast_steps(engine, completion, None, 0, now))
            if fast is not None:
                self._committed()  # a completion always writes its events
                return fast[0]
        async with begin_write(self.sessions) as session:
            updated, rows = await self._complete_in(
                session, job_id, token, target, outcome, result.error, now
            )
            await store.add_outbox(session, rows)
        if rows:
            self._committed()
        return updated

    async def _complete_in(
        self,
        session: AsyncSession,
        job_id: str,
        token: str,
        target: JobStatus,
        outcome: dict[str, Any],
        error: str,
        now: datetime,
    ) -> tuple[Row, list[Row]]:
        """The completion inside the caller's write transaction: the job's row after it, and
        the outbox rows it calls for (none for a retried completion that already committed)."""
        updated, head = None, None
        if target in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
            # The guarded UPDATE alone: the row is read only when it matched nothing.
            change = SetState.complete_unread(job_id, token, target, outcome, now)
            updated, head = await store.set_state_and_head(session, change)
        if updated is None:
            row = await store.get_job(session, job_id)
            if row is None:
                raise NotFound(f"job {job_id} not found")
            if (
                row["status"] == target
                and row["lease_token"]
                and hmac.compare_digest(row["lease_token"], token)
            ):
                return row, []  # the runner retried a completion that already committed
            job = JobRecord.from_row(_check_held(row, job_id, token))
            change = SetState.complete(job, token, target, outcome, now)
            updated, head = await store.set_state_and_head(session, change)
            if updated is None:
                raise _lease_lost(job_id)
        rows = self._completion_rows(updated, target, error, now)
        if target is JobStatus.SUCCEEDED and _applies_a_plan(updated):
            await store.mark_plan_applied(session, updated["plan_job_id"], job_id, now)
        if head:  # the workspace's next job may start now: wake the runners
            rows.append(dispatch_outbox_row(head, updated["workspace"], now))
        return updated, rows

    async def complete_and_claim(
        self, job_id: str, token: str, result: JobResult, runner_id: str, lease_seconds: int = 0
    ) -> tuple[Row, Claim | None]:
        """:meth:`complete_job`, then :meth:`claim_job` for ``runner_id``: one call per job.

        Both in one write transaction (one BEGIN/COMMIT and one outbox write per job instead
        of two of each). A claim must never undo a committed result, so when the claim fails
        (another claimer took the workspace first: ``IntegrityError``) the whole transaction
        rolls back and is done again as two: the completion alone (a retried completion is
        answered alike), then a claim of its own. Every argument is checked before anything
        is written.
        """
        _require_claim(runner_id, lease_seconds, "next.")
        target, outcome = _completion(job_id, token, result)
        now = _now()
        engine = self._driver_engine()
        try:
            if engine is not None and target in _UNREAD_TARGETS:
                completion = _Completion(job_id, token, target, outcome, result.error)
                fast = await run_on_driver(
                    engine, lambda: self._fast_steps(engine, completion, runner_id, lease_seconds, now)
                )
                if fast is not None:
                    self._committed()  # a completion always writes its events
                    return fast[0], fast[1]
            async with begin_write(self.sessions) as session:
                updated, rows = await self._complete_in(
                    session, job_id, token, target, outcome, result.error, now
                )
                claim, claim_rows, refused = await self._claim_in(session, runner_id, lease_seconds, now)
                await store.add_outbox(session, rows + claim_rows)
        except IntegrityError:
            return await self.complete_job(job_id, token, result), await self.claim_job(
                runner_id, lease_seconds
            )
        if rows or claim is not None or refused:
            self._committed()
        return updated, claim

    # ------------------------------------------------------------ the driver path

    def _driver_engine(self) -> AsyncEngine | None:
        """The engine of the sessions, for the hot transactions run on its driver (see below)."""
        bind = self.sessions.kw.get("bind")
        return bind if isinstance(bind, AsyncEngine) else None

    def _fast_steps(
        self,
        engine: AsyncEngine,
        completion: _Completion | None,
        runner_id: str | None,
        lease_seconds: int,
        now: datetime,
    ) -> Steps[tuple[Row, Claim | None, int] | None]:
        """The common completion and claim as one driver transaction (:func:`run_on_driver`).

        ``complete_and_claim``, ``complete_job`` and ``claim_job`` spent most of the
        service's CPU per job in the session (statement handling, result wrapping) and, on
        SQLite, ~20 hops into aiosqlite's thread. The same statements as :meth:`_complete_in`
        and :meth:`_claim_in` (the store's, compiled once per dialect) run here for their
        common case: a SUCCEEDED or CANCELLED completion whose guarded UPDATE matches, then a
        claim that finds a job or finds nothing with no state recovery pending.

        Anything else rolls back and returns None, and the caller does the whole operation
        again on the session path, which handles it (a retried completion answered alike,
        a lost lease, refusing blocked jobs): a rare branch then costs one transaction more,
        never a different answer. ``IntegrityError`` (another claimer took the workspace)
        propagates, as from the session path.
        """
        dialect = engine.dialect
        pg = dialect.name == "postgresql"

        def query(stmt: Any, params: dict[str, Any]) -> Query:
            return Query(driver_statement(dialect, stmt), params)

        rows: list[Row] = []
        updated: Row = {}
        if completion is not None:
            job_id = completion.job_id
            change = SetState.complete_unread(
                job_id, completion.token, completion.target, completion.outcome, now
            )
            stmt, params = store.change_statement(change, with_head=pg)
            found = yield query(stmt, params)
            if not found:
                return None, False  # not RUNNING under this lease: the session path answers
            updated = found[0]
            if pg:
                head = updated.pop("next_job_id")
            else:
                heads = yield query(store.WORKSPACE_HEAD, {"head_workspace": updated["workspace"]})
                head = heads[0]["id"] if heads else None
            rows = self._completion_rows(updated, completion.target, completion.error, now)
            if completion.target is JobStatus.SUCCEEDED and _applies_a_plan(updated):
                yield query(
                    store.MARK_PLAN_APPLIED,
                    store.mark_plan_applied_params(updated["plan_job_id"], job_id, now),
                )
            if head:  # the workspace's next job may start now: wake the runners
                rows.append(dispatch_outbox_row(str(head), updated["workspace"], now))
        claim: Claim | None = None
        if runner_id is not None:
            seconds, token, expires = self._new_lease(lease_seconds, now)
            params = store.claim_params(runner_id, token, round(seconds), expires, now)
            claimed = yield query(store.claim_statement(pg), params)
            if not claimed:
                pending = yield query(store.ANY_PENDING_RECOVERY, {})
                if pending:  # blocked jobs to refuse first (:meth:`_refuse_blocked`)
                    return None, False
            else:
                row = claimed[0]
                plan = None
                if _applies_a_plan(row):
                    plans = yield query(store.JOB_BY_ID, {"g_id": row["plan_job_id"]})
                    plan = plans[0] if plans else None
                claim, started = _started(row, runner_id, token, expires, plan, now)
                rows.append(started)
        if rows:
            yield query(*store.outbox_insert(rows))
        return (updated, claim, len(rows)), True

    @staticmethod
    def _completion_rows(updated: Row, target: JobStatus, error: str, now: datetime) -> list[Row]:
        """The events of a completion (as outbox rows), the job's row after it given."""
        rows = []
        for event_type in completion_events(JobType(updated["type"]), target):
            message = error if event_type in ("failed", "errored") else ""
            if event_type == "cancelled":
                message = error or "cancelled on request"
            rows.append(event_outbox_row(job_event(updated, event_type, message, now), now))
        return rows

    async def git_token(self, job_id: str, token: str) -> tuple[str, str]:
        """(token, repository_url) for the holder of the job's current, unexpired lease."""
        async with self.sessions() as session:
            # A malformed id is refused like any other: one answer that tells the caller nothing.
            row = await store.get_job(session, job_id) if job_id and not _text_problem(job_id, 64) else None
        if (
            row is None
            or row["status"] != JobStatus.RUNNING
            or not row["lease_token"]
            or not token
            or not hmac.compare_digest(row["lease_token"], token)
            or row["lease_expires_at"] is None
            or row["lease_expires_at"] <= _now()
        ):
            raise PermissionDenied(GIT_TOKEN_REFUSED)
        repos = (row["snapshot"] or {}).get("repositories") or []
        if not repos:
            raise FailedPrecondition(
                "the spec has no apps repository: no git token is needed",
                [PreconditionViolation("REPOSITORY", f"jobs/{job_id}", "no repositories")],
            )
        url = str(repos[0]["url"])
        return self.tokens.token_for(url), url

    # ------------------------------------------------------------ state recovery

    async def record_state_recovery(self, report: RecoveryReport) -> Row:
        """Record that ``report.job_id``'s applied state is kept aside; the workspace then takes no job.

        Jobs already QUEUED on the workspace are FAILED with the explanation (their plans
        predate the applied state). Recording the same job again returns the record.
        """
        violations = []
        if not report.job_id:
            violations.append(FieldViolation("job_id", "required"))
        elif _text_problem(report.job_id, 64):
            violations.append(FieldViolation("job_id", "not a job id"))
        if not report.location:
            violations.append(FieldViolation("location", "required: where the kept state is"))
        elif problem := _text_problem(report.location, 2048):
            violations.append(FieldViolation("location", problem))
        if report.resources_applied < 0:
            violations.append(FieldViolation("resources_applied", "must not be negative"))
        if report.lock_id and not _LOCK_ID.fullmatch(report.lock_id):
            violations.append(FieldViolation("lock_id", "not a Terraform lock ID"))
        for name, value, limit in (("runner_id", report.runner_id, 256), ("detail", report.detail, 8192)):
            if problem := _text_problem(value, limit):
                violations.append(FieldViolation(name, problem))
        if violations:
            raise InvalidArgument(violations)
        now = _now()
        async with begin_write(self.sessions) as session:
            existing = await store.recovery_of_job(session, report.job_id)
            if existing is not None:
                return existing
            job = await store.get_job(session, report.job_id)
            if job is None:
                raise NotFound(f"job {report.job_id} not found")
            if job["type"] not in (JobType.DEPLOY, JobType.DESTROY):
                raise FailedPrecondition(
                    f"job {report.job_id} is a {job['type']}: only a DEPLOY or DESTROY writes state",
                    [PreconditionViolation("JOB_TYPE", f"jobs/{report.job_id}", job["type"])],
                )
            pending = await store.pending_recovery(session, job["workspace"])
            if pending is not None:
                raise FailedPrecondition(
                    f"workspace {job['workspace']} already has a pending state recovery (job "
                    f"{pending['job_id']}, kept at {pending['location']})",
                    [PreconditionViolation("STATE_RECOVERY_PENDING", f"workspaces/{job['workspace']}", "")],
                )
            rec = await store.insert_recovery(
                session,
                {
                    "workspace": job["workspace"],
                    "job_id": job["id"],
                    "spec_id": job["spec_id"],
                    "state_key": state_key(job["workspace"]),
                    "location": report.location,
                    "resources_applied": report.resources_applied,
                    "lock_id": report.lock_id,
                    "runner_id": report.runner_id,
                    "detail": report.detail,
                    "create_time": now,
                    "resolve_time": None,
                    "resolution": "",
                },
            )
            await self._refuse_blocked(session, now)
        log.warning("state recovery pending for workspace %s (job %s): %s", rec["workspace"], rec["job_id"],
                    rec["location"])  # fmt: skip
        self._committed()
        return rec

    async def resolve_state_recovery(self, job_id: str, runner_id: str, resolution: str) -> Row:
        """The kept state is back in the backend: the workspace takes jobs again (idempotent)."""
        violations = []
        if not job_id:
            violations.append(FieldViolation("job_id", "required"))
        elif _text_problem(job_id, 64):
            violations.append(FieldViolation("job_id", "not a job id"))
        for name, value, limit in (("runner_id", runner_id, 256), ("resolution", resolution, 8192)):
            if problem := _text_problem(value, limit):
                violations.append(FieldViolation(name, problem))
        if violations:
            raise InvalidArgument(violations)
        now = _now()
        async with begin_write(self.sessions) as session:
            rec = await store.resolve_recovery(
                session, job_id, resolution or f"pushed by runner {runner_id or '(unknown)'}", now
            )
            if rec is None:
                existing = await store.recovery_of_job(session, job_id)
                if existing is None:
                    raise NotFound(f"no state recovery recorded for job {job_id}")
                return existing
            rows = await self._next_dispatch(session, rec["workspace"], now)
            await store.add_outbox(session, rows)
        log.info("state recovery of workspace %s resolved: %s", rec["workspace"], rec["resolution"])
        self._committed()
        return rec

    async def list_state_recoveries(self, include_resolved: bool = False, workspace: str = "") -> list[Row]:
        """State recoveries, oldest first (pending ones only unless asked)."""
        if problem := _text_problem(workspace, 512):
            raise InvalidArgument.one("workspace", problem)
        async with self.sessions() as session:
            return await store.list_recoveries(session, include_resolved, workspace)

    async def state_lock_holder(self, workspace: str, lock_id: str) -> Row:
        """The job of ``workspace`` whose Terraform took the state lock ``lock_id`` (NOT_FOUND if none)."""
        violations = []
        if not workspace or _text_problem(workspace, 512):
            violations.append(FieldViolation("workspace", "required, at most 512 characters"))
        if not _LOCK_ID.fullmatch(lock_id):
            violations.append(FieldViolation("lock_id", "not a Terraform lock ID"))
        if violations:
            raise InvalidArgument(violations)
        async with self.sessions() as session:
            row = await store.job_by_state_lock(session, workspace, lock_id)
        if row is None:
            raise NotFound(f"no job of workspace {workspace} reported the state lock {lock_id}")
        return row

    # ------------------------------------------------------------ rescue

    async def rescue_expired(self, now: datetime | None = None) -> list[tuple[str, JobStatus]]:
        """Jobs whose lease expired: a PLAN is queued again (bounded), a DEPLOY/DESTROY ERRORED.

        Returns (job id, new status) for each job rescued. Guarded by the lease token and the
        expiry, so a heartbeat that lands first keeps its job.
        """
        now = now or _now()
        rescued: list[tuple[str, JobStatus]] = []
        async with begin_write(self.sessions) as session:
            refused = await self._refuse_blocked(session, now)
            for row in await store.expired_leases(session, now):
                job = JobRecord.from_row(row)
                jtype = job.type
                target = rescue_target(jtype, job.attempt, job.max_attempts, job.cancel_requested)
                lost = (
                    f"runner {row['runner_id'] or '(unknown)'} stopped sending heartbeats; its lease expired "
                    f"during attempt {row['attempt']}"
                )
                if target is JobStatus.QUEUED:
                    message = f"{lost}; queued again (attempt {row['attempt'] + 1} of {row['max_attempts']})"
                elif target is JobStatus.ERRORED:
                    message = rescue_errored_message(row, lost)
                elif target is JobStatus.CANCELLED:
                    message = f"{lost} after a cancel was requested; cancelled"
                else:
                    message = f"{lost}; no attempts left ({row['attempt']} of {row['max_attempts']})"
                error = lost if target is JobStatus.QUEUED else message
                updated = await store.set_state(session, SetState.rescue(job, lost, error, now))
                if updated is None:
                    continue
                event_type = "requeued" if target is JobStatus.QUEUED else TERMINAL_EVENTS[target]
                rows = [event_outbox_row(job_event(updated, event_type, message, now), now)]
                if target is JobStatus.QUEUED:
                    rows.append(dispatch_outbox_row(updated["id"], updated["workspace"], now))
                else:
                    rows += await self._next_dispatch(session, updated["workspace"], now)
                await store.add_outbox(session, rows)
                rescued.append((updated["id"], target))
                log.warning("rescued job %s: %s", updated["id"], target.value)
        if rescued or refused:
            self._committed()
        return rescued

    async def _next_dispatch(self, session: AsyncSession, workspace: str, now: datetime) -> list[Row]:
        """A wake-up for the workspace's next job, when one may start now."""
        head = await store.workspace_head(session, workspace)
        return [dispatch_outbox_row(head, workspace, now)] if head else []


def rescue_errored_message(row: Row, lost: str) -> str:
    """Why a DEPLOY/DESTROY whose runner vanished is ERRORED, with the lock and how to release it."""
    key = state_key(row["workspace"])
    lock_id = row.get("state_lock_id") or ""
    lock = f"lock {lock_id}" if lock_id else "its lock (ID in the .tflock object, or in the error of a PLAN)"
    return (
        f"{lost} while running a {row['type']}, so Terraform may have stopped mid-apply. The state {key} "
        f"(workspace {row['workspace']}) may still be locked: {lock}. A runner stops its Terraform when "
        "it dies; once it is gone, release the lock with "
        f"`{unlock_command(row['spec_id'], lock_id)}` (a terraform force-unlock run by a runner), "
        "then re-plan before applying again."
    )


# Terraform lock IDs are UUIDs; anything that could not be one is refused before any SQL.
_LOCK_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


# The completions made by the guarded UPDATE alone (``SetState.complete_unread``).
_UNREAD_TARGETS = (JobStatus.SUCCEEDED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class _Completion:
    """A checked completion for the driver path: the lease and what to record."""

    job_id: str
    token: str
    target: JobStatus
    outcome: dict[str, Any]
    error: str


def _applies_a_plan(row: Row) -> bool:
    """Whether the job is a DEPLOY of a saved plan."""
    return bool(row["type"] == JobType.DEPLOY and row["plan_job_id"])


def _started(
    row: Row, runner_id: str, token: str, expires: datetime, plan: Row | None, now: datetime
) -> tuple[Claim, Row]:
    """The claim of ``row`` (with its plan's artifacts, for a DEPLOY of a plan) and its
    ``started`` event's outbox row."""
    ev = job_event(row, "started", f"started by runner {runner_id} (attempt {row['attempt']})", now)
    artifacts = list((plan or {}).get("artifacts") or [])
    return Claim(row, token, expires, artifacts), event_outbox_row(ev, now)


def _completion(job_id: str, token: str, result: JobResult) -> tuple[JobStatus, dict[str, Any]]:
    """Check a runner's result; the status it asks for and the outcome columns to record."""
    _require_lease(job_id, token)
    violations = []
    if result.status not in {s.value for s in COMPLETION_STATUSES}:
        violations.append(FieldViolation("result.status", "must be SUCCEEDED, FAILED, CANCELLED or ERRORED"))
    if result.resources_applied < 0:
        violations.append(FieldViolation("result.resources_applied", "must not be negative"))
    if result.state_lock_id and not _LOCK_ID.fullmatch(result.state_lock_id):
        violations.append(FieldViolation("result.state_lock_id", "not a Terraform lock ID"))
    for i, out in enumerate(result.outputs):
        if not out.get("name"):
            violations.append(FieldViolation(f"result.outputs[{i}].name", "required"))
        if not out.get("sensitive"):
            try:
                json.loads(out.get("value_json") or "null")
            except ValueError:
                violations.append(FieldViolation(f"result.outputs[{i}].value_json", "not valid JSON"))
    if violations:
        raise InvalidArgument(violations)
    outcome: dict[str, Any] = {
        "changes": result.changes,
        "cost": result.cost,
        "outputs": redact_outputs(result.outputs),
        "artifacts": result.artifacts,
        "post_apply_steps": result.post_apply_steps,
        "error": result.error,
        "resources_applied": result.resources_applied,
    }
    if result.state_lock_id:
        outcome["state_lock_id"] = result.state_lock_id
    return JobStatus(result.status), outcome


def _drop(task: asyncio.Future[Any]) -> None:
    """Cancel a task whose result is not wanted (its error, if any, is not reported as unretrieved)."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _require_id(value: str, field: str, what: str) -> None:
    """An id taken from a request: present, and one that can be looked up (see ``_text_problem``)."""
    if not value:
        raise InvalidArgument.one(field, "required")
    if _text_problem(value, 64):
        raise InvalidArgument.one(field, f"not a {what} id")


def _text_problem(value: str, limit: int) -> str | None:
    """Why ``value`` cannot be stored or looked up, or None.

    Checked before any SQL: Postgres text cannot hold NUL (the driver raises, which would be
    INTERNAL), and columns have lengths.
    """
    if len(value) > limit:
        return f"at most {limit} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain control characters"
    return None


def _require_claim(runner_id: str, lease_seconds: int, prefix: str = "") -> None:
    violations = []
    if not runner_id:
        violations.append(FieldViolation(f"{prefix}runner_id", "required"))
    elif problem := _text_problem(runner_id, 256):
        violations.append(FieldViolation(f"{prefix}runner_id", problem))
    if lease_seconds < 0 or lease_seconds > MAX_LEASE_SECONDS:
        violations.append(FieldViolation(f"{prefix}lease_seconds", f"between 0 and {MAX_LEASE_SECONDS}"))
    if violations:
        raise InvalidArgument(violations)


def _require_lease(job_id: str, token: str) -> None:
    violations = []
    if not job_id:
        violations.append(FieldViolation("lease.job_id", "required"))
    elif _text_problem(job_id, 64):
        violations.append(FieldViolation("lease.job_id", "not a job id"))
    if not token:
        violations.append(FieldViolation("lease.token", "required"))
    elif _text_problem(token, 256):
        violations.append(FieldViolation("lease.token", "not a lease token"))
    if violations:
        raise InvalidArgument(violations)


def is_terminal(row: Row) -> bool:
    """Whether the job's status is final."""
    return JobStatus(row["status"]) in TERMINAL
