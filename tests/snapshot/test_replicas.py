"""Several replicas of the snapshot service on one Postgres database and one NATS.

Real Postgres, real NATS JetStream, real gRPC: two services started on the same database
(the way two containers behind a load balancer would run) must relay every outbox event
exactly once, with one relay at a time, hand the relay over when the leader goes or loses
its database session, and rescue each expired job once even when both rescuers run at
the same moment. The outbox is pruned of delivered rows. (Killing a replica process with
SIGKILL is in tests/reliability/test_snapshot_replicas.py.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from alethia.database import begin_write, normalize_url
from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_STREAM, EVENTS_STREAM
from alethia.rpc.client import connect
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import NatsServer
from services.snapshot import store
from services.snapshot.app import SnapshotService, start
from services.snapshot.leader import OUTBOX_RELAY_LOCK, LeaderLease
from services.snapshot.relay import NatsLink, OutboxRelay
from services.snapshot.settings import SnapshotSettings
from tests.fixtures.specs import create_identity, full_spec_dict, start_specs
from tests.snapshot.conftest import Sessions, add_job, make_queue, migrated_sessions

RELAY_EVENT_TYPES = ("queued", "started", "planned", "succeeded")


async def _stream_msg_ids(url: str, stream: str) -> list[tuple[str, str]]:
    """(Nats-Msg-Id, subject) of every message in a stream, in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), msg.subject))
        return out
    finally:
        await nc.close()


async def _until(check: object, what: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check() if callable(check) else check
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _leaders(*svcs: SnapshotService) -> list[SnapshotService]:
    return [s for s in svcs if s.relay is not None and s.relay.is_leader]


async def _lock_holders(url: str) -> int:
    """Postgres sessions holding the relay's advisory lock in this database."""
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            res = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": OUTBOX_RELAY_LOCK},
            )
            return int(res.scalar_one())
    finally:
        await engine.dispose()


async def _terminate_lock_session(url: str) -> int:
    """End the session that holds the lease, as Postgres sees a leader process die."""
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            res = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
            return int(res.scalar_one())
    finally:
        await engine.dispose()


