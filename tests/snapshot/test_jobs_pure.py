"""The state machine table and the git token source, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from alethia.errors import AlethiaError, FailedPrecondition
from services.snapshot.git_tokens import GitTokenSource, repository_host
from services.snapshot.jobs import (
    TERMINAL,
    TRANSITIONS,
    Action,
    JobRecord,
    JobStatus,
    JobType,
    SetState,
    allowed,
    check_transition,
    completion_events,
    infrastructure_summary,
    rescue_target,
)


def test_terminal_states_have_no_way_out() -> None:
    for (current, _action), targets in TRANSITIONS.items():
        assert current not in TERMINAL
        assert targets
    for status in TERMINAL:
        for action in Action:
            for target in JobStatus:
                assert not allowed(status, action, target)


def test_only_listed_transitions_are_allowed() -> None:
    assert allowed(JobStatus.QUEUED, Action.CLAIM, JobStatus.RUNNING)
    assert allowed(JobStatus.QUEUED, Action.CANCEL, JobStatus.CANCELLED)
    assert allowed(JobStatus.RUNNING, Action.COMPLETE, JobStatus.SUCCEEDED)
    assert allowed(JobStatus.RUNNING, Action.RESCUE, JobStatus.ERRORED)
    assert not allowed(JobStatus.QUEUED, Action.COMPLETE, JobStatus.SUCCEEDED)
    # A runner that kept Terraform's errored.tfstate aside ends its job ERRORED itself.
    assert allowed(JobStatus.RUNNING, Action.COMPLETE, JobStatus.ERRORED)
    assert not allowed(JobStatus.QUEUED, Action.COMPLETE, JobStatus.ERRORED)
    assert not allowed(JobStatus.RUNNING, Action.CLAIM, JobStatus.RUNNING)
    with pytest.raises(FailedPrecondition) as exc:
        check_transition("j1", JobStatus.SUCCEEDED, Action.CANCEL, JobStatus.CANCELLED)
    assert "SUCCEEDED" in exc.value.message and exc.value.preconditions[0].subject == "jobs/j1"


def test_rescue_requeues_plans_until_attempts_are_spent_and_errors_applies() -> None:
    assert rescue_target(JobType.PLAN, 1, 3) is JobStatus.QUEUED
    assert rescue_target(JobType.PLAN, 2, 3) is JobStatus.QUEUED
    assert rescue_target(JobType.PLAN, 3, 3) is JobStatus.FAILED
    assert rescue_target(JobType.PLAN, 1, 3, cancel_requested=True) is JobStatus.CANCELLED
    assert rescue_target(JobType.DEPLOY, 1, 3) is JobStatus.ERRORED
    assert rescue_target(JobType.DESTROY, 1, 3, cancel_requested=True) is JobStatus.ERRORED
    assert rescue_target(JobType.UNLOCK, 1, 1) is JobStatus.FAILED
    for jtype in JobType:
        for attempt in (1, 3):
            target = rescue_target(jtype, attempt, 3)
            assert allowed(JobStatus.RUNNING, Action.RESCUE, target)


def test_completion_events() -> None:
    assert completion_events(JobType.PLAN, JobStatus.SUCCEEDED) == ["planned", "succeeded"]
    assert completion_events(JobType.DEPLOY, JobStatus.SUCCEEDED) == ["applied", "succeeded"]
    assert completion_events(JobType.DEPLOY, JobStatus.FAILED) == ["failed"]
    assert completion_events(JobType.PLAN, JobStatus.CANCELLED) == ["cancelled"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://github.com/acme/apps.git", "github.com"),
        ("https://GitLab.Example.com:8443/acme/apps", "gitlab.example.com"),
        ("ssh://git@git.example.com:2222/acme/apps.git", "git.example.com"),
        ("git@github.com:acme/apps.git", "github.com"),
        ("https://[::1]:3000/a/b", "::1"),
        ("not a url", ""),
    ],
)
def test_repository_host(url: str, host: str) -> None:
    assert repository_host(url) == host


def test_token_source_gives_each_host_only_its_own_token(tmp_path: Path) -> None:
    f = tmp_path / "tokens.json"
    f.write_text(json.dumps({"GitHub.com": "tok-github"}))
    src = GitTokenSource(str(f), "tok-example", "Git.Example.com")
    assert src.token_for("https://github.com/a/b.git") == "tok-github"
    assert src.token_for("https://git.example.com/a/b.git") == "tok-example"
    f.write_text(json.dumps({"github.com": "tok-rotated"}))  # read per request: rotation works
    assert src.token_for("git@github.com:a/b.git") == "tok-rotated"
    assert "tok-example" not in repr(src)
    # No catch-all: any other host (a look-alike included) gets no token at all.
    for url in ("https://git.attacker.example.net/a/b.git", "https://git.example.com.evil.net/a.git",
                "https://evil.net/git.example.com/a.git", "not a url"):  # fmt: skip
        with pytest.raises(FailedPrecondition) as info:
            src.token_for(url)
        assert "tok-" not in str(info.value)


def test_a_token_without_its_host_is_refused() -> None:
    with pytest.raises(ValueError, match="ALETHIA_GIT_TOKEN_HOST"):
        GitTokenSource("", "tok-for-who-knows")


def test_token_source_errors_never_carry_token_values(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as missing:
        GitTokenSource("", "").token_for("https://git.example.com/a/b.git")
    assert "git.example.com" in missing.value.message
    bad = tmp_path / "bad.json"
    bad.write_text('{"github.com": "tok-inside-broken-json"')
    with pytest.raises(AlethiaError) as broken:
        GitTokenSource(str(bad)).token_for("https://github.com/a/b")
    assert broken.value.code == grpc.StatusCode.UNAVAILABLE
    assert "tok-inside" not in str(broken.value)


def _history(*jobs: tuple[str, str, bool]) -> list[dict[str, object]]:
    """Jobs oldest first: (type, status, started)."""
    return [
        {
            "id": f"j{i}",
            "type": t,
            "status": s,
            "start_time": "t" if started else None,
            "workspace": "z/p-e-r",
        }
        for i, (t, s, started) in enumerate(jobs)
    ]


@pytest.mark.parametrize(
    ("jobs", "infrastructure", "last_deploy", "active"),
    [
        ((), False, "", []),
        ((("PLAN", "SUCCEEDED", True),), False, "", []),
        ((("PLAN", "SUCCEEDED", True), ("DEPLOY", "SUCCEEDED", True)), True, "j1", []),
        # A DEPLOY cancelled while still queued never ran: nothing was applied.
        ((("DEPLOY", "CANCELLED", False),), False, "j0", []),
        # Failed or errored mid-apply: resources may exist.
        ((("DEPLOY", "FAILED", True),), True, "j0", []),
        ((("DEPLOY", "ERRORED", True),), True, "j0", []),
        ((("DEPLOY", "SUCCEEDED", True), ("DESTROY", "SUCCEEDED", True)), False, "j0", []),
        ((("DEPLOY", "SUCCEEDED", True), ("DESTROY", "FAILED", True)), True, "j0", []),
        (
            (("DEPLOY", "SUCCEEDED", True), ("DESTROY", "SUCCEEDED", True), ("DEPLOY", "FAILED", True)),
            True,
            "j2",
            [],
        ),
        (
            (("DEPLOY", "SUCCEEDED", True), ("DESTROY", "SUCCEEDED", True), ("PLAN", "QUEUED", False)),
            False,
            "j0",
            ["j2"],
        ),
        ((("DEPLOY", "RUNNING", True),), True, "j0", ["j0"]),
    ],
)
def test_infrastructure_summary_errs_on_still_there(
    jobs: tuple[tuple[str, str, bool], ...], infrastructure: bool, last_deploy: str, active: list[str]
) -> None:
    summary = infrastructure_summary(_history(*jobs))
    assert summary["may_have_infrastructure"] is infrastructure
    assert summary["last_deploy_job_id"] == last_deploy
    assert summary["active_job_ids"] == active
    assert summary["workspace"] == ("z/p-e-r" if jobs else "")


# --- typed records and named transitions ---------------------------------------------------

_NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "j1", "spec_id": "s1", "type": "PLAN", "status": "RUNNING", "workspace": "z/p-e-r",
        "attempt": 1, "max_attempts": 3, "cancel_requested": False, "runner_id": "r1",
        "lease_token": "tok", "lease_seconds": 30, "attempt_errors": None, "plan_job_id": None,
        "snapshot": {"ignored": True},
    }  # fmt: skip
    return row | overrides


def test_job_record_reads_a_row_and_refuses_unknown_states() -> None:
    job = JobRecord.from_row(_row())
    assert (job.type, job.status, job.attempt_errors, job.lease_token) == (
        JobType.PLAN, JobStatus.RUNNING, (), "tok",
    )  # fmt: skip
    with pytest.raises(ValueError):
        JobRecord.from_row(_row(status="PAUSED"))
    with pytest.raises(ValueError):
        JobRecord.from_row(_row(type="IMPORT"))


def test_named_transitions_check_the_table_before_any_sql() -> None:
    queued = JobRecord.from_row(_row(status="QUEUED", lease_token=None))
    running = JobRecord.from_row(_row())
    done = JobRecord.from_row(_row(status="SUCCEEDED"))
    assert SetState.cancel_queued(queued, _NOW).to_status is JobStatus.CANCELLED
    refused = SetState.refuse_queued(queued, "state not pushed back", _NOW)
    assert (refused.to_status, refused.values["error"]) == (JobStatus.FAILED, "state not pushed back")
    assert SetState.request_cancel(running, _NOW).values == {"cancel_requested": True, "update_time": _NOW}
    lease = SetState.extend_lease(running, "tok", _NOW, _NOW)
    assert (lease.from_status, lease.to_status, lease.lease_token) == (
        JobStatus.RUNNING,
        JobStatus.RUNNING,
        "tok",
    )
    for refused in (
        lambda: SetState.cancel_queued(running, _NOW),
        lambda: SetState.refuse_queued(running, "x", _NOW),
        lambda: SetState.request_cancel(queued, _NOW),
        lambda: SetState.extend_lease(done, "tok", _NOW, _NOW),
        lambda: SetState.complete(queued, "tok", JobStatus.SUCCEEDED, {}, _NOW),
        lambda: SetState.complete(running, "tok", JobStatus.QUEUED, {}, _NOW),
        lambda: SetState.rescue(done, "lost", "lost", _NOW),
    ):
        with pytest.raises(FailedPrecondition):
            refused()


def test_complete_and_rescue_record_the_attempt() -> None:
    running = JobRecord.from_row(_row(attempt_errors=[{"attempt": 0, "error": "earlier"}]))
    failed = SetState.complete(running, "tok", JobStatus.FAILED, {"error": "boom"}, _NOW)
    assert failed.values["status"] == "FAILED" and failed.values["end_time"] == _NOW
    assert [e["error"] for e in failed.values["attempt_errors"]] == ["earlier", "boom"]
    ok = SetState.complete(running, "tok", JobStatus.SUCCEEDED, {"error": ""}, _NOW)
    assert "attempt_errors" not in ok.values
    requeued = SetState.rescue(running, "lease expired", "lease expired", _NOW)
    assert requeued.to_status is JobStatus.QUEUED and requeued.expired_before == _NOW
    assert requeued.values["lease_token"] is None and "end_time" not in requeued.values
    deploy = JobRecord.from_row(_row(type="DEPLOY"))
    errored = SetState.rescue(deploy, "lease expired", "may be locked", _NOW)
    assert errored.to_status is JobStatus.ERRORED and errored.values["error"] == "may be locked"
    assert errored.lease_token == "tok" and errored.values["end_time"] == _NOW


def test_an_unread_completion_is_guarded_and_never_drops_an_attempt_error() -> None:
    done = SetState.complete_unread("j-1", "tok", JobStatus.SUCCEEDED, {"error": ""}, _NOW)
    assert (done.from_status, done.to_status, done.lease_token) == (
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
        "tok",
    )
    assert "attempt_errors" not in done.values
    # FAILED / ERRORED append to attempt_errors: only the reading constructor may build them.
    for target in (JobStatus.FAILED, JobStatus.ERRORED):
        with pytest.raises(ValueError, match="read the job first"):
            SetState.complete_unread("j-1", "tok", target, {}, _NOW)
    with pytest.raises(FailedPrecondition):
        SetState.complete_unread("j-1", "tok", JobStatus.QUEUED, {}, _NOW)
