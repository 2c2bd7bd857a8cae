"""Reads Specs from the spec service over gRPC (never from its tables)."""

from __future__ import annotations

from typing import Protocol

import grpc

from alethia.errors import AlethiaError, InvalidArgument, NotFound, Unavailable
from alethia.rpc.client import connect
from alethia.rpc.status import from_rpc_error
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc


class SpecReader(Protocol):
    """What the job queue needs from stage 1."""

    async def get_spec(self, spec_id: str) -> specs_pb2.Spec: ...

    async def close(self) -> None: ...


class GrpcSpecReader:
    """``SpecService.GetSpec`` over a channel to ``address``; errors mapped to our domain errors."""

    def __init__(self, address: str, auth_token: str | None = None, timeout: float = 10.0) -> None:
        self._address = address
        self._channel = connect(address, auth_token)
        self._stub = specs_pb2_grpc.SpecServiceStub(self._channel)
        self._timeout = timeout

    async def get_spec(self, spec_id: str) -> specs_pb2.Spec:
        """The Spec with its provider and cloud account, as the spec service reads it."""
        try:
            return await self._stub.GetSpec(specs_pb2.GetSpecRequest(id=spec_id), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            raise _translate(err, spec_id, self._address) from exc

    async def close(self) -> None:
        await self._channel.close()


def _translate(err: AlethiaError, spec_id: str, address: str) -> AlethiaError:
    if err.code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"spec {spec_id} not found")
    if err.code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument.one(
            "spec_id", err.violations[0].description if err.violations else err.message
        )
    if err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"spec service at {address} is unavailable: {err.message}")
    return err
