"""Benchmarks of the database-bound stages against hand-written SQL on the same database.

- ``create_spec_throughput``: CreateSpec over gRPC vs raw inserts of the same rows in one
  transaction (asyncpg on Postgres, sqlite3 on the embedded stack).
- ``snapshot_latency``: BuildSnapshot of a 50-component Spec vs one SQL query that builds
  the same JSON (``json_agg`` / ``json_group_array``).
- ``claim_throughput``: ClaimJob, then CompleteAndClaimJob per job (as the runner does),
  with two claimers vs a raw
  ``UPDATE … (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING`` + ``UPDATE`` loop on two
  connections (on SQLite: ``BEGIN IMMEDIATE`` and the same statements without the lock clause).

Each also runs against the floor (``bench/floor.py``: the same SQL behind bare grpc.aio
handlers in a process of its own) when given one, and reports ``floor`` and
``ratio_to_floor`` beside the ratio to raw SQL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alethia import naming
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2
from bench.harness import alternate_async, alternate_measured
from bench.specs import full_spec, spec_with_components
from services.specs.store import component_rows
from tests.harness import Pipeline

if TYPE_CHECKING:
    from bench.floor import FloorProcess

# --------------------------------------------------------------------------- connections


class RawDB:
    """One raw connection to a database (asyncpg, or sqlite3 run in a thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = url.startswith("postgresql")
        self.conn: Any = None

    async def open(self) -> RawDB:
        if self.pg:
            import asyncpg

            self.conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://"))
        else:
            path = self.url.split(":///", 1)[1]
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.execute("PRAGMA foreign_keys=ON")
        return self

    async def close(self) -> None:
        if self.conn is not None:
            if self.pg:
                await self.conn.close()
            else:
                self.conn.close()

    def sql(self, text: str) -> str:
        """``$1``-style placeholders for asyncpg, ``?`` for sqlite3."""
        if self.pg:
            return text
        import re

        return re.sub(r"\$\d+", "?", text)


# --------------------------------------------------------------------------- create_spec


def _spec_rows(spec: dict[str, Any], spec_id: str, pg: bool) -> list[tuple[str, list[str], list[Any]]]:
    """(table, columns, values) of every row CreateSpec writes for ``spec`` (same layout)."""
    now = datetime.now(UTC)
    stamp: Any = now if pg else now.replace(tzinfo=None).isoformat(" ")
    head = {
        "id": spec_id,
        "zone_id": spec["zone_id"],
        "project_name": spec["project_name"],
        "environment": spec["environment"],
        "region": spec["region"],
        # The names the service derives and holds unique (alethia.naming).
        "workspace": naming.workspace_key(
            spec["zone_id"], spec["project_name"], spec["environment"], spec["region"]
        ),
        "cloud_account": naming.cloud_account("aws", "bench"),
        "resource_prefix": naming.resource_prefix(spec["project_name"], spec["environment"]),
        "cloud_identity_id": spec["cloud_identity_id"],
        "terraform_version": spec.get("terraform_version", ""),
        "revision": 1,
        "create_time": stamp,
        "update_time": stamp,
    }
    out: list[tuple[str, list[str], list[Any]]] = [("specs", list(head), list(head.values()))]
    for table, rows in component_rows(spec_id, spec):
        for row in rows:
            cols = list(row)
            vals = [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()]
            out.append((table.name, cols, vals))
    return out


async def raw_create(db: RawDB, spec: dict[str, Any]) -> str:
    """Insert the rows CreateSpec writes for ``spec`` in one transaction; returns the new id."""
    spec_id = str(uuid.uuid4())
    rows = _spec_rows(spec, spec_id, db.pg)
    if db.pg:
        async with db.conn.transaction():
            for table, cols, vals in rows:
                ph = ", ".join(f"${i + 1}" for i in range(len(cols)))
                names = ", ".join(f'"{c}"' for c in cols)
                await db.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({ph})", *vals)
        return spec_id

    def write() -> None:
        cur = db.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for table, cols, vals in rows:
                ph = ", ".join("?" for _ in cols)
                cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({ph})", vals)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    await asyncio.to_thread(write)
    return spec_id


async def create_spec_throughput(
    st: Pipeline, reps: int, batch: int, floor: FloorProcess | None = None
) -> dict[str, Any]:
    """CreateSpec/s (full Spec, every table) vs raw inserts of the same rows, one transaction each."""
    db = await RawDB(st.specs_db).open()
    try:

        def doc() -> dict[str, Any]:
            return full_spec(f"cs-{uuid.uuid4().hex[:10]}", st.identity_id)

        async def system() -> None:
            for _ in range(batch):
                await st.create_spec(doc())

        async def baseline() -> None:
            for _ in range(batch):
                await raw_create(db, doc())

        async def on_floor() -> None:
            assert floor is not None
            for _ in range(batch):
                await floor.specs.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(doc())))

        await system()  # warm-up: connections, statement caches
        await baseline()
        if floor is not None:
            await on_floor()
        samples = await alternate_async(system, baseline, reps, on_floor if floor else None)
    finally:
        await db.close()
    res = samples.result("specs/s", higher_is_better=True, per=batch)
    res["batch"] = batch
    return res


