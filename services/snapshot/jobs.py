"""The job state machine, pure: states, the one table of allowed transitions, event names.

::

    QUEUED ──claim──────────────▶ RUNNING ──complete──▶ SUCCEEDED | FAILED | CANCELLED
      │                            │
      └──cancel──▶ CANCELLED       │
                                   ├──rescue, PLAN, attempts left──▶ QUEUED   (re-run is safe)
                                   ├──rescue, PLAN, attempts spent─▶ FAILED
                                   ├──rescue, PLAN, cancel asked──▶ CANCELLED
                                   ├──rescue, DEPLOY/DESTROY──────▶ ERRORED  (state may be locked)
                                   ├──rescue, UNLOCK──────────────▶ FAILED   (run it again)
                                   └──complete, state kept aside──▶ ERRORED  (errored.tfstate)

Terminal states never change again. Every transition is applied by the store with a
guarded ``UPDATE … WHERE status = <from>`` (plus the lease token for runner actions), so
a transition that lost a race changes nothing and is reported, never half-applied.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alethia.errors import FailedPrecondition, PreconditionViolation


class JobStatus(enum.StrEnum):
    """Stored in ``provision_jobs.status``; the names match ``alethia.events.v1.JobStatus``."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ERRORED = "ERRORED"


class JobType(enum.StrEnum):
    """Stored in ``provision_jobs.type``; the names match ``alethia.events.v1.JobType``."""

    PLAN = "PLAN"
    DEPLOY = "DEPLOY"
    DESTROY = "DESTROY"
    UNLOCK = "UNLOCK"


class Action(enum.StrEnum):
    """What moves a job: a user, a runner holding the lease, or the rescuer."""

    CLAIM = "claim"
    COMPLETE = "complete"
    CANCEL = "cancel"
    RESCUE = "rescue"
    # The service fails a queued job whose workspace has an applied state not yet pushed
    # back (a pending recovery): it must neither run on a stale state nor block an UNLOCK.
    REFUSE = "refuse"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ERRORED})

# The one table of allowed transitions: (from, action) -> the states it may lead to.
TRANSITIONS: dict[tuple[JobStatus, Action], frozenset[JobStatus]] = {
    (JobStatus.QUEUED, Action.CLAIM): frozenset({JobStatus.RUNNING}),
    (JobStatus.QUEUED, Action.CANCEL): frozenset({JobStatus.CANCELLED}),
    (JobStatus.QUEUED, Action.REFUSE): frozenset({JobStatus.FAILED}),
    # ERRORED from a runner: Terraform could not write state and the runner kept it aside
    # (errored.tfstate) for a push; a person must know, so it is never FAILED or CANCELLED.
    (JobStatus.RUNNING, Action.COMPLETE): frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ERRORED}
    ),
    (JobStatus.RUNNING, Action.RESCUE): frozenset(
        {JobStatus.QUEUED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ERRORED}
    ),
}

# Statuses a runner may report in CompleteJob.
COMPLETION_STATUSES = TRANSITIONS[(JobStatus.RUNNING, Action.COMPLETE)]

# The event announcing that a job entered a terminal state (WatchJob stops after it).
TERMINAL_EVENTS: dict[JobStatus, str] = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.ERRORED: "errored",
}
TERMINAL_EVENT_TYPES = frozenset(TERMINAL_EVENTS.values())

# Every event type the outbox writes (runners add "log" directly on the stream).
EVENT_TYPES = frozenset(
    {"queued", "started", "planned", "applied", "cancel_requested", "requeued", *TERMINAL_EVENT_TYPES}
)


def allowed(current: JobStatus, action: Action, target: JobStatus) -> bool:
    """Whether ``action`` may move a job from ``current`` to ``target``."""
    return target in TRANSITIONS.get((current, action), frozenset())


def check_transition(job_id: str, current: JobStatus, action: Action, target: JobStatus) -> None:
    """Raise ``FailedPrecondition`` when the transition is not in the table."""
    if not allowed(current, action, target):
        raise FailedPrecondition(
            f"job {job_id} is {current.value}: cannot {action.value} it to {target.value}",
            [PreconditionViolation("JOB_STATUS", f"jobs/{job_id}", f"status is {current.value}")],
        )


def rescue_target(
    job_type: JobType, attempt: int, max_attempts: int, cancel_requested: bool = False
) -> JobStatus:
    """Where a job whose lease expired goes.

    A PLAN changes nothing outside the runner, so it runs again until its attempts are spent
    (unless someone asked to cancel it: then it is simply cancelled).
    A DEPLOY/DESTROY may have been mid-apply: running it again blindly could fight a
    half-applied state or a held lock, so a person must look (ERRORED).
    An UNLOCK changes no state: it fails, and the person who asked runs it again.
    """
    if job_type is JobType.UNLOCK:
        return JobStatus.CANCELLED if cancel_requested else JobStatus.FAILED
    if job_type is JobType.PLAN:
        if cancel_requested:
            return JobStatus.CANCELLED
        return JobStatus.QUEUED if attempt < max_attempts else JobStatus.FAILED
    return JobStatus.ERRORED


