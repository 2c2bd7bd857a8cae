"""Fixtures of the spec service tests: a real service on port 0 with a real channel.

- ``specs``: a fresh service and database per test, on SQLite and on Postgres.
- ``shared_specs``: one service per database kind for a whole module (many cheap cases).
``SpecsEnv.counts()`` reads every table's row count straight from the database, so tests
can assert that a refused request wrote nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from alethia.database import create_engine
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.rpc.status import from_rpc_error
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from services.specs import store
from tests.fixtures.specs import create_identity, full_spec_dict, start_specs


@dataclass
class SpecsEnv:
    """A running spec service, a stub on a real channel, and direct database access."""

    url: str
    service: RunningService
    channel: grpc.aio.Channel
    stub: specs_pb2_grpc.SpecServiceStub

    async def counts(self) -> dict[str, int]:
        engine = create_engine(self.url)
        try:
            async with AsyncSession(engine) as session:
                return await store.count_rows(session)
        finally:
            await engine.dispose()

    async def identity(self, provider: str = "aws", **overrides: Any) -> specs_pb2.CloudIdentity:
        return await create_identity(self.stub, provider, **overrides)  # type: ignore[no-any-return]

    async def create(self, data: dict[str, Any]) -> specs_pb2.Spec:
        return await self.stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))  # type: ignore[no-any-return]

    async def create_full(self, provider: str = "aws", **overrides: Any) -> specs_pb2.Spec:
        ident = await self.identity(provider, name=f"{provider}-{overrides.get('zone_id', 'zone-acme')}")
        return await self.create(full_spec_dict(provider, cloud_identity_id=ident.id, **overrides))


async def _env(url: str) -> AsyncIterator[SpecsEnv]:
    # No snapshot service here: port 1 (nothing listens there; never handed out as a free
    # port, so no later test's service can appear at it), never a default one another stack holds.
    service = await start_specs(url, snapshot_addr="127.0.0.1:1")
    channel = connect(service.address)
    try:
        yield SpecsEnv(url, service, channel, specs_pb2_grpc.SpecServiceStub(channel))
    finally:
        await channel.close()
        await service.stop(None)


@pytest.fixture
async def specs(database_url: str) -> AsyncIterator[SpecsEnv]:
    """A fresh spec service (and database) per test, on SQLite and Postgres."""
    async for env in _env(database_url):
        yield env


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_specs_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per kind for a module (sync: the Postgres factory must run outside the loop)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('specs')) / 'specs.db'}"
    return str(request.getfixturevalue("postgres_factory").create("alethia_specs"))


@pytest.fixture(scope="module")
async def shared_specs(shared_specs_url: str) -> AsyncIterator[SpecsEnv]:
    """One spec service per database kind for the whole module."""
    async for env in _env(shared_specs_url):
        yield env


async def rpc_error(awaitable: Any) -> Any:
    """Await a call that must fail; returns the decoded domain error."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return from_rpc_error(info.value)


@dataclass
class Pipeline:
    """The spec service wired to a real snapshot service (which owns the jobs), and a runner's stub."""

    specs: SpecsEnv
    jobs: Any  # SnapshotServiceStub
    runner: Any  # RunnerServiceStub
    identity_id: str
    snapshot_addr: str


@pytest.fixture
async def pipeline(tmp_path: Path, nats_server: Any) -> AsyncIterator[Pipeline]:
    """Spec + snapshot services on SQLite; the specs service asks the snapshot service before deletes."""
    from alethia.snapshot.v1 import snapshot_pb2_grpc
    from alethia.stack.infra import free_port
    from services.snapshot.app import start as start_snapshot
    from services.snapshot.settings import SnapshotSettings

    snapshot_addr = f"127.0.0.1:{free_port()}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}"
    specs_svc = await start_specs(url, snapshot_addr=snapshot_addr)
    snap = await start_snapshot(
        SnapshotSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}",
            listen=snapshot_addr,
            specs_addr=specs_svc.address,
            nats_url=nats_server.url,
            state_bucket="team-state",
        )
    )
    channel = connect(specs_svc.address)
    snap_channel = connect(snap.address)
    try:
        env = SpecsEnv(url, specs_svc, channel, specs_pb2_grpc.SpecServiceStub(channel))
        ident = await env.identity("aws")
        yield Pipeline(
            env,
            snapshot_pb2_grpc.SnapshotServiceStub(snap_channel),
            snapshot_pb2_grpc.RunnerServiceStub(snap_channel),
            ident.id,
            snapshot_addr,
        )
    finally:
        await snap_channel.close()
        await channel.close()
        await snap.stop(None)
        await specs_svc.stop(None)
