"""The Alembic history creates exactly the tables the store declares (no drift), on both dialects."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from alethia.database import create_engine, run_migrations
from services.snapshot.app import MIGRATIONS
from services.snapshot.store import VERSION_TABLE, metadata


async def test_migrations_match_the_store_and_are_idempotent(database_url: str) -> None:
    await asyncio.to_thread(run_migrations, database_url, MIGRATIONS, VERSION_TABLE)
    await asyncio.to_thread(run_migrations, database_url, MIGRATIONS, VERSION_TABLE)  # again: a no-op
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(sync_conn, opts={"version_table": VERSION_TABLE})
                return compare_metadata(ctx, metadata), set(inspect(sync_conn).get_table_names())

            changes, tables = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert {"provision_jobs", "job_outbox", VERSION_TABLE} <= tables
    assert changes == []  # tables, columns, nullability and indexes all as declared
