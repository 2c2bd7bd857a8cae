"""Alembic environment of the spec service: async engines on both dialects, own version table."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context

from alethia.database import create_engine
from services.specs.models import Base

config = context.config
VERSION_TABLE = config.attributes.get("version_table", "alembic_version_specs")


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    # run_migrations() is called from a worker thread, so a fresh event loop is fine here.
    asyncio.run(_run_async())