# --------------------------------------------------------------------------- snapshot


_LISTS: tuple[tuple[str, str, list[tuple[str, str]], str], ...] = (
    # (snapshot key, table, [(json key, column expression)], order by)
    ("repositories", "spec_repositories", [("url", "url"), ("branch", "branch"), ("path", "path")],
     "url, branch, path"),
    ("caches", "spec_caches", [("name", "name"), ("node_type", "node_type"),
     ("cluster_size", "cluster_size"), ("provider_config", "@provider_config")], "name"),
    ("queues", "spec_queues", [("name", "name"), ("config", "@config")], "name"),
    ("topics", "spec_topics", [("name", "name"), ("subscriptions", "@subscriptions")], "name"),
    ("nosql_tables", "spec_nosql_tables", [("name", "name"), ("partition_key", "partition_key"),
     ("sort_key", "sort_key"), ("provider_config", "@provider_config")], "name"),
    ("storage_buckets", "spec_storage_buckets", [("name", "name"), ("versioning", "versioning"),
     ("provider_config", "@provider_config")], "name"),
    ("secrets", "spec_secrets", [("name", "name"), ("metadata", "@metadata")], "name"),
)  # fmt: skip


def snapshot_sql(pg: bool) -> str:
    """One query that builds the snapshot JSON of a Spec from its tables.

    A column written ``@col`` holds JSON already (JSONB on Postgres, text on SQLite).
    """
    obj = "json_build_object" if pg else "json_object"

    def col(alias: str, expr: str) -> str:
        if expr.startswith("@"):
            return f"{alias}.{expr[1:]}" if pg else f"json({alias}.{expr[1:]})"
        return f"{alias}.{expr}"

    def fields(alias: str, pairs: list[tuple[str, str]]) -> str:
        return ", ".join(f"'{k}', {col(alias, v)}" for k, v in pairs)

    def agg(table: str, pairs: list[tuple[str, str]], order: str) -> str:
        if pg:
            return (
                f"(SELECT coalesce(json_agg({obj}({fields('t', pairs)}) ORDER BY {order}), '[]'::json) "
                f"FROM {table} t WHERE t.spec_id = s.id)"
            )
        return (
            f"(SELECT json_group_array(json(x)) FROM (SELECT {obj}({fields('t', pairs)}) AS x "
            f"FROM {table} t WHERE t.spec_id = s.id ORDER BY {order}))"
        )

    databases = [
        ("name", "name"), ("engine", "engine"), ("engine_version", "engine_version"),
        ("instance_class", "instance_class"), ("storage_gb", "storage_gb"),
    ]  # fmt: skip
    db_fields = fields("t", databases) + (
        f", 'scaling', {obj}('min_capacity', t.scaling_min_capacity, 'max_capacity', t.scaling_max_capacity)"
        f", 'provider_config', {col('t', '@provider_config')}"
    )
    if pg:
        db_agg = (
            f"(SELECT coalesce(json_agg({obj}({db_fields}) ORDER BY name), '[]'::json) "
            "FROM spec_databases t WHERE t.spec_id = s.id)"
        )
    else:
        db_agg = (
            f"(SELECT json_group_array(json(x)) FROM (SELECT {obj}({db_fields}) AS x "
            "FROM spec_databases t WHERE t.spec_id = s.id ORDER BY name))"
        )
    one = {
        "network": ("spec_network", [("provision_network", "provision_network"), ("cidr_block", "cidr_block"),
                    ("network_id", "network_id"), ("provider_config", "@provider_config")]),
        "cluster": ("spec_cluster", [("cluster_version", "cluster_version"),
                    ("instance_types", "@instance_types"), ("node_min_size", "node_min_size"),
                    ("node_max_size", "node_max_size"), ("node_desired_size", "node_desired_size"),
                    ("cluster_admins", "@cluster_admins"), ("provider_config", "@provider_config")]),
        "dns": ("spec_dns", [("enabled", "enabled"), ("zone_id", "zone_id"), ("domain_name", "domain_name"),
                ("provider_config", "@provider_config")]),
    }  # fmt: skip
    parts = [
        "'spec_id', s.id", "'zone_id', s.zone_id", "'project_name', s.project_name",
        "'environment', s.environment", "'region', s.region", "'cloud_identity_id', s.cloud_identity_id",
        "'cloud_account_id', ci.account_id", "'terraform_version', s.terraform_version",
        "'provider', ci.provider",
    ]  # fmt: skip
    for key, (table, pairs) in one.items():
        parts.append(f"'{key}', (SELECT {obj}({fields('t', pairs)}) FROM {table} t WHERE t.spec_id = s.id)")
    parts.append(f"'databases', {db_agg}")
    for key, table, pairs, order in _LISTS:
        parts.append(f"'{key}', {agg(table, pairs, order)}")
    parts.append("'git_access_token', ''")
    return (
        f"SELECT {obj}({', '.join(parts)}) FROM specs s "
        "JOIN cloud_identities ci ON ci.id = s.cloud_identity_id WHERE s.id = $1"
    )


