"""The harness's real servers answer: Postgres and SQLite via SQLAlchemy, NATS JetStream, S3."""

from __future__ import annotations

import boto3
import nats
from sqlalchemy import text

from alethia.database import create_engine


async def test_database_url_is_reachable(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1 + 1"))).scalar_one() == 2
    await engine.dispose()


async def test_nats_jetstream_roundtrip(nats_server) -> None:  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="HARNESS", subjects=["harness.>"])
    ack = await js.publish("harness.x", b"hello", headers={"Nats-Msg-Id": "m1"})
    dup = await js.publish("harness.x", b"hello", headers={"Nats-Msg-Id": "m1"})
    assert dup.duplicate and ack.seq == dup.seq
    await nc.close()


def test_s3_conditional_write(s3_server) -> None:  # type: ignore[no-untyped-def]
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        region_name="us-east-1",
    )
    s3.put_object(Bucket="alethia-artifacts", Key="harness/lock", Body=b"1", IfNoneMatch="*")
    try:
        s3.put_object(Bucket="alethia-artifacts", Key="harness/lock", Body=b"2", IfNoneMatch="*")
        raise AssertionError("second conditional write must be refused")
    except s3.exceptions.ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 412
