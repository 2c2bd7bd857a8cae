"""The outbox against a NATS server that is down at start-up, then stopped and started again.

Queueing and running jobs keep working without NATS; once it is back every committed event
reaches the stream exactly once (Nats-Msg-Id), in the order each job's events were written.
Uses a NATS server of its own so the stream holds only this test's messages.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import grpc
import nats
import pytest
from sqlalchemy import select

from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_STREAM, EVENTS_STREAM
from alethia.rpc.client import connect
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import NatsServer, free_port
from services.snapshot import store
from services.snapshot.app import SnapshotService, start
from services.snapshot.settings import SnapshotSettings
from tests.fixtures.specs import create_identity, full_spec_dict, start_specs


async def _unpublished(svc: SnapshotService) -> int:
    assert svc.queue is not None
    async with svc.queue.sessions() as session:
        return await store.unpublished_count(session)


async def _wait_all_published(svc: SnapshotService) -> None:
    for _ in range(300):  # the outbox must drain within 30 s of NATS coming back
        if not await _unpublished(svc):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("outbox not drained after NATS came back")


async def _stream_msg_ids(url: str, stream: str) -> list[tuple[str, str]]:
    """(Nats-Msg-Id, subject) of every message in a stream, in stream order."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), msg.subject))
    await nc.close()
    return out


async def test_events_survive_a_nats_outage_none_lost_none_duplicated(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    nats_srv = NatsServer(tmp_path / "nats", port=free_port())  # not started yet: NATS is down
    specs = await start_specs(f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}")
    svc = await start(
        SnapshotSettings(
            database_url=fresh_postgres_url,
            listen="127.0.0.1:0",
            specs_addr=specs.address,
            nats_url=nats_srv.url,
            relay_poll_seconds=0.2,
        )
    )
    channel, spec_channel = connect(svc.address), connect(specs.address)
    snap = snapshot_pb2_grpc.SnapshotServiceStub(channel)
    runner = snapshot_pb2_grpc.RunnerServiceStub(channel)
    spec_stub = specs_pb2_grpc.SpecServiceStub(spec_channel)
    try:
        identity = await create_identity(spec_stub, "aws")

        async def queue(n: int) -> snapshot_pb2.Job:
            data = full_spec_dict("aws", cloud_identity_id=identity.id, project_name=f"outage{n}")
            spec = await spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))
            return await snap.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=events_pb2.PLAN))

        async def run_one() -> None:
            claim = await runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="outage"))
            assert claim.claimed
            done = snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
            await runner.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=done))

        # 1. NATS down from the start: the service serves, queueing and running work.
        jobs = [await queue(i) for i in range(3)]
        await run_one()
        await asyncio.sleep(0.5)
        assert await _unpublished(svc) == 3 * 2 + 3  # queued+dispatch each, started+planned+succeeded
        # Watching without NATS: a finished job ends with its terminal event rebuilt from the
        # row; an unfinished one is UNAVAILABLE (never a hang).
        done_job = jobs[0]
        replay = [ev async for ev in snap.WatchJob(snapshot_pb2.WatchJobRequest(id=done_job.id))]
        assert [(e.type, e.status) for e in replay] == [("succeeded", events_pb2.SUCCEEDED)]
        with pytest.raises(grpc.aio.AioRpcError) as down:
            _ = [ev async for ev in snap.WatchJob(snapshot_pb2.WatchJobRequest(id=jobs[1].id))]
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE

        # 2. NATS comes up: streams are created and the backlog is published.
        await asyncio.to_thread(nats_srv.start)
        await _wait_all_published(svc)

        # 3. NATS goes away again mid-flight, then comes back on the same port and store.
        await asyncio.to_thread(nats_srv.stop)
        jobs += [await queue(i) for i in range(3, 6)]
        await run_one()
        await run_one()
        await asyncio.sleep(0.5)
        assert await _unpublished(svc) > 0
        await asyncio.to_thread(nats_srv.start)
        await _wait_all_published(svc)

        assert svc.queue is not None
        async with svc.queue.sessions() as session:
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

        assert len(events_db) == 6 + 3 * 3  # 6 queued; 3 jobs started, planned, succeeded
        # None lost, none duplicated, and in the order they were written (each batch goes out
        # in seq order on one connection, its acks awaited together).
        assert events_stream == events_db
        assert Counter(events_stream) == Counter(events_db)
        assert max(Counter(m for m, _ in events_stream).values()) == 1
        for job in jobs:
            subject_prefix = f"alethia.jobs.{job.id}."
            assert [s for _, s in events_stream if s.startswith(subject_prefix)] == [
                s for _, s in events_db if s.startswith(subject_prefix)
            ]
        assert Counter(dispatch_stream) == Counter(dispatch_db) and len(dispatch_db) >= 6

        # A job that finished during the outage can be watched to its end.
        finished = [j for j in jobs if (await snap.GetJob(snapshot_pb2.GetJobRequest(id=j.id))).status == 3]
        call = snap.WatchJob(snapshot_pb2.WatchJobRequest(id=finished[-1].id))
        types = [ev.type async for ev in call]
        assert types == ["queued", "started", "planned", "succeeded"]
    finally:
        await channel.close()
        await spec_channel.close()
        await svc.stop(1)
        await specs.stop(1)
        await asyncio.to_thread(nats_srv.stop)
