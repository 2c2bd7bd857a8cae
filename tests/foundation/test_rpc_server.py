"""The shared server bootstrap: health, reflection, error mapping, token auth, on port 0."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from alethia.errors import FieldViolation, InvalidArgument
from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.rpc.client import connect
from alethia.rpc.server import create_server
from alethia.rpc.status import from_rpc_error

SERVICE = "alethia.mapper.v1.MapperService"


class _Mapper(mapper_pb2_grpc.MapperServiceServicer):
    async def RenderTfvars(self, request, context):  # type: ignore[no-untyped-def]
        if request.snapshot_json == "boom":
            raise RuntimeError("secret internals")
        raise InvalidArgument(
            [FieldViolation("network.cidr_block", "must be a CIDR"), FieldViolation("provider", "bad")]
        )


async def _start(token: str | None = None):  # type: ignore[no-untyped-def]
    servicer = _Mapper()
    return await create_server(
        [lambda s: mapper_pb2_grpc.add_MapperServiceServicer_to_server(servicer, s)],
        [SERVICE],
        auth_token=token,
    )


async def test_errors_become_status_with_field_violations() -> None:
    server, port, _ = await _start()
    async with connect(f"127.0.0.1:{port}") as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json="{}"))
        err = from_rpc_error(info.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in err.violations] == ["network.cidr_block", "provider"]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json="boom"))
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "secret internals" not in (info.value.details() or "")
    await server.stop(None)


async def test_health_and_reflection() -> None:
    server, port, _ = await _start()
    async with connect(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = set()
        async for msg in call:
            names |= {s.name for s in msg.list_services_response.service}
        assert SERVICE in names
    await server.stop(None)


async def test_token_auth_refuses_calls_without_the_token() -> None:
    server, port, _ = await _start(token="s3cret")
    async with connect(f"127.0.0.1:{port}") as channel:
        stub = mapper_pb2_grpc.MapperServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json="{}"))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health stays open for load balancers.
        resp = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    async with connect(f"127.0.0.1:{port}", auth_token="s3cret") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await mapper_pb2_grpc.MapperServiceStub(channel).RenderTfvars(mapper_pb2.RenderTfvarsRequest())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await server.stop(None)
