"""Concurrent claimers, each with its own connection pool (as separate runner processes would be).

Every job is claimed exactly once, a workspace never has two RUNNING jobs, and each
workspace's jobs start in queue order. Prints claims/second (a measurement, not an assertion).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from sqlalchemy import func, select

from alethia.database import create_engine, session_factory
from services.snapshot import store
from services.snapshot.job_queue import JobResult
from tests.snapshot.conftest import Sessions, add_job, make_queue

JOBS = 200
WORKSPACES = 40
CLAIMERS = 4


async def _running_per_workspace_max(sessions: Sessions) -> int:
    async with sessions() as session:
        res = await session.execute(
            select(func.count())
            .select_from(store.provision_jobs)
            .where(store.provision_jobs.c.status == "RUNNING")
            .group_by(store.provision_jobs.c.workspace)
        )
        return max((n for (n,) in res.all()), default=0)


async def test_concurrent_claimers_claim_every_job_exactly_once(
    database_url: str, sessions: Sessions
) -> None:
    ids_by_ws: dict[str, list[str]] = defaultdict(list)
    for i in range(JOBS):
        row = await add_job(sessions, i % WORKSPACES)
        ids_by_ws[row["workspace"]].append(row["id"])

    engines = [create_engine(database_url) for _ in range(CLAIMERS)]
    queues = [make_queue(session_factory(e)) for e in engines]
    claimed: list[tuple[str, str]] = []
    violations: list[int] = []

    async def claimer(n: int) -> None:
        q = queues[n]
        idle = 0
        while idle < 3:
            claim = await q.claim_job(f"runner-{n}")
            if claim is None:
                idle += 1
                await asyncio.sleep(0.005)
                continue
            idle = 0
            claimed.append((claim.job["workspace"], claim.job["id"]))
            if len(claimed) % 10 == 0:
                violations.append(await _running_per_workspace_max(sessions))
            await q.complete_job(claim.job["id"], claim.lease_token, JobResult(status="SUCCEEDED"))

    t0 = time.perf_counter()
    await asyncio.gather(*(claimer(n) for n in range(CLAIMERS)))
    elapsed = time.perf_counter() - t0
    for e in engines:
        await e.dispose()

    ids = [job_id for _, job_id in claimed]
    assert len(ids) == JOBS and len(set(ids)) == JOBS  # each exactly once
    assert max(violations) <= 1  # never two running in one workspace
    order: dict[str, list[str]] = defaultdict(list)
    for ws, job_id in claimed:
        order[ws].append(job_id)
    assert order == ids_by_ws  # per-workspace FIFO
    async with sessions() as session:
        res = await session.execute(
            select(store.provision_jobs.c.status, store.provision_jobs.c.attempt, func.count()).group_by(
                store.provision_jobs.c.status, store.provision_jobs.c.attempt
            )
        )
        assert res.all() == [("SUCCEEDED", 1, JOBS)]
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgres"
    print(f"\n[measure] {dialect}: {JOBS} claim+complete cycles by {CLAIMERS} claimers in {elapsed:.2f}s "
          f"= {JOBS / elapsed:.0f} jobs/s")  # fmt: skip
