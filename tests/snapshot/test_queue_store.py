"""The job queue against real SQLite and Postgres: FIFO per workspace, leases, rescue, cancel, outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from alethia.database import begin_write
from alethia.errors import AlethiaError, FailedPrecondition, InvalidArgument, PermissionDenied
from alethia.messaging import DISPATCH_SUBJECT
from services.snapshot import store
from services.snapshot.events import dispatch_outbox_row, event_outbox_row, job_event
from services.snapshot.job_queue import GIT_TOKEN_REFUSED, JobResult
from services.snapshot.jobs import JobStatus, JobType
from tests.snapshot.conftest import Sessions, add_job, make_queue, outbox_types


async def _dispatched(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        res = await session.execute(
            select(store.job_outbox.c.job_id)
            .where(store.job_outbox.c.subject == DISPATCH_SUBJECT)
            .order_by(store.job_outbox.c.seq)
        )
        return [r for (r,) in res.all()]


async def test_fifo_per_workspace_one_running_and_workspaces_in_parallel(sessions: Sessions) -> None:
    q = make_queue(sessions)
    a1, a2, a3 = [await add_job(sessions, "a") for _ in range(3)]
    b1 = await add_job(sessions, "b")

    first = await q.claim_job("r1")
    second = await q.claim_job("r2")
    assert first is not None and second is not None
    assert (first.job["id"], second.job["id"]) == (a1["id"], b1["id"])  # b runs beside a
    assert await q.claim_job("r3") is None  # a2 waits behind the running a1

    row, position = await q.get_job(a3["id"])
    assert position == 2 and row["status"] == "QUEUED"
    assert (await q.get_job(a2["id"]))[1] == 1
    assert (await q.get_job(a1["id"]))[1] == 0

    before = await _dispatched(sessions)
    await q.complete_job(a1["id"], first.lease_token, JobResult(status="SUCCEEDED"))
    assert (await _dispatched(sessions))[len(before) :] == [a2["id"]]  # the next of a is woken
    nxt = await q.claim_job("r3")
    assert nxt is not None and nxt.job["id"] == a2["id"] and nxt.job["attempt"] == 1
    assert await q.claim_job("r4") is None
    before = await _dispatched(sessions)
    await q.complete_job(a2["id"], nxt.lease_token, JobResult(status="FAILED", error="boom"))
    assert (await _dispatched(sessions))[len(before) :] == [a3["id"]]  # a failure frees it too
    last = await q.claim_job("r4")
    assert last is not None and last.job["id"] == a3["id"]
    assert await outbox_types(sessions, a1["id"]) == ["queued", "started", "planned", "succeeded"]
    assert await outbox_types(sessions, a2["id"]) == ["queued", "started", "failed"]


async def test_lease_expiry_requeues_a_plan_and_errors_a_deploy(sessions: Sessions) -> None:
    q = make_queue(sessions)
    plan = await add_job(sessions, "p", JobType.PLAN, max_attempts=2)
    deploy = await add_job(sessions, "d", JobType.DEPLOY)
    c1 = await q.claim_job("runner-1", lease_seconds=5)
    c2 = await q.claim_job("runner-2", lease_seconds=5)
    assert c1 is not None and c2 is not None

    assert await q.rescue_expired() == []  # nothing expired yet
    later = datetime.now(UTC) + timedelta(seconds=60)
    rescued = dict(await q.rescue_expired(now=later))
    assert rescued == {plan["id"]: JobStatus.QUEUED, deploy["id"]: JobStatus.ERRORED}

    p, pos = await q.get_job(plan["id"])
    assert p["status"] == "QUEUED" and pos == 1 and p["lease_token"] is None
    assert [e["attempt"] for e in p["attempt_errors"]] == [1]
    assert "runner-1" in p["attempt_errors"][0]["error"]
    d, _ = await q.get_job(deploy["id"])
    assert d["status"] == "ERRORED"
    assert "zone-t/pd-dev-us-east-1/terraform.tfstate" in d["error"]
    assert "may still be locked" in d["error"] and "terraform force-unlock" in d["error"]

    # The old lease is dead: heartbeat and completion are refused.
    with pytest.raises(FailedPrecondition):
        await q.heartbeat(plan["id"], c1.lease_token)
    with pytest.raises(FailedPrecondition):
        await q.complete_job(plan["id"], c1.lease_token, JobResult(status="SUCCEEDED"))

    again = await q.claim_job("runner-3", lease_seconds=5)
    assert again is not None and again.job["id"] == plan["id"] and again.job["attempt"] == 2
    assert again.lease_token != c1.lease_token
    assert dict(await q.rescue_expired(now=later + timedelta(seconds=60))) == {plan["id"]: JobStatus.FAILED}
    p, _ = await q.get_job(plan["id"])
    assert p["status"] == "FAILED" and len(p["attempt_errors"]) == 2
    assert await outbox_types(sessions, plan["id"]) == ["queued", "started", "requeued", "started", "failed"]
    assert await outbox_types(sessions, deploy["id"]) == ["queued", "started", "errored"]


async def test_heartbeat_extends_the_lease_and_wins_over_the_rescuer(sessions: Sessions) -> None:
    q = make_queue(sessions)
    job = await add_job(sessions)
    claim = await q.claim_job("r", lease_seconds=2)
    assert claim is not None
    expires, cancel = await q.heartbeat(job["id"], claim.lease_token)
    assert not cancel and expires >= claim.expires_at
    # A rescuer that looks just before the new expiry finds nothing to rescue.
    assert await q.rescue_expired(now=expires - timedelta(milliseconds=100)) == []
    with pytest.raises(FailedPrecondition):
        await q.heartbeat(job["id"], "not-the-token")


async def test_cancel_queued_at_once_running_on_request(sessions: Sessions) -> None:
    q = make_queue(sessions)
    running = await add_job(sessions, "c")
    queued = await add_job(sessions, "c")
    claim = await q.claim_job("r")
    assert claim is not None and claim.job["id"] == running["id"]

    cancelled = await q.cancel_job(queued["id"])
    assert cancelled["status"] == "CANCELLED"
    asked = await q.cancel_job(running["id"])
    assert asked["status"] == "RUNNING" and asked["cancel_requested"]
    assert (await q.cancel_job(running["id"]))["cancel_requested"]  # asking twice is harmless
    _, cancel = await q.heartbeat(running["id"], claim.lease_token)
    assert cancel
    done = await q.complete_job(running["id"], claim.lease_token, JobResult(status="CANCELLED"))
    assert done["status"] == "CANCELLED"
    with pytest.raises(FailedPrecondition) as exc:
        await q.cancel_job(running["id"])
    assert "already CANCELLED" in exc.value.message
    assert await outbox_types(sessions, running["id"]) == [
        "queued",
        "started",
        "cancel_requested",
        "cancelled",
    ]
    assert await outbox_types(sessions, queued["id"]) == ["queued", "cancelled"]


async def test_complete_validates_and_a_retry_gets_the_same_answer(sessions: Sessions) -> None:
    q = make_queue(sessions)
    job = await add_job(sessions)
    claim = await q.claim_job("r")
    assert claim is not None
    with pytest.raises(InvalidArgument) as bad:
        await q.complete_job(job["id"], claim.lease_token, JobResult(status="QUEUED"))
    assert bad.value.violations[0].field == "result.status"
    with pytest.raises(InvalidArgument) as bad_out:
        await q.complete_job(
            job["id"],
            claim.lease_token,
            JobResult(status="SUCCEEDED", outputs=[{"name": "x", "value_json": "{nope"}]),
        )
    assert bad_out.value.violations[0].field == "result.outputs[0].value_json"
    with pytest.raises(FailedPrecondition):
        await q.complete_job(job["id"], "stolen", JobResult(status="SUCCEEDED"))
    result = JobResult(
        status="SUCCEEDED",
        changes={"add": 2, "change": 0, "destroy": 0},
        outputs=[
            {"name": "endpoint", "value_json": '"https://k8s"'},
            {"name": "password", "sensitive": True, "value_json": '"hunter2"'},
        ],
    )
    done = await q.complete_job(job["id"], claim.lease_token, result)
    assert done["status"] == "SUCCEEDED"
    assert done["outputs"][1]["value_json"] == '"(sensitive)"'  # redacted even if the runner forgot
    again = await q.complete_job(job["id"], claim.lease_token, result)
    assert again["id"] == done["id"] and again["end_time"] == done["end_time"]
    assert await outbox_types(sessions, job["id"]) == ["queued", "started", "planned", "succeeded"]
    async with sessions() as session:
        dump = str((await session.execute(select(store.job_outbox.c.payload))).all())
    assert "hunter2" not in dump


async def test_a_rolled_back_transaction_leaves_no_job_and_no_event(sessions: Sessions) -> None:
    job = await add_job(sessions)
    with pytest.raises(RuntimeError):
        async with begin_write(sessions) as session:
            row = await store.transition(session, job["id"], JobStatus.QUEUED, {"status": "CANCELLED"})
            assert row is not None
            now = datetime.now(UTC)
            await store.add_outbox(
                session,
                [
                    event_outbox_row(job_event(row, "cancelled"), now),
                    dispatch_outbox_row(row["id"], "w", now),
                ],
            )
            raise RuntimeError("the caller failed after writing")
    async with sessions() as session:
        assert (await store.get_job(session, job["id"]) or {})["status"] == "QUEUED"
        assert await store.unpublished_count(session, job["id"]) == 2  # queued + dispatch only
    assert await outbox_types(sessions, job["id"]) == ["queued"]


async def test_git_token_only_for_the_current_unexpired_lease(sessions: Sessions) -> None:
    secret = "ghp_TESTTOKEN_9f8e7d6c5b4a"
    from services.snapshot.git_tokens import GitTokenSource

    q = make_queue(sessions, tokens=GitTokenSource("", secret, "github.com"))
    job = await add_job(sessions, "g", repo="https://github.com/acme/apps.git")
    queued = await add_job(sessions, "h")

    refusals = []
    claim = await q.claim_job("r", lease_seconds=30)
    assert claim is not None and claim.job["id"] == job["id"]
    for job_id, token in [
        (job["id"], "wrong-token"),
        (job["id"], ""),
        ("no-such-job", claim.lease_token),
        (queued["id"], claim.lease_token),
    ]:
        with pytest.raises(PermissionDenied) as exc:
            await q.git_token(job_id, token)
        refusals.append(exc.value.message)
    token, url = await q.git_token(job["id"], claim.lease_token)
    assert (token, url) == (secret, "https://github.com/acme/apps.git")

    # Expired (not yet rescued) lease: refused too; then the job is finished: refused.
    async with begin_write(sessions) as session:
        await store.transition(
            session,
            job["id"],
            JobStatus.RUNNING,
            {"lease_expires_at": datetime.now(UTC) - timedelta(seconds=1)},
        )
    with pytest.raises(PermissionDenied) as expired:
        await q.git_token(job["id"], claim.lease_token)
    refusals.append(expired.value.message)
    assert set(refusals) == {GIT_TOKEN_REFUSED}
    assert secret not in GIT_TOKEN_REFUSED

    async with sessions() as session:
        for table in (store.provision_jobs, store.job_outbox):
            rows = (await session.execute(select(table))).all()
            assert rows and secret not in repr(rows)


async def test_list_jobs_filters_and_pages(sessions: Sessions) -> None:
    q = make_queue(sessions)
    ids = [(await add_job(sessions, i % 2))["id"] for i in range(7)]
    claim = await q.claim_job("r")
    assert claim is not None
    seen: list[str] = []
    token = ""
    while True:
        rows, token = await q.list_jobs(page_size=3, page_token=token)
        assert len(rows) <= 3
        seen += [r["id"] for r in rows]
        if not token:
            break
    assert seen == list(reversed(ids))  # newest first, every job once
    running, _ = await q.list_jobs(status="RUNNING")
    assert [r["id"] for r in running] == [claim.job["id"]]
    by_spec, _ = await q.list_jobs(spec_id="spec-1")
    assert {r["id"] for r in by_spec} == set(ids[1::2])
    with pytest.raises(InvalidArgument) as bad:
        await q.list_jobs(page_token="garbage!", page_size=-1, status="NOPE")
    assert {v.field for v in bad.value.violations} == {"page_token", "page_size", "status"}


async def test_runner_arguments_are_validated(sessions: Sessions) -> None:
    q = make_queue(sessions)
    with pytest.raises(InvalidArgument) as exc:
        await q.claim_job("", lease_seconds=-1)
    assert {v.field for v in exc.value.violations} == {"runner_id", "lease_seconds"}
    with pytest.raises(InvalidArgument) as hb:
        await q.heartbeat("", "")
    assert {v.field for v in hb.value.violations} == {"lease.job_id", "lease.token"}
    with pytest.raises(AlethiaError) as missing:
        await q.complete_job("nope", "t", JobResult(status="SUCCEEDED"))
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    async with sessions() as session:
        count = (await session.execute(select(func.count()).select_from(store.provision_jobs))).scalar_one()
    assert count == 0


def record_driver_transactions(monkeypatch: pytest.MonkeyPatch, seen: list[str]) -> None:
    """Record the statements (first word) and the COMMITs of the queue's driver transactions."""
    from alethia import database
    from services.snapshot import job_queue

    def recorded(body: Any) -> Any:
        try:
            query = next(body)
            while True:
                seen.append(query.statement.sql.split(None, 1)[0].upper())
                rows = yield query
                query = body.send(rows)
        except StopIteration as done:
            if done.value[1]:
                seen.append("COMMIT")
            return done.value

    async def run(engine: Any, steps: Any) -> Any:
        return await database.run_on_driver(engine, lambda: recorded(steps()))

    monkeypatch.setattr(job_queue, "run_on_driver", run)


