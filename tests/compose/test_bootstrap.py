"""The compose file's one-shot jobs: migrations and buckets, against real Postgres and S3."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import boto3

from alethia.database import run_migrations
from alethia.stack import bootstrap
from services.snapshot import app as snapshot_app
from services.snapshot import store as snapshot_store
from services.specs import app as specs_app
from tests.conftest import PostgresFactory
from tests.fixtures.s3 import TEST_S3_ADMIN


async def _tables(dsn: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


def test_migrate_job_is_what_the_services_run_at_start(postgres_factory: PostgresFactory) -> None:
    url = postgres_factory.create("alethia_bootstrap")
    env = {"ALETHIA_SPECS_DATABASE_URL": url, "ALETHIA_SNAPSHOT_DATABASE_URL": url}
    assert bootstrap.migrate(env) == ["specs", "snapshot"]
    tables = asyncio.run(_tables(url))
    assert {
        "specs",
        "cloud_identities",
        "provision_jobs",
        "alembic_version_specs",
        "alembic_version_snapshot",
    } <= tables
    # The services' own start-up migration then finds nothing to do (same history, same version table).
    run_migrations(url, specs_app.MIGRATIONS, specs_app.VERSION_TABLE)
    run_migrations(url, snapshot_app.MIGRATIONS, snapshot_store.VERSION_TABLE)
    assert asyncio.run(_tables(url)) == tables
    assert bootstrap.migrate({}) == []


def test_buckets_job_creates_missing_buckets_idempotently(s3_server) -> None:  # type: ignore[no-untyped-def]
    state, artifacts = f"state-{uuid.uuid4().hex[:8]}", f"artifacts-{uuid.uuid4().hex[:8]}"
    env = {
        "ALETHIA_S3_ENDPOINT": s3_server.endpoint,
        "ALETHIA_S3_ACCESS_KEY": TEST_S3_ADMIN.access_key,
        "ALETHIA_S3_SECRET_KEY": TEST_S3_ADMIN.secret_key,
        "ALETHIA_S3_STATE_BUCKET": state,
        "ALETHIA_S3_ARTIFACT_BUCKET": artifacts,
    }
    assert bootstrap.create_buckets(env) == [state, artifacts]
    assert bootstrap.create_buckets(env) == [state, artifacts]  # again: no error
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=TEST_S3_ADMIN.access_key,
        aws_secret_access_key=TEST_S3_ADMIN.secret_key,
        region_name="us-east-1",
    )
    for name in (state, artifacts):
        s3.put_object(Bucket=name, Key="probe", Body=b"1")  # the bucket exists and takes writes
        assert s3.get_object(Bucket=name, Key="probe")["Body"].read() == b"1"


def test_secrets_job_writes_private_matching_credentials(tmp_path: Path) -> None:
    """``bootstrap secrets DIR``: what compose mounts and interpolates, owner-only, consistent."""
    from alethia.crypto import KeyRing
    from alethia.messaging import PERMISSIONS

    target = tmp_path / "secrets"
    written = bootstrap.generate_secrets(target)
    assert sorted(written) == ["artifact-keyring.json", "compose.env", "nats-auth.conf", "s3-identities.json"]
    assert target.stat().st_mode & 0o777 == 0o700
    assert all((target / n).stat().st_mode & 0o777 == 0o600 for n in written)
    env = dict(line.split("=", 1) for line in (target / "compose.env").read_text().splitlines())
    identities = json.loads((target / "s3-identities.json").read_text())["identities"]
    keys = {i["name"]: i["credentials"][0]["accessKey"] for i in identities}
    assert keys == {
        "admin": env["ALETHIA_S3_ADMIN_ACCESS_KEY"],
        "runner": env["ALETHIA_S3_ACCESS_KEY"],
        "terraform": env["ALETHIA_S3_STATE_ACCESS_KEY"],
    }
    nats_conf = (target / "nats-auth.conf").read_text()
    assert (
        env["ALETHIA_NATS_RUNNER_PASSWORD"] in nats_conf
        and json.dumps(PERMISSIONS["runner"]["publish"]["allow"][0]) in nats_conf
    )
    KeyRing.from_reference(f"file:{target / 'artifact-keyring.json'}", {})
    assert bootstrap.generate_secrets(target) == [], "kept: a second run overwrites nothing"


def test_a_service_process_migrates_its_own_tables_in_a_child(postgres_factory: PostgresFactory) -> None:
    from alethia.errors import Unavailable
    from alethia.stack.migrate_child import migrate_in_child

    url = postgres_factory.create("alethia_migrate_child")
    asyncio.run(migrate_in_child("specs", url))
    tables = asyncio.run(_tables(url))
    # Only the named service's history, whatever else the environment names.
    assert {"specs", "alembic_version_specs"} <= tables
    assert "alembic_version_snapshot" not in tables and "provision_jobs" not in tables
    asyncio.run(migrate_in_child("snapshot", url))
    assert {"provision_jobs", "alembic_version_snapshot"} <= asyncio.run(_tables(url))
    # Nothing listens on port 1: the child fails and the error names the service.
    bad = "postgresql://alethia@127.0.0.1:1/nowhere"
    try:
        asyncio.run(migrate_in_child("snapshot", bad))
    except Unavailable as exc:
        assert str(exc).startswith("snapshot: database migrations failed")
    else:
        raise AssertionError("a failed migration did not raise")


def test_the_runner_process_does_not_load_aiohttp() -> None:
    import subprocess
    import sys

    # The entry point's imports, as `python -m services.executor` runs them (main() not called).
    script = (
        "import sys, runpy; runpy.run_module('services.executor.__main__', run_name='not_main'); "
        "import nats.aio.transport as t; "
        "print(sys.modules.get('aiohttp') is None, t.aiohttp is None, 'yarl' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "False"]
