"""Scenario 3: Postgres connections of both services killed while jobs are queued, claimed and completed.

A killer loop calls ``pg_terminate_backend`` on every connection of the test's own two
databases (spec service, snapshot service) every few hundred milliseconds while PLAN and
DEPLOY jobs are queued, claimed, heartbeated and completed. The shared Postgres server
itself is never restarted (other suites use it). Counted and asserted:

- backends terminated > 0 (the fault really happened), INTERNAL answers 0;
- lost jobs 0: every job terminal, every DEPLOY and PLAN SUCCEEDED;
- no SUCCEEDED job without its artifacts (manifest + listed files with matching sha256)
  and, for a DEPLOY, its state object; and the reverse: no state object whose DEPLOY did
  not succeed;
- duplicates 0: each QueueJob retried with its idempotency key made exactly one job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
import grpc
import pytest

from alethia.snapshot.v1 import snapshot_pb2
from tests.harness import DEPLOY, PLAN, RUNNING, SUCCEEDED, Pipeline, PrivatePostgres

ADMIN_DSN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


class Killer:
    """Terminates every backend of the given databases, over and over."""

    def __init__(self, admin_dsn: str, databases: list[str], every: float) -> None:
        self.admin_dsn = admin_dsn
        self.databases = databases
        self.every = every
        self.terminated = 0
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                    "WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()",
                    self.databases,
                )
                self.terminated += sum(1 for r in rows if r["ok"])
                self.rounds += 1
                await asyncio.sleep(self.every)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def _check_artifacts(p: Pipeline, job: snapshot_pb2.Job) -> list[str]:
    """Problems with a SUCCEEDED job's artifacts (empty when all is well)."""
    problems = []
    arts = {a.name: a for a in job.artifacts}
    if "manifest.json" not in arts:
        return [f"{job.id}: no manifest"]
    manifest = json.loads(p.artifact(arts["manifest.json"].key))
    if manifest["config_hash"] != job.config_hash:
        problems.append(f"{job.id}: manifest hash")
    for name, entry in manifest["artifacts"].items():
        data = p.artifact(entry["key"])
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{job.id}: {name} checksum")
    if job.type == PLAN and "plan.tfplan" not in manifest["artifacts"]:
        problems.append(f"{job.id}: no plan file")
    return problems


async def verify_outcomes(
    p: Pipeline, jobs: dict[str, tuple[str, int]], done: dict[str, snapshot_pb2.Job], prefix: str
) -> snapshot_pb2.ListJobsResponse:
    """Duplicates 0, every job SUCCEEDED, SUCCEEDED <=> artifacts (+ state for a DEPLOY), no lock left."""
    # Duplicates: a retried QueueJob with the same key is the same job.
    listed = await p.jobs.ListJobs(snapshot_pb2.ListJobsRequest(page_size=500))
    assert len(listed.jobs) == len(jobs), f"{len(listed.jobs)} jobs for {len(jobs)} requests"
    failed = {j.id: j.error for j in done.values() if j.status != SUCCEEDED}
    assert failed == {}, list(failed.items())[:3]
    problems: list[str] = []
    state_keys = set(p.keys("alethia-state", f"zone-acme/{prefix}"))
    for job in done.values():
        project, jtype = jobs[job.id]
        key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate"
        problems += _check_artifacts(p, job)
        has_state = key in state_keys and json.loads(p.get_object("alethia-state", key))["resources"]
        if jtype == DEPLOY and not has_state:
            problems.append(f"{job.id}: SUCCEEDED DEPLOY without state")
        if jtype == PLAN and has_state:
            problems.append(f"{job.id}: a PLAN wrote state")
        if f"{key}.tflock" in state_keys:
            problems.append(f"{job.id}: lock left behind")
    assert problems == []
    return listed


