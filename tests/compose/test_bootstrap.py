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