async def snapshot_latency(
    st: Pipeline, reps: int, components: int = 50, floor: FloorProcess | None = None
) -> dict[str, Any]:
    """BuildSnapshot of a Spec with ``components`` components vs the one-query JSON build."""
    spec = await st.create_spec(
        spec_with_components(f"snap-{uuid.uuid4().hex[:6]}", st.identity_id, components)
    )
    db = await RawDB(st.specs_db).open()
    sql = db.sql(snapshot_sql(db.pg))
    try:

        async def system() -> None:
            await st.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))

        async def baseline() -> None:
            if db.pg:
                text = await db.conn.fetchval(sql, spec.id)
            else:
                text = await asyncio.to_thread(lambda: db.conn.execute(sql, (spec.id,)).fetchone()[0])
            if not text:
                raise RuntimeError("the snapshot query returned nothing")

        async def on_floor() -> None:
            assert floor is not None
            resp = await floor.snapshot.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
            if not resp.snapshot_json:
                raise RuntimeError("the floor's snapshot query returned nothing")

        for _ in range(3):  # warm-up
            await system()
            await baseline()
            if floor is not None:
                await on_floor()
        samples = await alternate_async(system, baseline, reps, on_floor if floor else None)
    finally:
        await db.close()
    res = samples.result("s")
    res["components"] = components
    for k in ("value", "baseline", "p95", "baseline_p95", "floor", "floor_p95"):
        if k in res:
            res[k] = res[k] * 1000
    res["unit"] = "ms"
    return res


# --------------------------------------------------------------------------- claim


_PG_CLAIM = (
    "UPDATE bench_claim SET status = 'running', runner = $1, attempt = attempt + 1 "
    "WHERE id = (SELECT id FROM bench_claim WHERE status = 'queued' ORDER BY id LIMIT 1 "
    "FOR UPDATE SKIP LOCKED) RETURNING id"
)
_SQLITE_CLAIM = (
    "UPDATE bench_claim SET status = 'running', runner = ?, attempt = attempt + 1 "
    "WHERE id = (SELECT id FROM bench_claim WHERE status = 'queued' ORDER BY id LIMIT 1) RETURNING id"
)


async def _raw_claim_setup(url: str, jobs: int) -> None:
    db = await RawDB(url).open()
    try:
        if db.pg:
            await db.conn.execute(
                "CREATE TABLE IF NOT EXISTS bench_claim (id bigserial PRIMARY KEY, status text NOT NULL, "
                "runner text, attempt int NOT NULL DEFAULT 0, payload jsonb)"
            )
            await db.conn.execute("TRUNCATE bench_claim")
            await db.conn.executemany(
                "INSERT INTO bench_claim (status, payload) VALUES ('queued', $1)",
                [(json.dumps({"n": i}),) for i in range(jobs)],
            )
        else:
            c = db.conn
            c.execute(
                "CREATE TABLE IF NOT EXISTS bench_claim (id INTEGER PRIMARY KEY, status TEXT NOT NULL, "
                "runner TEXT, attempt INTEGER NOT NULL DEFAULT 0, payload TEXT)"
            )
            c.execute("DELETE FROM bench_claim")
            c.executemany(
                "INSERT INTO bench_claim (status, payload) VALUES ('queued', ?)",
                [(json.dumps({"n": i}),) for i in range(jobs)],
            )
    finally:
        await db.close()


async def raw_claim_once(db: RawDB, name: str) -> int | None:
    """One raw claim (its own transaction); the claimed id, or None when the queue is empty."""
    if db.pg:
        job_id = await db.conn.fetchval(_PG_CLAIM, name)
        return None if job_id is None else int(job_id)

    def claim() -> int | None:
        c = db.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute(_SQLITE_CLAIM, (name,)).fetchone()
        finally:
            c.execute("COMMIT")
        return None if row is None else int(row[0])

    return await asyncio.to_thread(claim)


