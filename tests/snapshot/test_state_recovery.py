"""Pending state recoveries and UNLOCK jobs in the job queue (real SQLite and Postgres).

A runner whose apply could not write state records where it kept Terraform's
``errored.tfstate``; until it reports the state pushed back, the workspace takes no job
(queued ones fail with the explanation, new ones are not claimable) except an UNLOCK.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alethia.errors import FailedPrecondition, InvalidArgument, NotFound
from services.snapshot.job_queue import JobResult, RecoveryReport
from services.snapshot.jobs import JobType
from tests.snapshot.conftest import Sessions, add_job, make_queue, outbox_types

LOCK = "06bd575b-bf9f-4880-1c30-6743c7451de6"


async def test_a_pending_recovery_blocks_the_workspace_until_resolved(sessions: Sessions) -> None:
    q = make_queue(sessions)
    deploy = await add_job(sessions, "r", JobType.DEPLOY)
    claim = await q.claim_job("runner-1")
    assert claim is not None and claim.job["id"] == deploy["id"]
    queued_plan = await add_job(sessions, "r", JobType.PLAN)
    other = await add_job(sessions, "elsewhere", JobType.PLAN)

    location = f"s3://alethia-artifacts/jobs/{deploy['id']}/errored.tfstate"
    rec = await q.record_state_recovery(
        RecoveryReport(deploy["id"], location, resources_applied=4, lock_id=LOCK, runner_id="runner-1")
    )
    assert rec["workspace"] == deploy["workspace"] and rec["resolve_time"] is None
    assert rec["state_key"] == f"{deploy['workspace']}/terraform.tfstate"
    # Recording twice (a runner retrying) returns the same record.
    again = await q.record_state_recovery(RecoveryReport(deploy["id"], location, 4, LOCK))
    assert again["seq"] == rec["seq"]

    # The plan queued before the failed apply is refused with the explanation.
    failed, _ = await q.get_job(queued_plan["id"])
    assert failed["status"] == "FAILED"
    assert location in failed["error"] and "4 resource change(s)" in failed["error"]
    assert await outbox_types(sessions, queued_plan["id"]) == ["queued", "failed"]

    done = await q.complete_job(
        deploy["id"],
        claim.lease_token,
        JobResult(status="ERRORED", error="state kept aside", resources_applied=4, state_lock_id=LOCK),
    )
    assert done["status"] == "ERRORED" and done["resources_applied"] == 4 and done["state_lock_id"] == LOCK
    assert await outbox_types(sessions, deploy["id"]) == ["queued", "started", "errored"]

    # A job that slipped in is refused at claim; another workspace runs meanwhile.
    blocked = await add_job(sessions, "r", JobType.DESTROY)
    c_other = await q.claim_job("runner-2")
    assert c_other is not None and c_other.job["id"] == other["id"]
    assert await q.claim_job("runner-2") is None
    refused, _ = await q.get_job(blocked["id"])
    assert refused["status"] == "FAILED" and location in refused["error"]
    assert [r["job_id"] for r in await q.list_state_recoveries()] == [deploy["id"]]

    resolved = await q.resolve_state_recovery(deploy["id"], "runner-2", "pushed (serial 3)")
    assert resolved["resolve_time"] is not None and resolved["resolution"] == "pushed (serial 3)"
    assert await q.list_state_recoveries() == []
    assert len(await q.list_state_recoveries(include_resolved=True)) == 1
    # Idempotent: a second resolve answers with the resolved record.
    assert (await q.resolve_state_recovery(deploy["id"], "runner-2", ""))["seq"] == rec["seq"]
    after = await add_job(sessions, "r", JobType.PLAN)
    c_after = await q.claim_job("runner-3")
    assert c_after is not None and c_after.job["id"] == after["id"]


async def test_an_unlock_runs_while_a_recovery_is_pending(sessions: Sessions) -> None:
    q = make_queue(sessions)
    deploy = await add_job(sessions, "u", JobType.DEPLOY)
    claim = await q.claim_job("r")
    assert claim is not None
    await q.record_state_recovery(RecoveryReport(deploy["id"], "file://host/kept.tfstate", 1, LOCK))
    await q.complete_job(deploy["id"], claim.lease_token, JobResult(status="ERRORED", error="kept"))
    # Queued in the instant before the record (a race QueueJob cannot see): refused at claim.
    plan = await add_job(sessions, "u", JobType.PLAN)
    unlock = await add_job(sessions, "u", JobType.UNLOCK)
    c = await q.claim_job("r")
    assert c is not None and c.job["id"] == unlock["id"]
    row, _ = await q.get_job(plan["id"])
    assert row["status"] == "FAILED" and "file://host/kept.tfstate" in row["error"]


async def test_recovery_reports_are_validated(sessions: Sessions) -> None:
    q = make_queue(sessions)
    plan = await add_job(sessions, "v", JobType.PLAN)
    with pytest.raises(InvalidArgument) as bad:
        await q.record_state_recovery(RecoveryReport("", "", -1, "not a lock id!"))
    fields = {v.field for v in bad.value.violations}
    assert fields == {"job_id", "location", "resources_applied", "lock_id"}
    with pytest.raises(NotFound):
        await q.record_state_recovery(RecoveryReport("no-such-job", "file://x/y"))
    with pytest.raises(FailedPrecondition) as not_apply:
        await q.record_state_recovery(RecoveryReport(plan["id"], "file://x/y"))
    assert "only a DEPLOY or DESTROY" in not_apply.value.message
    with pytest.raises(NotFound):
        await q.resolve_state_recovery(plan["id"], "r", "")


async def test_heartbeat_keeps_the_lock_id_and_the_rescue_names_the_unlock_command(
    sessions: Sessions,
) -> None:
    q = make_queue(sessions)
    deploy = await add_job(sessions, "h", JobType.DEPLOY)
    claim = await q.claim_job("runner-x", lease_seconds=5)
    assert claim is not None
    await q.heartbeat(deploy["id"], claim.lease_token, LOCK)
    with pytest.raises(InvalidArgument):
        await q.heartbeat(deploy["id"], claim.lease_token, "'; drop table")
    # A runner meeting that lock later learns which job took it.
    assert (await q.state_lock_holder(deploy["workspace"], LOCK))["id"] == deploy["id"]
    with pytest.raises(NotFound):
        await q.state_lock_holder(deploy["workspace"], "another-lock")
    with pytest.raises(InvalidArgument):
        await q.state_lock_holder("", "bad lock!")
    rescued = dict(await q.rescue_expired(now=datetime.now(UTC) + timedelta(seconds=60)))
    assert rescued == {deploy["id"]: "ERRORED"}
    row, _ = await q.get_job(deploy["id"])
    assert row["state_lock_id"] == LOCK
    assert f"alethia unlock {deploy['spec_id']} --lock-id {LOCK}" in row["error"]


async def test_a_busy_queue_still_refuses_a_job_that_slipped_in(sessions: Sessions) -> None:
    """A claim that finds work skips the recovery check; the rescuer's pass makes it."""
    q = make_queue(sessions)
    deploy = await add_job(sessions, "b", JobType.DEPLOY)
    claim = await q.claim_job("r")
    assert claim is not None
    await q.record_state_recovery(RecoveryReport(deploy["id"], "file://host/b.tfstate", 1, LOCK))
    await q.complete_job(deploy["id"], claim.lease_token, JobResult(status="ERRORED", error="kept"))
    slipped = await add_job(sessions, "b", JobType.PLAN)
    elsewhere = await add_job(sessions, "busy", JobType.PLAN)
    c = await q.claim_job("r")
    assert c is not None and c.job["id"] == elsewhere["id"]
    assert (await q.get_job(slipped["id"]))[0]["status"] == "QUEUED"  # never claimable, not refused yet
    assert await q.rescue_expired() == []
    row, _ = await q.get_job(slipped["id"])
    assert row["status"] == "FAILED" and "file://host/b.tfstate" in row["error"]
    assert await outbox_types(sessions, slipped["id"]) == ["queued", "failed"]