def completion_events(job_type: JobType, status: JobStatus) -> list[str]:
    """Event types written when a runner completes a job, in order."""
    if status is JobStatus.SUCCEEDED:
        if job_type is JobType.PLAN:
            return ["planned", "succeeded"]
        if job_type is JobType.UNLOCK:
            return ["succeeded"]
        return ["applied", "succeeded"]
    return [TERMINAL_EVENTS[status]]


# What may have changed resources: an apply-type job that got as far as a runner.
APPLY_TYPES = (JobType.DEPLOY, JobType.DESTROY)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def infrastructure_summary(jobs: list[dict[str, object]]) -> dict[str, object]:
    """What a Spec's job history says about its infrastructure (``jobs`` oldest first).

    Each job needs ``id``, ``type``, ``status``, ``start_time`` and ``workspace``. The Spec
    *may have infrastructure* when a DEPLOY or DESTROY started (a runner claimed it, so
    Terraform may have changed resources, whatever it ended as) after the last DESTROY
    that SUCCEEDED. A DEPLOY that failed halfway, or a DESTROY that did, counts: erring
    on "still there" is the side on which nothing is lost.
    """
    last_destroy = ""
    last_deploy: dict[str, object] | None = None
    touched = False
    active: list[str] = []
    workspace = ""
    for job in jobs:
        workspace = str(job["workspace"]) or workspace
        jtype, status = job["type"], job["status"]
        if status in ACTIVE:
            active.append(str(job["id"]))
        if jtype == JobType.DEPLOY:
            last_deploy = job
        if jtype == JobType.DESTROY and status == JobStatus.SUCCEEDED:
            last_destroy, touched = str(job["id"]), False
        elif jtype in APPLY_TYPES and job["start_time"] is not None:
            touched = True
    return {
        "workspace": workspace,
        "may_have_infrastructure": touched,
        "last_deploy_job_id": str(last_deploy["id"]) if last_deploy else "",
        "last_deploy_status": str(last_deploy["status"]) if last_deploy else "",
        "last_destroy_job_id": last_destroy,
        "active_job_ids": active,
    }


# --- typed records and named transitions ---------------------------------------------------


@dataclass(frozen=True)
class JobRecord:
    """A ``provision_jobs`` row as a typed value (read the way procrastinate's ``Job.from_row`` does).

    Only what the state machine decides on; the rest of the row (snapshot, outputs, times)
    travels as stored.
    """

    id: str
    spec_id: str
    type: JobType
    status: JobStatus
    workspace: str
    attempt: int
    max_attempts: int
    cancel_requested: bool
    runner_id: str
    lease_token: str | None
    lease_seconds: int | None
    attempt_errors: tuple[Mapping[str, Any], ...]
    plan_job_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        """The record of a row; an unknown type or status raises ValueError (never guessed)."""
        return cls(
            id=str(row["id"]),
            spec_id=str(row["spec_id"]),
            type=JobType(row["type"]),
            status=JobStatus(row["status"]),
            workspace=str(row["workspace"]),
            attempt=int(row["attempt"]),
            max_attempts=int(row["max_attempts"]),
            cancel_requested=bool(row["cancel_requested"]),
            runner_id=str(row["runner_id"] or ""),
            lease_token=row["lease_token"],
            lease_seconds=row["lease_seconds"],
            attempt_errors=tuple(row["attempt_errors"] or ()),
            plan_job_id=row["plan_job_id"],
        )

    def attempt_error(self, error: str, now: datetime) -> dict[str, Any]:
        """The entry this attempt adds to ``attempt_errors``."""
        return {"attempt": self.attempt, "runner_id": self.runner_id, "error": error, "time": now.isoformat()}