async def raw_complete_once(db: RawDB, job_id: int) -> None:
    """The raw completing ``UPDATE`` (its own transaction)."""
    sql = "UPDATE bench_claim SET status = 'succeeded' WHERE id = $1 AND status = 'running'"
    if db.pg:
        await db.conn.execute(sql, job_id)
        return

    def complete() -> None:
        c = db.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(db.sql(sql), (job_id,))
        finally:
            c.execute("COMMIT")

    await asyncio.to_thread(complete)


async def _raw_claimer(db: RawDB, name: str) -> int:
    done = 0
    if db.pg:
        while True:
            # Each statement commits on its own (autocommit): the claim is one atomic UPDATE.
            job_id = await db.conn.fetchval(_PG_CLAIM, name)
            if job_id is None:
                return done
            await db.conn.execute(
                "UPDATE bench_claim SET status = 'succeeded' WHERE id = $1 AND status = 'running'", job_id
            )
            done += 1

    def loop() -> int:
        n = 0
        c = db.conn
        while True:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(_SQLITE_CLAIM, (name,)).fetchone()
            c.execute("COMMIT")
            if row is None:
                return n
            c.execute("BEGIN IMMEDIATE")
            c.execute("UPDATE bench_claim SET status = 'succeeded' WHERE id = ? AND status = 'running'", row)
            c.execute("COMMIT")
            n += 1

    return await asyncio.to_thread(loop)


async def _claimer(runner_api: Any, name: str) -> int:
    """Claims and completes until the queue is empty, the way the runner does: one
    ``CompleteAndClaimJob`` per job after the first ``ClaimJob``. ``runner_api`` is the
    RunnerService stub of the stack or of the floor: both sides make the same calls."""
    done = 0
    claim = snapshot_pb2.ClaimJobRequest(runner_id=name, lease_seconds=60)
    resp = await runner_api.ClaimJob(claim)
    while resp.claimed:
        both = await runner_api.CompleteAndClaimJob(
            snapshot_pb2.CompleteAndClaimJobRequest(
                lease=resp.lease, result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED), next=claim
            )
        )
        done += 1
        resp = both.next
    return done


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def claim_throughput(
    st: Pipeline, reps: int, jobs: int, claimers: int = 2, floor: FloorProcess | None = None
) -> dict[str, Any]:
    """Jobs claimed + completed per second through RunnerService with two claimers.

    The stack's runner must be stopped (it would claim the jobs too). Each repetition
    queues one PLAN per workspace (untimed), then times the claimers until the queue is empty.
    """
    spec_ids = [
        (await st.create_spec(full_spec(f"claim{i}-{uuid.uuid4().hex[:6]}", st.identity_id))).id
        for i in range(jobs)
    ]
    url = st.snapshot_db

    async def system() -> float:
        await asyncio.gather(*(st.queue(s, events_pb2.PLAN) for s in spec_ids))

        async def run() -> None:
            counts = await asyncio.gather(
                *(_claimer(st.runner_api, f"bench-claimer-{i}") for i in range(claimers))
            )
            if sum(counts) != jobs:
                raise RuntimeError(f"claimed {sum(counts)} of {jobs} jobs")

        return await _timed(run)

    async def baseline() -> float:
        await _raw_claim_setup(url, jobs)
        dbs = [await RawDB(url).open() for _ in range(claimers)]

        async def run() -> None:
            counts = await asyncio.gather(*(_raw_claimer(db, f"raw-{i}") for i, db in enumerate(dbs)))
            if sum(counts) != jobs:
                raise RuntimeError(f"raw claimed {sum(counts)} of {jobs} jobs")

        try:
            return await _timed(run)
        finally:
            for db in dbs:
                await db.close()

    async def on_floor() -> float:
        assert floor is not None
        await _raw_claim_setup(url, jobs)

        async def run() -> None:
            counts = await asyncio.gather(*(_claimer(floor.runner, f"floor-{i}") for i in range(claimers)))
            if sum(counts) != jobs:
                raise RuntimeError(f"the floor claimed {sum(counts)} of {jobs} jobs")

        return await _timed(run)

    try:
        samples = await alternate_measured(system, baseline, reps, on_floor if floor else None)
    finally:
        db = await RawDB(url).open()
        try:
            if db.pg:
                await db.conn.execute("DROP TABLE IF EXISTS bench_claim")
            else:
                db.conn.execute("DROP TABLE IF EXISTS bench_claim")
        finally:
            await db.close()
    res = samples.result("jobs/s", higher_is_better=True, per=jobs)
    res["jobs"] = jobs
    res["claimers"] = claimers
    return res
