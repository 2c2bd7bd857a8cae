"""Fixtures of the reliability suite: a pipeline per test, its own NATS, fresh Postgres databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alethia.stack.infra import NatsServer

from .harness import Pipeline

PipelineFactory = Callable[..., Awaitable[Pipeline]]


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of this test alone (so it can be stopped and its streams counted)."""
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def pg_pair(postgres_factory: Any) -> tuple[str, str]:
    """Fresh Postgres databases for the spec service and the snapshot service."""
    return postgres_factory.create("alethia_rel_specs"), postgres_factory.create("alethia_rel_jobs")


@pytest.fixture
async def make_pipeline(
    tmp_path: Path, own_nats: NatsServer, s3_server: Any, pg_pair: tuple[str, str]
) -> AsyncIterator[PipelineFactory]:
    """Builds (and finally stops) the pipelines of one test; keyword arguments set its fields."""
    built: list[Pipeline] = []

    async def make(**fields: Any) -> Pipeline:
        values: dict[str, Any] = {
            "tmp": tmp_path / f"p{len(built)}",
            "nats_url": own_nats.url,
            "s3_endpoint": s3_server.endpoint,
            "specs_db": pg_pair[0],
            "snapshot_db": pg_pair[1],
        }
        values.update(fields)
        values["tmp"].mkdir(parents=True, exist_ok=True)
        p = Pipeline(**values)
        built.append(p)
        return await p.start()

    yield make
    for p in reversed(built):
        await p.stop()