@dataclass(frozen=True)
class SetState:
    """One guarded change of one job row (in the spirit of river's ``JobSetState*`` params).

    Built only by the named constructors below, each of which checks its transition against
    :data:`TRANSITIONS` (or, for changes within RUNNING, that the job is RUNNING) before any
    SQL exists. The store applies it as ``UPDATE … WHERE id = … AND status = from_status``
    (plus the lease token, plus ``lease_expires_at < expired_before`` for a rescue), so a
    change that lost a race matches no row and is reported, never half-applied.
    """

    job_id: str
    from_status: JobStatus
    values: Mapping[str, Any]
    lease_token: str | None = None
    expired_before: datetime | None = None

    @property
    def to_status(self) -> JobStatus:
        """The status after the change (the same one for a change within RUNNING)."""
        status = self.values.get("status")
        return JobStatus(status) if status is not None else self.from_status

    @classmethod
    def cancel_queued(cls, job: JobRecord, now: datetime) -> SetState:
        """QUEUED -> CANCELLED: a user cancels a job before any runner took it."""
        check_transition(job.id, job.status, Action.CANCEL, JobStatus.CANCELLED)
        return cls(
            job.id,
            JobStatus.QUEUED,
            {
                "status": JobStatus.CANCELLED.value,
                "cancel_requested": True,
                "error": "cancelled before it started",
                "end_time": now,
                "update_time": now,
            },
        )

    @classmethod
    def refuse_queued(cls, job: JobRecord, reason: str, now: datetime) -> SetState:
        """QUEUED -> FAILED: the workspace is blocked by a pending state recovery (``reason``)."""
        check_transition(job.id, job.status, Action.REFUSE, JobStatus.FAILED)
        return cls(
            job.id,
            JobStatus.QUEUED,
            {"status": JobStatus.FAILED.value, "error": reason, "end_time": now, "update_time": now},
        )

    @classmethod
    def request_cancel(cls, job: JobRecord, now: datetime) -> SetState:
        """RUNNING stays RUNNING with ``cancel_requested``: the runner stops at its next heartbeat."""
        _require_running(job)
        return cls(job.id, JobStatus.RUNNING, {"cancel_requested": True, "update_time": now})

    @classmethod
    def extend_lease(
        cls, job: JobRecord, token: str, expires_at: datetime, now: datetime, state_lock_id: str = ""
    ) -> SetState:
        """RUNNING stays RUNNING with a later lease expiry (a heartbeat of the lease holder).

        ``state_lock_id``: the Terraform state lock the runner holds now, when it reports one.
        """
        _require_running(job)
        values: dict[str, Any] = {"lease_expires_at": expires_at, "update_time": now}
        if state_lock_id:
            values["state_lock_id"] = state_lock_id
        return cls(job.id, JobStatus.RUNNING, values, token)

    @classmethod
    def complete(
        cls, job: JobRecord, token: str, target: JobStatus, result: Mapping[str, Any], now: datetime
    ) -> SetState:
        """RUNNING -> SUCCEEDED | FAILED | CANCELLED | ERRORED: the lease holder reports its result.

        ``result`` holds the result columns (changes, cost, outputs, artifacts,
        post_apply_steps, error, ...); a failure (or an ERRORED run) also records the
        attempt's error.
        """
        check_transition(job.id, job.status, Action.COMPLETE, target)
        values: dict[str, Any] = {**result, "status": target.value, "end_time": now, "update_time": now}
        if target in (JobStatus.FAILED, JobStatus.ERRORED):
            error = str(result.get("error") or "failed")
            values["attempt_errors"] = [*job.attempt_errors, job.attempt_error(error, now)]
        return cls(job.id, JobStatus.RUNNING, values, token)

    @classmethod
    def complete_unread(
        cls, job_id: str, token: str, target: JobStatus, result: Mapping[str, Any], now: datetime
    ) -> SetState:
        """RUNNING -> SUCCEEDED | CANCELLED by the lease holder, without reading the row first.

        Those two outcomes keep no attempt error, so nothing of the current row goes into
        the change: the guard (``status = RUNNING`` and the lease token) is the whole check,
        and a completion costs one statement instead of a read and a write. A FAILED or
        ERRORED result appends to ``attempt_errors``: that needs the row (:meth:`complete`).
        """
        check_transition(job_id, JobStatus.RUNNING, Action.COMPLETE, target)
        if target in (JobStatus.FAILED, JobStatus.ERRORED):
            raise ValueError(f"a {target.value} completion records the attempt's error: read the job first")
        values: dict[str, Any] = {**result, "status": target.value, "end_time": now, "update_time": now}
        return cls(job_id, JobStatus.RUNNING, values, token)

    @classmethod
    def rescue(cls, job: JobRecord, lost: str, error: str, now: datetime) -> SetState:
        """RUNNING whose lease expired -> :func:`rescue_target` (QUEUED, FAILED, CANCELLED or ERRORED).

        ``lost`` is why the attempt ended (kept in ``attempt_errors``); ``error`` is the
        job's error column (for a re-queued PLAN, the reason it runs again).
        """
        target = rescue_target(job.type, job.attempt, job.max_attempts, job.cancel_requested)
        check_transition(job.id, job.status, Action.RESCUE, target)
        values: dict[str, Any] = {
            "status": target.value,
            "attempt_errors": [*job.attempt_errors, job.attempt_error(lost, now)],
            "error": error,
            "update_time": now,
        }
        if target is JobStatus.QUEUED:
            values |= {
                "lease_token": None,
                "lease_seconds": None,
                "lease_expires_at": None,
                "runner_id": "",
                "start_time": None,
            }
        else:
            values["end_time"] = now
        return cls(job.id, JobStatus.RUNNING, values, job.lease_token, expired_before=now)


def _require_running(job: JobRecord) -> None:
    if job.status is not JobStatus.RUNNING:
        raise FailedPrecondition(
            f"job {job.id} is {job.status.value}, not RUNNING",
            [PreconditionViolation("JOB_STATUS", f"jobs/{job.id}", f"status is {job.status.value}")],
        )
