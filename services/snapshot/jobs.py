"""The job state machine, pure: states, the one table of allowed transitions, event names.

::

    QUEUED ──claim──────────────▶ RUNNING ──complete──▶ SUCCEEDED | FAILED | CANCELLED
      │                            │
      └──cancel──▶ CANCELLED       │
                                   ├──rescue, PLAN, attempts left──▶ QUEUED   (re-run is safe)
                                   ├──rescue, PLAN, attempts spent─▶ FAILED
                                   ├──rescue, PLAN, cancel asked──▶ CANCELLED
                                   └──rescue, DEPLOY/DESTROY──────▶ ERRORED  (state may be locked)

Terminal states never change again. Every transition is applied by the store with a
guarded ``UPDATE … WHERE status = <from>`` (plus the lease token for runner actions), so
a transition that lost a race changes nothing and is reported, never half-applied.
"""

from __future__ import annotations

import enum

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


class Action(enum.StrEnum):
    """What moves a job: a user, a runner holding the lease, or the rescuer."""

    CLAIM = "claim"
    COMPLETE = "complete"
    CANCEL = "cancel"
    RESCUE = "rescue"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ERRORED})

# The one table of allowed transitions: (from, action) -> the states it may lead to.
TRANSITIONS: dict[tuple[JobStatus, Action], frozenset[JobStatus]] = {
    (JobStatus.QUEUED, Action.CLAIM): frozenset({JobStatus.RUNNING}),
    (JobStatus.QUEUED, Action.CANCEL): frozenset({JobStatus.CANCELLED}),
    (JobStatus.RUNNING, Action.COMPLETE): frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
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
    """
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
        return ["applied", "succeeded"]
    return [TERMINAL_EVENTS[status]]
