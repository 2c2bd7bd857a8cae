"""Bad input over gRPC: INVALID_ARGUMENT naming the field, nothing written, never INTERNAL."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2
from tests.fixtures.specs import full_spec_dict
from tests.specs.cases import BAD_SPECS, broken
from tests.specs.conftest import SpecsEnv, rpc_error


@pytest.fixture(scope="module")
async def env(shared_specs: SpecsEnv) -> AsyncIterator[tuple[SpecsEnv, dict[str, Any]]]:
    """The shared service holding one full Spec, and a valid Spec dict for another workspace."""
    ident = await shared_specs.identity("aws", name="bad-input")
    await shared_specs.create(full_spec_dict("aws", cloud_identity_id=ident.id, zone_id="zone-existing"))
    yield shared_specs, full_spec_dict("aws", cloud_identity_id=ident.id)


@pytest.mark.parametrize(("case", "mutate", "paths"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
async def test_each_rule_rejects_and_writes_nothing(
    env: tuple[SpecsEnv, dict[str, Any]], case: str, mutate, paths
) -> None:  # type: ignore[no-untyped-def]
    specs, valid = env
    before = await specs.counts()
    err = await rpc_error(specs.create(broken(valid, mutate)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT, (case, err.message)
    fields = [v.field for v in err.violations]
    for path in paths:
        assert path in fields, f"{case}: expected {path}, got {err.violations}"
    assert await specs.counts() == before


async def test_the_same_rules_guard_updates(env: tuple[SpecsEnv, dict[str, Any]]) -> None:
    specs, valid = env
    created = await specs.create(
        full_spec_dict("aws", cloud_identity_id=valid["cloud_identity_id"], zone_id="zone-upd")
    )
    before = await specs.counts()
    request = specs_pb2.UpdateSpecRequest(spec=created, expected_revision=1)
    request.spec.network.cidr_block = "10.0.0.0/30"
    request.spec.databases[1].engine = "db2"
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert [v.field for v in err.violations] == ["network.cidr_block", "databases[1].engine"]
    assert await specs.counts() == before
    assert (await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))).revision == 1


async def test_non_finite_numbers_and_missing_spec(env: tuple[SpecsEnv, dict[str, Any]]) -> None:
    specs, valid = env
    before = await specs.counts()
    spec = spec_from_dict(valid)
    spec.databases[0].scaling.max_capacity = float("inf")
    spec.databases[1].scaling.min_capacity = float("nan")
    spec.network.provider_config["ratio"] = float("nan")
    err = await rpc_error(specs.stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in err.violations}
    assert {"databases[0].scaling.max_capacity", "databases[1].scaling.min_capacity"} <= fields
    assert "network.provider_config" in fields or "network.provider_config.ratio" in fields
    err = await rpc_error(specs.stub.CreateSpec(specs_pb2.CreateSpecRequest()))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and [v.field for v in err.violations] == ["spec"]
    assert await specs.counts() == before


async def test_oversize_input_is_invalid_argument(env: tuple[SpecsEnv, dict[str, Any]]) -> None:
    specs, valid = env
    before = await specs.counts()
    data = dict(valid)
    big_config = {f"k{i}": "v" * 200 for i in range(100)}  # ~21 KB each
    data["databases"] = [
        {**valid["databases"][0], "name": f"db-{i}", "provider_config": big_config} for i in range(60)
    ]
    data["project_name"] = "x" * 10_000
    err = await rpc_error(specs.create(data))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in err.violations}
    assert {"databases", "project_name", "databases[0].provider_config"} <= fields
    assert await specs.counts() == before


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


NASTY = [
    "",
    "\x00",
    "a\x00b",
    "'; DROP TABLE specs; --",
    "é" * 300,
    "\u202e",
    "x" * 70_000,
    "../../",
    "%s%n",
    "\ud7ff",
]


async def test_random_garbage_never_causes_internal(env: tuple[SpecsEnv, dict[str, Any]]) -> None:
    """Random strings in random fields: the answer is OK, INVALID_ARGUMENT or ALREADY_EXISTS."""
    specs, valid = env
    rng = random.Random(20261128)
    paths = _string_paths(valid)
    codes: set[grpc.StatusCode] = set()
    for i in range(40):
        data = broken(valid, lambda d: None)
        data["zone_id"] = f"fuzz-{i}"
        for path in rng.sample(paths, 3):
            target: Any = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = rng.choice(NASTY)
        try:
            await specs.create(data)
            codes.add(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS), (
                exc.code(),
                exc.details(),
            )
            codes.add(exc.code())
    assert grpc.StatusCode.INVALID_ARGUMENT in codes


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, encoded by hand (a non-Python client could send anything)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            low, n = n & 0x7F, n >> 7
            if not n:
                return out + bytes([low])
            out += bytes([low | 0x80])

    return varint((field << 3) | 2) + varint(len(payload)) + payload


def _nested_struct(depth: int) -> bytes:
    if depth == 0:
        return b""
    value = _ld(5, _nested_struct(depth - 1))  # Value.struct_value
    return _ld(1, _ld(1, b"a") + _ld(2, value))  # Struct.fields map entry


async def test_undecodable_requests_are_invalid_argument(env: tuple[SpecsEnv, dict[str, Any]]) -> None:
    specs, _ = env
    before = await specs.counts()
    call = specs.channel.unary_unary(
        "/alethia.specs.v1.SpecService/CreateSpec",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    too_deep = _ld(1, _ld(9, _ld(4, _nested_struct(60))))  # CreateSpecRequest.spec.network.provider_config
    for payload in (too_deep, b"\xff\xff\xff"):
        err = await rpc_error(call(payload))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert await specs.counts() == before