async def test_two_replicas_relay_every_event_exactly_once_and_hand_over(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    nats_srv = NatsServer(tmp_path / "nats").start()  # this test's streams only
    specs = await start_specs(f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}")

    def settings() -> SnapshotSettings:
        return SnapshotSettings(
            database_url=fresh_postgres_url,
            listen="127.0.0.1:0",
            specs_addr=specs.address,
            nats_url=nats_srv.url,
            relay_poll_seconds=0.2,
        )

    a = await start(settings())
    b = await start(settings())
    channels = [connect(a.address), connect(b.address), connect(specs.address)]
    jobs_api = [snapshot_pb2_grpc.SnapshotServiceStub(ch) for ch in channels[:2]]
    runner_api = [snapshot_pb2_grpc.RunnerServiceStub(ch) for ch in channels[:2]]
    spec_stub = specs_pb2_grpc.SpecServiceStub(channels[2])
    stopped: list[SnapshotService] = []
    try:
        await _until(lambda: len(_leaders(a, b)) == 1, "a leader")
        await asyncio.sleep(1.0)  # several standby polls later: still exactly one
        assert len(_leaders(a, b)) == 1 and await _lock_holders(fresh_postgres_url) == 1
        identity = await create_identity(spec_stub, "aws")
        queued: list[str] = []

        async def run_jobs(n: int, replicas: list[int]) -> None:
            """Queue ``n`` jobs and run each, spreading every call over ``replicas``."""
            for i in range(n):
                data = full_spec_dict("aws", cloud_identity_id=identity.id, project_name=f"rep{len(queued)}")
                spec = await spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))
                r = replicas[i % len(replicas)]
                job = await jobs_api[r].QueueJob(
                    snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=events_pb2.PLAN)
                )
                queued.append(job.id)
                other = replicas[(i + 1) % len(replicas)]
                claim = await runner_api[other].ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="rep"))
                assert claim.claimed and claim.job.id == job.id
                done = snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
                await runner_api[r].CompleteJob(
                    snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=done)
                )

        async def all_relayed() -> bool:
            assert b.queue is not None
            async with b.queue.sessions() as session:
                return await store.unpublished_count(session) == 0

        async def check_exactly_once(expected_jobs: int) -> None:
            await _until(all_relayed, "the outbox to drain")
            assert b.queue is not None
            async with b.queue.sessions() as session:
                rows = (
                    await session.execute(
                        select(store.job_outbox.c.msg_id, store.job_outbox.c.subject).order_by(
                            store.job_outbox.c.seq
                        )
                    )
                ).all()
            events_db = [(m, s) for m, s in rows if s.startswith("alethia.jobs.")]
            dispatch_db = [(m, s) for m, s in rows if s == "alethia.dispatch"]
            events_stream = await _stream_msg_ids(nats_srv.url, EVENTS_STREAM)
            dispatch_stream = await _stream_msg_ids(nats_srv.url, DISPATCH_STREAM)
            assert len(events_db) == expected_jobs * len(RELAY_EVENT_TYPES)
            # Every committed event on the stream once, none twice, each job's in written order.
            assert Counter(events_stream) == Counter(events_db)
            assert max(Counter(m for m, _ in events_stream).values()) == 1
            assert Counter(dispatch_stream) == Counter(dispatch_db)
            for job_id in queued:
                prefix = f"alethia.jobs.{job_id}."
                assert [s.rsplit(".", 1)[1] for _, s in events_stream if s.startswith(prefix)] == list(
                    RELAY_EVENT_TYPES
                )

        # 1. Calls spread over both replicas: every event once, whichever replica wrote it.
        await run_jobs(4, [0, 1])
        await check_exactly_once(4)

        # 2. The leader loses its database session (what Postgres sees when a process dies):
        #    a replica takes the lease again, and events keep flowing exactly once.
        assert await _terminate_lock_session(fresh_postgres_url) == 1
        await _until(lambda: _lock_holders(fresh_postgres_url), "the lease to be taken again")
        await run_jobs(2, [0, 1])
        await check_exactly_once(6)
        await _until(lambda: len(_leaders(a, b)) == 1, "one leader after the session loss")

        # 3. The leader stops: the standby becomes the leader and relays what the survivor writes.
        leader = _leaders(a, b)[0]
        survivor = b if leader is a else a
        await leader.stop(1)
        stopped.append(leader)
        await _until(lambda: survivor.relay is not None and survivor.relay.is_leader, "the standby to lead")
        await run_jobs(2, [0 if survivor is a else 1])
        await check_exactly_once(8)
    finally:
        for ch in channels:
            await ch.close()
        for svc in (a, b):
            if svc not in stopped:
                await svc.stop(1)
        await specs.stop(1)
        await asyncio.to_thread(nats_srv.stop)


async def test_rescuers_of_two_replicas_rescue_each_job_once(fresh_postgres_url: str) -> None:
    sessions_a, engine_a = await migrated_sessions(fresh_postgres_url)
    sessions_b, engine_b = await migrated_sessions(fresh_postgres_url)
    queue_a, queue_b = make_queue(sessions_a, lease_seconds=1), make_queue(sessions_b, lease_seconds=1)
    try:
        jobs = [await add_job(sessions_a, workspace=i) for i in range(8)]
        claimed = [await queue_a.claim_job(f"runner-{i}") for i in range(8)]
        assert all(c is not None for c in claimed)
        later = datetime.now(UTC) + timedelta(seconds=30)
        got_a, got_b = await asyncio.gather(queue_a.rescue_expired(later), queue_b.rescue_expired(later))
        rescued = [job_id for job_id, _ in got_a + got_b]
        assert sorted(rescued) == sorted(j["id"] for j in jobs)  # each once, none twice
        async with sessions_a() as session:
            res = await session.execute(
                select(store.job_outbox.c.job_id).where(store.job_outbox.c.subject.like("%.requeued"))
            )
            assert Counter(job_id for (job_id,) in res.all()) == Counter({j["id"]: 1 for j in jobs})
    finally:
        await engine_a.dispose()
        await engine_b.dispose()