async def postgres_kills(
    make_pipeline: Any, pg_pair: tuple[str, str], admin_dsn: str, deploys: int, plans: int, every: float
) -> dict[str, Any]:
    p: Pipeline = await make_pipeline(lease_seconds=8)
    prefix = f"pgkill{uuid.uuid4().hex[:4]}-"
    specs = [await p.create_spec(f"{prefix}{i}") for i in range(deploys + plans)]
    await p.start_runner(runner_concurrency=2)
    await p.start_runner(runner_concurrency=2)
    killer = Killer(admin_dsn, [_db_name(u) for u in pg_pair], every)
    killer.start()
    internal = 0
    keys: list[str] = []
    jobs: dict[str, tuple[str, int]] = {}
    try:
        for i, spec in enumerate(specs):
            jtype = DEPLOY if i < deploys else PLAN
            key = f"pgkill-{i}-{time.time_ns()}"
            keys.append(key)
            try:
                job = await p.queue(spec.id, jtype, key=key, attempts=50)
            except grpc.aio.AioRpcError as exc:
                internal += exc.code() == grpc.StatusCode.INTERNAL
                raise
            jobs[job.id] = (spec.project_name, jtype)
        # Keep killing while the runners claim, heartbeat and complete.
        done = await p.wait_terminal(list(jobs), within=120 + 20 * len(jobs))
    finally:
        await killer.stop()
    assert killer.terminated > 0, "no connection was ever killed: the scenario did not happen"

    listed = await verify_outcomes(p, jobs, done, prefix)
    summary = {
        "jobs": len(jobs),
        "deploys": deploys,
        "plans": plans,
        "kill_every_s": every,
        "kill_rounds": killer.rounds,
        "backends_terminated": killer.terminated,
        "internal": internal,
        "lost": 0,
        "duplicates": len(listed.jobs) - len(jobs),
        "attempts": sorted(j.attempt for j in done.values()),
    }
    print("RELIABILITY postgres-kill", json.dumps(summary))
    return summary


def _admin_dsn() -> str:
    import os

    return os.environ.get("ALETHIA_TEST_POSTGRES_URL", ADMIN_DSN_DEFAULT).replace("+asyncpg", "")


async def test_postgres_connections_killed_during_claims_and_completions(
    make_pipeline: Any, pg_pair: tuple[str, str]
) -> None:
    await postgres_kills(make_pipeline, pg_pair, _admin_dsn(), deploys=2, plans=2, every=0.3)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_postgres_connections_killed_heavily(make_pipeline: Any, pg_pair: tuple[str, str]) -> None:
    await postgres_kills(make_pipeline, pg_pair, _admin_dsn(), deploys=6, plans=6, every=0.1)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_postgres_server_crashed_and_restarted(make_pipeline: Any) -> None:
    """A private Postgres server holding both services' databases crashes (immediate stop) twice mid-run."""
    pg = await asyncio.to_thread(PrivatePostgres().start)
    try:
        dbs = [await asyncio.to_thread(pg.create_database, n) for n in ("specs", "jobs")]
        p: Pipeline = await make_pipeline(specs_db=dbs[0], snapshot_db=dbs[1], lease_seconds=15)
        prefix = f"pgrestart{uuid.uuid4().hex[:4]}-"
        specs = [await p.create_spec(f"{prefix}{i}") for i in range(6)]
        for _ in range(2):
            await p.start_runner(runner_concurrency=2)
        jobs: dict[str, tuple[str, int]] = {}
        codes_while_down: list[str] = []
        for i, spec in enumerate(specs[:3]):
            job = await p.queue(spec.id, DEPLOY if i % 2 == 0 else PLAN)
            jobs[job.id] = (spec.project_name, job.type)
        for crash in range(2):
            await p.wait(next(iter(jobs)), {RUNNING, SUCCEEDED}, within=60)
            await asyncio.to_thread(pg.crash)
            # While it is down: callers get UNAVAILABLE (retry), never INTERNAL.
            for _ in range(3):
                try:
                    await p.jobs.ListJobs(snapshot_pb2.ListJobsRequest(page_size=1), timeout=10)
                    codes_while_down.append("OK")
                except grpc.aio.AioRpcError as exc:
                    codes_while_down.append(exc.code().name)
                await asyncio.sleep(0.5)
            await asyncio.to_thread(pg.start)
            spec = specs[3 + crash]
            job = await p.queue(spec.id, DEPLOY if crash == 0 else PLAN, attempts=100)
            jobs[job.id] = (spec.project_name, job.type)
        done = await p.wait_terminal(list(jobs), within=240)
        await verify_outcomes(p, jobs, done, prefix)
        assert "INTERNAL" not in codes_while_down and "UNAVAILABLE" in codes_while_down, codes_while_down
        summary = {"server_crashes": 2, "jobs": len(jobs), "lost": 0, "codes_while_down": dict(Counter(codes_while_down)),
                   "attempts": sorted(j.attempt for j in done.values())}  # fmt: skip
        print("RELIABILITY postgres-restart", json.dumps(summary))
    finally:
        await asyncio.to_thread(pg.stop)
