"""One gateway stack (real Envoy, real spec and snapshot services) per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from alethia.stack.infra import NatsServer
from tests.fixtures.specs import identity_dict, minimal_spec_dict

from .harness import ZONE_A, GatewayStack


@pytest.fixture(scope="module")
async def gw(
    tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer
) -> AsyncIterator[GatewayStack]:
    stack = GatewayStack(tmp_path_factory.mktemp("gateway"), nats_server.url)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()


@pytest.fixture(scope="module")
async def identity_id(gw: GatewayStack) -> str:
    reply = await gw.request("POST", "/api/identities", who="admin", body=identity_dict("aws"))
    assert reply.status == 200, reply.text
    return str(reply.body["id"])


_counter = {"n": 0}


def spec_body(identity_id: str, zone: str = ZONE_A, **overrides: Any) -> dict[str, Any]:
    """A minimal Spec in ``zone`` with a project name of its own (one workspace per Spec)."""
    _counter["n"] += 1
    values: dict[str, Any] = {"project_name": f"gw{_counter['n']}", **overrides}
    return minimal_spec_dict("aws", cloud_identity_id=identity_id, zone_id=zone, **values)