async def test_prune_deletes_delivered_rows_past_retention_only(sessions: Sessions) -> None:
    for i in range(3):
        await add_job(sessions, workspace=i)  # two outbox rows each
    async with sessions() as session:
        rows = await store.unpublished(session, 100)
    assert len(rows) == 6
    now = datetime.now(UTC)
    async with begin_write(sessions) as session:
        await store.mark_published(session, [r["seq"] for r in rows[:2]], now - timedelta(hours=2))
        await store.mark_published(session, [r["seq"] for r in rows[2:4]], now)
    relay = OutboxRelay(sessions, NatsLink("nats://127.0.0.1:1"), retention_seconds=3600, batch=1)
    assert await relay.prune(now) == 2  # delivered two hours ago; batches of 5 rows
    async with sessions() as session:
        left = (await session.execute(select(store.job_outbox.c.seq).order_by(store.job_outbox.c.seq))).all()
        assert [s for (s,) in left] == [r["seq"] for r in rows[2:]]
        assert await store.unpublished_count(session) == 2
    # Retention 0: everything delivered goes, the undelivered backlog stays.
    relay.retention_seconds = 0
    assert await relay.prune(now + timedelta(seconds=1)) == 2
    async with sessions() as session:
        assert [r["seq"] for r in await store.unpublished(session, 100)] == [r["seq"] for r in rows[4:]]
        assert await store.unpublished_count(session) == 2


async def test_the_relays_read_marks_what_was_acked_and_returns_the_rest_in_order(sessions: Sessions) -> None:
    """One read both marks the rows acked since the last read and returns the next ones
    (Postgres: one statement on the driver connection; SQLite: a mark, then a read)."""
    for i in range(3):
        await add_job(sessions, workspace=i)  # two outbox rows each
    relay = OutboxRelay(sessions, NatsLink("nats://127.0.0.1:1"), batch=4)
    first = await relay._read_unpublished()  # nothing acked yet: the first four, in order
    async with sessions() as session:
        every = [r["seq"] for r in await store.unpublished(session, 100)]
    assert [r["seq"] for r in first] == every[:4] and len(every) == 6
    assert isinstance(first[0]["payload"], bytes) and first[0]["published_at"] is None
    relay._acked = every[:3]
    second = await relay._read_unpublished()
    assert [r["seq"] for r in second] == every[3:] and relay._acked == []
    async with sessions() as session:
        assert [r["seq"] for r in await store.unpublished(session, 100)] == every[3:]
        marked = await session.execute(
            select(store.job_outbox.c.seq, store.job_outbox.c.published_at).where(
                store.job_outbox.c.published_at.is_not(None)
            )
        )
        rows = marked.all()
    assert sorted(seq for seq, _ in rows) == every[:3]
    assert all(at.tzinfo is not None for _, at in rows)


async def test_sqlite_replica_always_leads(tmp_path: Path) -> None:
    lease = LeaderLease(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert await lease.held() and lease.is_leader
    await lease.release()
    assert lease.is_leader


async def test_a_commit_on_the_standby_wakes_the_leader(fresh_postgres_url: str, tmp_path: Path) -> None:
    # Polls an hour apart: only the standby's NOTIFY can get its event relayed in time.
    nats_srv = NatsServer(tmp_path / "nats").start()
    specs = await start_specs(f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}")

    def settings() -> SnapshotSettings:
        return SnapshotSettings(
            database_url=fresh_postgres_url,
            listen="127.0.0.1:0",
            specs_addr=specs.address,
            nats_url=nats_srv.url,
            relay_poll_seconds=3600,
        )

    a = await start(settings())
    b = await start(settings())
    channels = [connect(a.address), connect(b.address), connect(specs.address)]
    try:
        await _until(lambda: len(_leaders(a, b)) == 1, "a leader")
        standby = 1 if _leaders(a, b)[0] is a else 0
        spec_stub = specs_pb2_grpc.SpecServiceStub(channels[2])
        identity = await create_identity(spec_stub, "aws")
        data = full_spec_dict("aws", cloud_identity_id=identity.id, project_name="wake")
        spec = await spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))
        jobs_api = snapshot_pb2_grpc.SnapshotServiceStub(channels[standby])
        await jobs_api.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=events_pb2.PLAN))

        async def relayed() -> bool:
            assert a.queue is not None
            async with a.queue.sessions() as session:
                return await store.unpublished_count(session) == 0

        await _until(relayed, "the leader to relay the standby's rows")
        assert [s for _, s in await _stream_msg_ids(nats_srv.url, EVENTS_STREAM)][-1].endswith(".queued")
    finally:
        for ch in channels:
            await ch.close()
        await a.stop(1)
        await b.stop(1)
        await specs.stop(1)
        await asyncio.to_thread(nats_srv.stop)
