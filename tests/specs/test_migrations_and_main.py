"""The Alembic history matches the models on both databases; ``python -m services.specs`` runs and stops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import inspect, select, text

from alethia.database import create_engine, run_migrations
from alethia.rpc.client import connect
from alethia.stack.infra import free_port
from services.specs.app import MIGRATIONS, VERSION_TABLE, migrate
from services.specs.models import COMPONENT_TABLES, Base

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


async def test_upgrade_from_0001_keeps_every_row_and_fills_the_new_columns(database_url: str) -> None:
    """Existing Specs survive the whole history: 0002's names are filled, 0003's retention moved.

    On SQLite, 0002 rebuilds ``specs`` (batch mode); with foreign keys on, that DROP once
    deleted every component row through ON DELETE CASCADE. The component counts below fail then.
    """
    await asyncio.to_thread(run_migrations, database_url, MIGRATIONS, VERSION_TABLE, "0001")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO cloud_identities (id, name, provider, account_id, credentials_ref, create_time)"
                    " VALUES ('i1', 'team', 'aws', '123456789012', 'env:X', :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO specs (id, zone_id, project_name, environment, region, cloud_identity_id,"
                    " terraform_version, revision, create_time, update_time)"
                    " VALUES ('s1', 'z', 'p', 'e', 'us-east-1', 'i1', '', 1, :now, :now)"
                ),
                {"now": now},
            )
            for name, config in (("kept", {"backup_retention_days": 3, "multi_az": True}), ("plain", {})):
                await conn.execute(
                    text(
                        "INSERT INTO spec_databases (spec_id, name, engine, engine_version, instance_class,"
                        " storage_gb, scaling_min_capacity, scaling_max_capacity, provider_config)"
                        " VALUES ('s1', :name, 'postgres', '16', 'db.t4g.small', 20, 0, 0, :config)"
                    ),
                    {"name": name, "config": json.dumps(config)},
                )
            await conn.execute(
                text(
                    "INSERT INTO spec_caches (spec_id, name, node_type, cluster_size, provider_config)"
                    " VALUES ('s1', 'c', 'cache.t4g.small', 1, '{}')"
                )
            )
        await migrate(database_url)
        async with engine.connect() as conn:
            dbs = COMPONENT_TABLES["databases"].c
            rows = (
                await conn.execute(
                    select(dbs.name, dbs.backup_retention_days, dbs.provider_config).order_by(dbs.name)
                )
            ).all()
            caches = (await conn.execute(text("SELECT count(*) FROM spec_caches"))).scalar()
            names = (
                await conn.execute(text("SELECT workspace, cloud_account, resource_prefix FROM specs"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("kept", 3, {"multi_az": True}), ("plain", 7, {})]
    assert caches == 1
    assert [tuple(r) for r in names] == [("z/p-e-us-east-1", "aws:123456789012", "p-e")]
