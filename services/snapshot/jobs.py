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


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ERRORED})

# The one table of allowed transitions: (from, action) -> the states it may lead to.
TRANSITIONS: dict[tuple[JobStatus, Action], frozenset[JobStatus]] = {
    (JobStatus.QUEUED, Action.CLAIM): frozenset({JobStatus.RUNNING}),
    (JobStatus.QUEUED, Action.CANCEL): frozenset({JobStatus.CANCELLED}),
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
