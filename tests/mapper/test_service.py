"""The MapperService over real gRPC: RenderTfvars, DescribeMapping, errors, health."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.rpc.status import from_rpc_error
from services.mapper.app import start
from services.mapper.settings import MapperSettings
from tests.mapper.snapshots import snapshot, tfvars_path

TOKEN = "test-token-mapper"


@pytest.fixture(scope="module")
async def mapper() -> AsyncIterator[RunningService]:
    running = await start(MapperSettings(listen="127.0.0.1:0", service_token=TOKEN))
    yield running
    await running.stop(None)


async def test_render_tfvars_matches_the_golden_output(mapper: RunningService) -> None:
    async with connect(mapper.address, TOKEN) as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        for provider in ("aws", "gcp", "azure"):
            reply = await stub.RenderTfvars(
                mapper_pb2.RenderTfvarsRequest(snapshot_json=json.dumps(snapshot(provider)))
            )
            assert (reply.provider, reply.template) == (provider, provider)
            assert reply.tfvars_json == tfvars_path(provider, "full").read_text(encoding="utf-8")


async def test_bad_snapshot_is_invalid_argument_with_field_violations(mapper: RunningService) -> None:
    data = snapshot("aws")
    data["cluster"]["node_min_size"] = "two"
    data["dns"]["provider_config"]["wafx"] = 1
    async with connect(mapper.address, TOKEN) as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json=json.dumps(data)))
        err = from_rpc_error(info.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in err.violations] == ["cluster.node_min_size"]
        # Types first; once they are right, the provider's option check names the key.
        data["cluster"]["node_min_size"] = 2
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json=json.dumps(data)))
        assert [v.field for v in from_rpc_error(info.value).violations] == ["dns.provider_config.wafx"]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json="{not json"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not valid JSON" in (info.value.details() or "")


async def test_describe_mapping(mapper: RunningService) -> None:
    async with connect(mapper.address, TOKEN) as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        reply = await stub.DescribeMapping(mapper_pb2.DescribeMappingRequest(provider="gcp"))
        assert reply.provider == "gcp"
        rows = {r.variable: r for r in reply.rows}
        assert rows["network_cidr"].spec_field == "network.cidr_block"
        assert rows["network_cidr"].type == "string"
        assert rows["pubsub_topics"].spec_field == "queues[], topics[]"
        assert rows["cloud_sql_databases[].tier"].spec_field == "databases[].instance_class"
        assert all(r.description for r in reply.rows)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.DescribeMapping(mapper_pb2.DescribeMappingRequest(provider="ibm"))
        assert from_rpc_error(info.value).violations[0].field == "provider"


async def test_token_and_health(mapper: RunningService) -> None:
    async with connect(mapper.address) as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.DescribeMapping(mapper_pb2.DescribeMappingRequest(provider="aws"))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="alethia.mapper.v1.MapperService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_settings_listen_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALETHIA_MAPPER_LISTEN", "0.0.0.0:6000")
    assert MapperSettings().listen == "0.0.0.0:6000"
