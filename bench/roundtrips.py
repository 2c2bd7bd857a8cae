"""Database round trips per operation of the service path: ``python -m bench.roundtrips [--sqlite]``.

Counts what each operation sends to the database: every statement (an ``executemany`` is
one; SQLAlchemy's engine events, plus what asyncpg is asked for directly), ``BEGIN``,
``COMMIT``/``ROLLBACK`` (as asyncpg sends them), and the one-``;`` ping of a pooled
connection's checkout when there is one (``alethia.database`` skips it within 0.5 s of the
connection's last use, as here, where operations follow each other). On Postgres each of
these is one round trip (statements are prepared once per connection, then cached), so the
total is the number of round trips an operation waits for; no pg_stat_statements needed.
On SQLite the total is the number of calls into aiosqlite's connection thread (``hops``,
see :func:`total`).

Operations: CreateSpec, GetSpec (the read BuildSnapshot makes through the spec service),
QueueJob's write, ClaimJob, CompleteJob, and CompleteAndClaimJob (``complete_and_claim``). The domain objects are called directly (``SpecCatalog``, ``JobQueue``) on
a fresh database (Postgres at ``--postgres``, default the test server, or a SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


# Driver connection (id) -> the Counting of its engine.
BY_DRIVER: dict[int, Counting] = {}


def _driver_counter(driver: Any) -> Counting:
    """The Counting of the engine that owns ``driver`` (a throwaway one while it connects, or
    for a connection of no engine: the admin connection)."""
    return BY_DRIVER.get(id(driver)) or _UNCOUNTED


class Counting:
    """Round trips seen on one engine since the last :meth:`take`."""

    def __init__(self, engine: AsyncEngine, transactions: bool = True) -> None:
        """``transactions=False``: BEGIN/COMMIT/ROLLBACK are counted where they are sent
        (:meth:`raw`), not from SQLAlchemy's events (a write on the driver connection has none)."""
        self.counts: Counter[str] = Counter()
        sync = engine.sync_engine

        @event.listens_for(sync, "connect")
        def _connect(dbapi_conn: Any, record: Any) -> None:
            # Statements sent on the driver connection itself are told apart by connection.
            BY_DRIVER[id(dbapi_conn.driver_connection)] = self

        @event.listens_for(sync, "before_cursor_execute")
        def _stmt(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            self.counts["statements"] += 1

        if transactions:

            @event.listens_for(sync, "begin")
            def _begin(conn: Any) -> None:
                self.counts["begin"] += 1

            @event.listens_for(sync, "commit")
            def _commit(conn: Any) -> None:
                self.counts["commit"] += 1

            @event.listens_for(sync, "rollback")
            def _rollback(conn: Any) -> None:
                self.counts["rollback"] += 1

        @event.listens_for(sync, "checkout")
        def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            # Registered after the ping listener, which notes whether it pinged (a fresh
            # connection, or one checked in within the bypass window, is not pinged).
            self.counts["checkout"] += 1
            self.counts["ping"] += int(record.info.get("pinged", False))

    def raw(self, query: str = "") -> None:
        """A statement sent on the driver connection itself (SQLAlchemy's events miss it)."""
        word = query.lstrip().split(None, 1)[0].upper().rstrip(";") if query.strip() else ""
        kind = {"BEGIN": "begin", "COMMIT": "commit", "ROLLBACK": "rollback"}.get(word, "statements")
        self.counts[kind] += 1

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts.clear()
        return out


class _Uncounted:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def raw(self, query: str = "") -> None:
        return None


_UNCOUNTED: Any = _Uncounted()


def total(counts: dict[str, int], pg: bool) -> int:
    """Round trips: statements, BEGIN, the end, and the pings (Postgres).

    On SQLite a round trip is a call into aiosqlite's connection thread (``hops``): each
    wakes that thread and then the event loop; a statement through SQLAlchemy takes three
    or four, a write run as one function in that thread (CreateSpec) one, however many
    statements it runs there (``statements`` counts only those SQLAlchemy sends).
    """
    if not pg:
        return counts.get("hops", 0)
    pings = counts.get("ping", 0)
    return (
        counts.get("statements", 0)
        + counts.get("begin", 0)
        + counts.get("commit", 0)
        + counts.get("rollback", 0)
        + pings
    )


async def measure(url: str) -> dict[str, Any]:
    from alethia.database import create_engine, run_migrations
    from bench.specs import full_spec, spec_with_components
    from services.snapshot import store as snapshot_store
    from services.snapshot.app import MIGRATIONS as SNAPSHOT_MIGRATIONS
    from services.snapshot.git_tokens import GitTokenSource
    from services.snapshot.job_queue import JobQueue, JobResult
    from services.specs.app import MIGRATIONS as SPECS_MIGRATIONS
    from services.specs.app import VERSION_TABLE as SPECS_VERSION
    from services.specs.catalog import SpecCatalog
    from services.specs.server import spec_message

    pg = url.startswith("postgres")
    await asyncio.to_thread(run_migrations, url, SPECS_MIGRATIONS, SPECS_VERSION)
    await asyncio.to_thread(run_migrations, url, SNAPSHOT_MIGRATIONS, snapshot_store.VERSION_TABLE)
    specs_engine = create_engine(url)
    jobs_engine = create_engine(url)
    # On Postgres, BEGIN/COMMIT/ROLLBACK are counted as asyncpg sends them (below): CreateSpec
    # runs its transaction on the driver connection (services/specs/store.py), which
    # SQLAlchemy's events do not see, and SQLAlchemy's own go through the same calls.
    specs_count, jobs_count = Counting(specs_engine, not pg), Counting(jobs_engine, not pg)
    if pg:
        import asyncpg

        plain_execute, plain_fetch = asyncpg.Connection.execute, asyncpg.Connection.fetch

        async def counted_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            _driver_counter(self).raw(query)
            return await plain_execute(self, query, *args, **kwargs)

        async def counted_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            _driver_counter(self).raw(query)
            return await plain_fetch(self, query, *args, **kwargs)

        plain_fetchrow = asyncpg.Connection.fetchrow

        async def counted_fetchrow(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if query != ";":  # the checkout's ping: counted as ``checkout``
                _driver_counter(self).raw(query)
            return await plain_fetchrow(self, query, *args, **kwargs)

        asyncpg.Connection.execute = counted_execute  # type: ignore[method-assign]
        asyncpg.Connection.fetch = counted_fetch  # type: ignore[method-assign]
        asyncpg.Connection.fetchrow = counted_fetchrow  # type: ignore[method-assign]
    else:
        import aiosqlite

        plain_call = aiosqlite.Connection._execute

        async def counted_call(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            _driver_counter(self).counts["hops"] += 1
            return await plain_call(self, fn, *args, **kwargs)

        aiosqlite.Connection._execute = counted_call  # type: ignore[method-assign]
    catalog = SpecCatalog(specs_engine, infrastructure=None, allowed_git_hosts=None)  # type: ignore[arg-type]

    class Reader:
        async def get_spec(self, spec_id: str) -> Any:
            return spec_message(await catalog.get_spec(spec_id))

        async def close(self) -> None:
            return None

    queue = JobQueue(jobs_engine_sessions(jobs_engine), Reader(), GitTokenSource("", "t", "git.example.com"))
    out: dict[str, Any] = {}

    async def op(name: str, counting: Counting, fn: Callable[[], Awaitable[Any]], reps: int = 3) -> Any:
        result = None
        for _ in range(2):  # warm: prepared statements, pool
            result = await fn()
        counting.take()
        for _ in range(reps):
            result = await fn()
        counts = {k: v // reps for k, v in counting.take().items()}
        out[name] = {"round_trips": total(counts, pg), **counts}
        return result

    try:
        identity = await catalog.create_identity(
            {"name": f"rt-{uuid.uuid4().hex[:6]}", "provider": "aws", "account_id": "123456789012",
             "credentials_ref": "env:AWS_PROFILE"}
        )  # fmt: skip
        await op(
            "CreateSpec (full example)",
            specs_count,
            lambda: catalog.create_spec(full_spec(f"rt{uuid.uuid4().hex[:8]}", identity["id"])),
        )
        big = await catalog.create_spec(spec_with_components(f"rt{uuid.uuid4().hex[:8]}", identity["id"], 50))
        await op("GetSpec (50 components)", specs_count, lambda: catalog.get_spec(big["id"]))

        spec_ids = [
            (await catalog.create_spec(full_spec(f"rt{uuid.uuid4().hex[:8]}", identity["id"])))["id"]
            for _ in range(16)
        ]
        ids = iter(spec_ids)
        await op("QueueJob (PLAN)", jobs_count, lambda: queue.queue_job(next(ids), "PLAN"), reps=3)
        for spec_id in ids:  # the rest queued too (not counted): work for the claims below
            await queue.queue_job(spec_id, "PLAN")
        claims: list[Any] = []

        async def claim() -> Any:
            c = await queue.claim_job("rt-runner", 60)
            assert c is not None
            claims.append(c)
            return c

        await op("ClaimJob", jobs_count, claim)
        done = iter(list(claims))

        async def complete() -> Any:
            c = next(done)
            return await queue.complete_job(c.job["id"], c.lease_token, JobResult(status="SUCCEEDED"))

        await op("CompleteJob", jobs_count, complete)
        if hasattr(queue, "complete_and_claim"):  # absent before the combined call existed
            current = [await claim()]

            async def both() -> Any:
                c = current[0]
                _, nxt = await queue.complete_and_claim(
                    c.job["id"], c.lease_token, JobResult(status="SUCCEEDED"), "rt-runner", 60
                )
                assert nxt is not None
                current[0] = nxt
                return nxt

            await op("CompleteAndClaimJob", jobs_count, both, reps=2)
        specs_count.take()
        jobs_count.take()
    finally:
        await specs_engine.dispose()
        await jobs_engine.dispose()
    return out


def jobs_engine_sessions(engine: AsyncEngine) -> Any:
    from alethia.database import session_factory

    return session_factory(engine)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            return await measure(f"sqlite:///{Path(tmp) / 'rt.db'}")
    import asyncpg

    name = f"alethia_rt_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            return await measure(args.postgres.rsplit("/", 1)[0] + "/" + name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.roundtrips")
    p.add_argument("--sqlite", action="store_true", help="a SQLite file instead of Postgres")
    p.add_argument("--postgres", default=PG_ADMIN, help="admin URL of the Postgres server")
    args = p.parse_args(argv)
    out = asyncio.run(main_async(args))
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
