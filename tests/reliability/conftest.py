"""Fixtures of the reliability suite: a pipeline per test, its own NATS, fresh Postgres databases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alethia.stack.infra import NatsServer, generate_nats_passwords
from tests.harness import Pipeline

PipelineFactory = Callable[..., Awaitable[Pipeline]]


class _InternalCounter(logging.Handler):
    """Counts the services' "unhandled error in RPC" records: each one was an INTERNAL answer."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("unhandled error in RPC"):
            exc = record.exc_info[1] if record.exc_info else None
            self.records.append(f"{type(exc).__name__}: {exc}" if exc else record.getMessage())


@pytest.fixture(autouse=True)
def no_internal_answers() -> Iterator[None]:
    """Every scenario: INTERNAL answers from the in-process services 0."""
    counter = _InternalCounter()
    logger = logging.getLogger("alethia.rpc.server")
    logger.addHandler(counter)
    try:
        yield
    finally:
        logger.removeHandler(counter)
    assert counter.records == [], f"{len(counter.records)} INTERNAL answers: {counter.records[:3]}"


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of this test alone (so it can be stopped and its streams counted)."""
    server = NatsServer(tmp_path / "nats", passwords=generate_nats_passwords()).start()
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
    """Builds (and finally stops) the quick pipelines of one test; keyword arguments set its fields."""
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
        p = Pipeline.quick(**values)
        built.append(p)
        return await p.start()

    yield make
    for p in reversed(built):
        await p.stop()
