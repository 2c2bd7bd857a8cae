"""Infrastructure a harness stands on: shared NATS and S3 for a benchmark run, Postgres databases.

- :class:`SharedInfra`: one real ``nats-server`` (JetStream) and one open SeaweedFS S3 for a
  whole benchmark run, the same binaries the embedded stack uses.
- :class:`PostgresDatabases`: fresh databases on a Postgres server, dropped at the end.
- :func:`database_text` and :func:`git_out`: what a test reads back from a database or a
  git repository (leak checks, pushed manifests).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from alethia.stack.infra import NatsServer, SeaweedS3

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class SharedInfra:
    """NATS JetStream and SeaweedFS S3 for the whole run (started from the main thread)."""

    root: Path
    nats: NatsServer | None = None
    s3: SeaweedS3 | None = None

    def start(self) -> SharedInfra:
        self.nats = NatsServer(self.root / "nats", die_with_parent=True).start()
        self.s3 = SeaweedS3(self.root / "s3", die_with_parent=True).start()
        return self

    def stop(self) -> None:
        if self.s3:
            self.s3.stop()
        if self.nats:
            self.nats.stop()


class PostgresDatabases:
    """Creates databases on the server of ``admin_url`` and drops them on :meth:`drop_all`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
        self.created: list[str] = []

    async def _exec(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def server_version(self) -> str:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def create(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await self._exec(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.admin_url.rsplit('/', 1)[0]}/{name}"

    async def drop_all(self) -> None:
        for name in self.created:
            try:
                await self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reporting only: never fail the run on cleanup
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        self.created.clear()


async def git_out(repo: Path, *args: str) -> bytes:
    """stdout of ``git -C repo args`` (fails the test on a git error)."""
    proc = await asyncio.to_thread(
        subprocess.run, ["git", "-C", str(repo), *args], capture_output=True, check=True
    )
    return bytes(proc.stdout)


async def database_text(url: str) -> str:
    """Every row of every table of a Postgres database, as JSON text (for leak checks)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        parts = []
        for t in tables:
            rows = await conn.fetch(f'SELECT row_to_json(x)::text AS j FROM "{t["tablename"]}" x')
            parts += [r["j"] for r in rows]
        return "\n".join(parts)
    finally:
        await conn.close()
