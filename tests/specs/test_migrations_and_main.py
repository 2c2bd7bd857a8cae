"""The Alembic history matches the models on both databases; ``python -m services.specs`` runs and stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import inspect

from alethia.database import create_engine
from alethia.rpc.client import connect
from alethia.stack.infra import free_port
from services.specs.app import VERSION_TABLE, migrate
from services.specs.models import Base

ROOT = Path(__file__).resolve().parents[2]


async def test_migrations_match_the_models(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)  # idempotent
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
                )
                tables = set(inspect(sync_conn).get_table_names())
                return compare_metadata(ctx, Base.metadata), tables

            changes, tables = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == []
    assert {t.name for t in Base.metadata.sorted_tables} | {VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # the service's own version table only


async def test_main_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ALETHIA_SPECS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}",
        "ALETHIA_SPECS_LISTEN": f"127.0.0.1:{port}",
        "PYTHONPATH": str(ROOT),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.specs", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        status = None
        async with connect(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(100):
                try:
                    status = (await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)).status
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        assert status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        assert proc.returncode == 0, output.decode()
        assert b"spec service stopped" in output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