async def test_complete_and_claim_is_one_transaction(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completion, the claim and their events commit together: one BEGIN, one COMMIT.

    Counted on both paths: statements through SQLAlchemy and those of the driver path.
    """
    from sqlalchemy import event

    q = make_queue(sessions)
    first, second = await add_job(sessions, 1), await add_job(sessions, 2)
    claim = await q.claim_job("r")
    assert claim is not None and claim.job["id"] == first["id"]
    engine = sessions.kw["bind"].sync_engine
    seen: list[str] = []
    driver: list[str] = []
    record_driver_transactions(monkeypatch, driver)

    def on_execute(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", lambda conn: seen.append("COMMIT"))
    try:
        done, nxt = await q.complete_and_claim(
            first["id"], claim.lease_token, JobResult(status="SUCCEEDED"), "r"
        )
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert done["status"] == "SUCCEEDED" and nxt is not None and nxt.job["id"] == second["id"]
    assert driver.count("COMMIT") == 1, driver  # the common case takes the driver path
    seen += driver
    assert seen.count("COMMIT") == 1, seen
    assert seen.count("INSERT") == 1, seen  # the events of both, in one outbox write
    assert await outbox_types(sessions, first["id"]) == ["queued", "started", "planned", "succeeded"]
    assert await outbox_types(sessions, second["id"]) == ["queued", "started"]


async def test_complete_and_claim_keeps_the_result_when_the_claim_loses_a_race(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim refused by the one-running-per-workspace index never undoes the completion."""
    from sqlalchemy.exc import IntegrityError

    from services.snapshot.job_queue import JobQueue

    monkeypatch.setattr(JobQueue, "_driver_engine", lambda self: None)  # the session path
    q = make_queue(sessions)
    first, second = await add_job(sessions, 1), await add_job(sessions, 2)
    claim = await q.claim_job("r")
    assert claim is not None
    real_claim = store.claim
    calls = 0

    async def racing_claim(*args: object, **kwargs: object) -> object:
        # The first claim meets another claimer's RUNNING job in its workspace, as the
        # partial unique index reports it; the claim of the retry finds the job taken.
        nonlocal calls
        calls += 1
        if calls == 1:
            raise IntegrityError("UPDATE provision_jobs", {}, Exception("uq_provision_jobs_running"))
        return await real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "claim", racing_claim)
    done, nxt = await q.complete_and_claim(first["id"], claim.lease_token, JobResult(status="SUCCEEDED"), "r")
    assert done["status"] == "SUCCEEDED" and calls == 2
    assert nxt is not None and nxt.job["id"] == second["id"]  # the retry's own claim
    async with sessions() as session:
        assert (await store.get_job(session, first["id"]) or {})["status"] == "SUCCEEDED"
    # Each event once: the rolled-back attempt left nothing behind.
    assert await outbox_types(sessions, first["id"]) == ["queued", "started", "planned", "succeeded"]
    assert await outbox_types(sessions, second["id"]) == ["queued", "started"]


