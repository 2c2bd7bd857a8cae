"""Real Postgres, NATS and S3 are settings, not code changes.

``alethia up``'s supervisor, given ``ALETHIA_NATS_URL``, ``ALETHIA_S3_ENDPOINT`` and
Postgres database URLs, starts no nats-server and no SeaweedFS of its own, and the whole
pipeline (CLI -> specs -> snapshot -> executor with Terraform) runs on those servers.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import boto3
import yaml

from alethia.stack.supervisor import Stack, StackConfig
from tests.conftest import PostgresFactory
from tests.e2e.conftest import ROOT, UpStack, clean_env
from tests.fixtures.s3 import TEST_S3_RUNNER


async def _count(dsn: str, sql: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def test_stack_on_external_postgres_nats_and_s3(
    tmp_path: Path,
    postgres_factory: PostgresFactory,
    nats_server,
    s3_server,  # type: ignore[no-untyped-def]
) -> None:
    pg = postgres_factory.create("alethia_up")
    env = clean_env(
        ALETHIA_NATS_URL=nats_server.url,
        ALETHIA_S3_ENDPOINT=s3_server.endpoint,
        ALETHIA_S3_ACCESS_KEY=TEST_S3_RUNNER.access_key,
        ALETHIA_S3_SECRET_KEY=TEST_S3_RUNNER.secret_key,
        ALETHIA_SPECS_DATABASE_URL=pg,
        ALETHIA_SNAPSHOT_DATABASE_URL=pg,
    )
    data_dir = tmp_path / "data"
    stack = Stack(StackConfig(data_dir=data_dir, free_ports=True, env=env))
    info = stack.start()
    try:
        assert stack.nats is None and stack.s3 is None, "external servers are used, none started"
        # stack.json records where NATS is, never the password in the configured URL
        assert info.nats_url == nats_server.address and info.s3_endpoint == s3_server.endpoint
        assert not (data_dir / "specs.db").exists() and not (data_dir / "nats").exists()

        cli = UpStack(data_dir)
        identity = cli.ok(
            "identity", "create", "--provider", "aws", "--account-id", "210987654321", "--name", "ext"
        )
        # A zone of its own: the session's S3 server is shared with other tests.
        doc = yaml.safe_load((ROOT / "examples" / "aws.yaml").read_text())
        doc["zone_id"] = f"zone-{uuid.uuid4().hex[:8]}"
        spec_file = tmp_path / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(doc))
        spec = cli.ok("spec", "create", "-f", str(spec_file), "--identity", identity["id"])
        plan = cli.ok("plan", spec["id"], "--wait")
        assert plan["status"] == "SUCCEEDED", plan["error"]

        assert asyncio.run(_count(pg, "SELECT count(*) FROM specs")) == 1
        assert asyncio.run(_count(pg, "SELECT count(*) FROM provision_jobs")) == 1
        s3 = boto3.client(
            "s3", endpoint_url=s3_server.endpoint, aws_access_key_id=TEST_S3_RUNNER.access_key,
            aws_secret_access_key=TEST_S3_RUNNER.secret_key,
            region_name="us-east-1",
        )  # fmt: skip
        keys = {
            o["Key"]
            for o in s3.list_objects_v2(Bucket="alethia-artifacts", Prefix=f"jobs/{plan['id']}/")["Contents"]
        }
        assert f"jobs/{plan['id']}/plan.tfplan" in keys
    finally:
        stack.stop()
    assert all(not svc.process.running() for svc in stack.services.values())
