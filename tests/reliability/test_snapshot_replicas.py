"""Scenario: two snapshot service processes on one Postgres database; the relay's leader SIGKILLed.

Both replicas (``python -m services.snapshot``) serve the same job queue. Jobs are queued,
claimed and completed through both; the process that holds the relay's leader lease (the
Postgres advisory lock, found through ``pg_locks`` and the process's own sockets) is then
killed with SIGKILL. Its session dies with it, the other replica takes the lease, and the
jobs run through the survivor afterwards are relayed too. Counted over the whole run: every
job has exactly one queued, started, planned and succeeded event on the stream, and no
message id appears twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from alethia.database import normalize_url
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from services.snapshot.leader import OUTBOX_RELAY_LOCK
from tests.harness import PLAN, SUCCEEDED, Pipeline, ServiceChild, job_events

LEADER_PORT = text(
    "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"
)
UNPUBLISHED = text("SELECT count(*) FROM job_outbox WHERE published_at IS NULL")


async def _sql(url: str, stmt: Any, **params: Any) -> list[Any]:
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            return [r[0] for r in (await conn.execute(stmt, params)).all()]
    finally:
        await engine.dispose()


def _owns_port(proc: ServiceChild, port: int) -> bool:
    assert proc.proc is not None
    try:
        conns = psutil.Process(proc.proc.pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.laddr and c.laddr.port == port for c in conns)


async def _leader(url: str, replicas: list[ServiceChild], within: float = 30.0) -> ServiceChild:
    deadline = time.monotonic() + within
    while True:
        ports = await _sql(url, LEADER_PORT, k=OUTBOX_RELAY_LOCK)
        owners = [r for r in replicas if ports and _owns_port(r, ports[0])]
        if len(ports) == 1 and len(owners) == 1:
            return owners[0]
        assert len(ports) <= 1, f"{len(ports)} sessions hold the relay lease"
        assert time.monotonic() < deadline, "no replica took the relay lease"
        await asyncio.sleep(0.1)


async def _drained(url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while (await _sql(url, UNPUBLISHED))[0]:
        assert time.monotonic() < deadline, "the outbox was not relayed"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_killing_the_relay_leader_hands_over_and_loses_no_event(make_pipeline: Any) -> None:
    p: Pipeline = await make_pipeline(snapshot_process=True)
    a = p.snapshot
    b = await p.start_snapshot_replica("snapshot-b")
    replicas = [a, b]
    stubs = {}
    for r in replicas:
        ch = p.channel(r.address)
        stubs[r] = (snapshot_pb2_grpc.SnapshotServiceStub(ch), snapshot_pb2_grpc.RunnerServiceStub(ch))
    jobs: list[str] = []
    try:

        async def run_jobs(n: int, through: list[ServiceChild]) -> None:
            for i in range(n):
                spec = await p.create_spec(f"replica{len(jobs)}")
                q_api, _ = stubs[through[i % len(through)]]
                _, r_api = stubs[through[(i + 1) % len(through)]]
                job = await q_api.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
                jobs.append(job.id)
                claim = await r_api.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="replicas"))
                assert claim.claimed and claim.job.id == job.id
                done = snapshot_pb2.JobResult(status=SUCCEEDED)
                await r_api.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=done))

        leader = await _leader(p.snapshot_db, replicas)
        await run_jobs(4, replicas)
        await _drained(p.snapshot_db)

        assert leader.kill() >= 1
        survivor = b if leader is a else a
        await run_jobs(3, [survivor])  # written while the lease may still be changing hands
        assert await _leader(p.snapshot_db, [survivor]) is survivor
        await _drained(p.snapshot_db)

        per_job: dict[str, Counter[str]] = {j: Counter() for j in jobs}
        ids: Counter[str] = Counter()
        for msg_id, _, ev in await job_events(p.nats_url):
            if ev.job_id in per_job:
                per_job[ev.job_id][ev.type] += 1
                ids[msg_id] += 1
        expected = Counter({"queued": 1, "started": 1, "planned": 1, "succeeded": 1})
        wrong = {j: dict(c) for j, c in per_job.items() if c != expected}
        assert wrong == {}, wrong
        assert len(ids) == 4 * len(jobs) and max(ids.values()) == 1
    finally:
        b.kill()