async def test_driver_path_rows_are_what_a_read_gives(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver path's rows (completed job, claimed job) equal the session's read of them:
    same values and Python types (aware UTC datetimes, decoded JSON, booleans)."""
    q = make_queue(sessions)
    first, second = await add_job(sessions, 1), await add_job(sessions, 2)
    driver: list[str] = []
    record_driver_transactions(monkeypatch, driver)
    claim = await q.claim_job("r")
    assert claim is not None
    result = JobResult(
        status="SUCCEEDED",
        changes={"add": 2, "change": 0, "destroy": 0},
        artifacts=[{"name": "plan", "uri": "s3://b/k"}],
        outputs=[{"name": "x", "value_json": "1"}],
    )
    done, nxt = await q.complete_and_claim(first["id"], claim.lease_token, result, "r", 90)
    assert nxt is not None and nxt.job["id"] == second["id"]
    assert driver.count("COMMIT") == 2, driver  # both took the driver path
    async with sessions() as session:
        read_first = await store.get_job(session, first["id"])
        read_second = await store.get_job(session, second["id"])
    assert done == read_first and nxt.job == read_second
    for row, read in ((claim.job, None), (done, read_first), (nxt.job, read_second)):
        for name, value in row.items():
            if read is not None:
                assert type(value) is type(read[name]), name
        assert row["update_time"].tzinfo is not None and row["update_time"].utcoffset() == timedelta(0)
        assert isinstance(row["snapshot"], dict) and isinstance(row["cancel_requested"], bool)
    assert done["artifacts"] == [{"name": "plan", "uri": "s3://b/k"}] and done["changes"]["add"] == 2
    assert nxt.job["lease_seconds"] == 90 and nxt.expires_at == nxt.job["lease_expires_at"]


async def test_driver_path_rolls_back_to_the_session_path_for_a_retried_completion(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retried completion matches no row on the driver path: it rolls back (nothing written)
    and the session path answers it alike, with no second set of events."""
    q = make_queue(sessions)
    first = await add_job(sessions, 1)
    claim = await q.claim_job("r")
    assert claim is not None
    once = await q.complete_job(first["id"], claim.lease_token, JobResult(status="SUCCEEDED"))
    driver: list[str] = []
    record_driver_transactions(monkeypatch, driver)
    again, nxt = await q.complete_and_claim(
        first["id"], claim.lease_token, JobResult(status="SUCCEEDED"), "r"
    )
    assert "COMMIT" not in driver and driver, driver  # tried, rolled back
    assert again == once and nxt is None
    assert await outbox_types(sessions, first["id"]) == ["queued", "started", "planned", "succeeded"]


async def test_driver_complete_and_claim_keeps_the_result_when_the_claim_loses_a_race(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the driver path too: a claim the one-running-per-workspace index refuses (a real
    IntegrityError from the database) rolls back, and the completion is made on its own."""
    from sqlalchemy import update

    q = make_queue(sessions)
    first, second = await add_job(sessions, 1), await add_job(sessions, 1)  # second waits behind first
    claim = await q.claim_job("r")
    other = await add_job(sessions, 3)
    taken = await q.claim_job("r3")
    assert claim is not None and taken is not None and taken.job["id"] == other["id"]
    # The first claim meets another claimer's RUNNING job in its workspace (workspace 3's).
    racing = (
        update(store.provision_jobs)
        .where(store.provision_jobs.c.id == second["id"])
        .values(status="RUNNING", workspace=other["workspace"])
        .returning(*store.provision_jobs.c)
    )
    real = store.claim_statement
    calls = 0

    def racing_claim(pg: bool) -> Any:
        nonlocal calls
        calls += 1
        return racing if calls == 1 else real(pg)

    monkeypatch.setattr(store, "claim_statement", racing_claim)
    driver: list[str] = []
    record_driver_transactions(monkeypatch, driver)
    done, nxt = await q.complete_and_claim(first["id"], claim.lease_token, JobResult(status="SUCCEEDED"), "r")
    assert done["status"] == "SUCCEEDED" and calls == 2
    assert driver.count("COMMIT") == 2, driver  # the completion alone, then a claim of its own
    assert nxt is not None and nxt.job["id"] == second["id"]
    assert nxt.job["workspace"] == second["workspace"]  # the refused statement left nothing
    assert await outbox_types(sessions, first["id"]) == ["queued", "started", "planned", "succeeded"]
    assert await outbox_types(sessions, second["id"]) == ["queued", "started"]


async def test_a_failed_driver_transaction_is_rolled_back_and_never_pooled_open(sessions: Sessions) -> None:
    """An error inside a driver transaction (here a refusal after its first UPDATE) rolls it
    back, and the pooled connection is handed out again outside any transaction."""
    from alethia.database import Query, driver_statement, is_sqlite, run_on_driver
    from alethia.errors import NotFound

    first = await add_job(sessions, 1)
    engine = sessions.kw["bind"]
    cancel = (
        store.provision_jobs.update()
        .where(store.provision_jobs.c.id == first["id"])
        .values(status="CANCELLED")
        .returning(store.provision_jobs.c.status)
    )

    def steps() -> Any:
        rows = yield Query(driver_statement(engine.dialect, cancel), {})
        assert rows == [{"status": "CANCELLED"}]
        raise NotFound("refused after the first statement")

    with pytest.raises(NotFound):
        await run_on_driver(engine, steps)
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        assert not (driver._conn.in_transaction if is_sqlite(engine) else driver.is_in_transaction())
    async with sessions() as session:
        assert (await store.get_job(session, first["id"]) or {})["status"] == "QUEUED"
    claim = await make_queue(sessions).claim_job("r")
    assert claim is not None and claim.job["id"] == first["id"]


async def test_driver_path_deploy_of_a_plan(sessions: Sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the driver path a DEPLOY of a saved plan is claimed with the plan's artifacts, and
    its success marks the plan applied (in the same transaction as the completion)."""
    q = make_queue(sessions)
    plan = await add_job(sessions, 1)
    driver: list[str] = []
    record_driver_transactions(monkeypatch, driver)
    claim = await q.claim_job("r")
    assert claim is not None and claim.job["id"] == plan["id"]
    artifacts = [{"name": "tfplan", "uri": "s3://plans/p1", "sha256": "ab"}]
    await q.complete_job(plan["id"], claim.lease_token, JobResult(status="SUCCEEDED", artifacts=artifacts))
    deploy = await add_job(sessions, 1, JobType.DEPLOY, max_attempts=1, plan_job_id=plan["id"])
    claimed = await q.claim_job("r")
    assert claimed is not None and claimed.job["id"] == deploy["id"]
    assert claimed.plan_artifacts == artifacts
    done, nxt = await q.complete_and_claim(
        deploy["id"], claimed.lease_token, JobResult(status="SUCCEEDED"), "r"
    )
    assert done["status"] == "SUCCEEDED" and nxt is None
    assert driver.count("COMMIT") == 4, driver  # every step took the driver path
    async with sessions() as session:
        applied = await store.get_job(session, plan["id"])
    assert applied is not None and applied["applied_by_job_id"] == deploy["id"]
