"""The spec service (stage 1: Form -> DB): stores Specs in normalized tables.

Invariants:
- It owns ``specs``, ``cloud_identities`` and the ``spec_*`` component tables (Alembic
  history in ``migrations/``, version table ``alembic_version_specs``); no other service
  touches them: they call ``alethia.specs.v1.SpecService``.
- Nothing is written before every check passed; bad input is INVALID_ARGUMENT listing
  every field violation at once, never INTERNAL.
- A Spec write is one transaction across all its tables; an update replaces every
  component row. ``revision`` starts at 1 and grows by one per update; the revision
  guard is inside the UPDATE, so of concurrent writers holding the same revision exactly
  one wins and the others get ABORTED.
- One Spec per workspace (zone, project, environment, region) and per joined workspace key,
  one resource name prefix per cloud account, one owner per GitOps path (same or nested
  path in the same repository and branch): ALREADY_EXISTS naming the field and the owner.
- A Spec that may still have infrastructure is not deleted (FAILED_PRECONDITION) unless
  the caller abandons it; the snapshot service, which owns the jobs, is asked over gRPC.
  The workspace of a Spec never changes (it names the Terraform state), nor does its
  provider (an update may switch to another identity of the same provider).
- ``GetSpec`` reads the Spec row and every component table in one statement, so it
  returns one revision's data whatever commits meanwhile.
- Lists inside a Spec are ordered by name (repositories by url, branch, path): the same
  configuration always reads back the same, which keeps the snapshot hash stable.
- No secret is stored: identities hold a credentials reference, secrets name + metadata.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alethia.database import create_engine, run_migrations
from alethia.rpc.server import RunningService, create_server
from alethia.specs.v1 import specs_pb2_grpc
from services.specs.catalog import SpecCatalog
from services.specs.infrastructure import GrpcInfrastructureReader
from services.specs.server import SERVICE_NAME, SpecServicer
from services.specs.settings import SpecsSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_specs"


async def migrate(database_url: str) -> None:
    """Bring the database to the latest schema (Alembic runs its own event loop in a thread)."""
    await asyncio.to_thread(run_migrations, database_url, MIGRATIONS, VERSION_TABLE)


async def start(settings: SpecsSettings, *, migrated: bool = False) -> RunningService:
    """Migrate (unless the caller did: ``migrated``), then serve SpecService (+ health, reflection)."""
    if not migrated:
        await migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    # Deletes ask the snapshot service (it owns the jobs) whether infrastructure remains.
    infrastructure = GrpcInfrastructureReader(settings.snapshot_addr, settings.service_token or None)
    servicer = SpecServicer(SpecCatalog(engine, infrastructure, settings.allowed_git_hosts()))
    try:
        server, port, health = await create_server(
            [lambda s: specs_pb2_grpc.add_SpecServiceServicer_to_server(servicer, s)],
            [SERVICE_NAME],
            settings.listen,
            authenticator=settings.authenticator(),
        )
    except BaseException:
        await infrastructure.close()
        await engine.dispose()
        raise
    host = settings.listen.rsplit(":", 1)[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return RunningService(server, port, health, host=host, closers=[engine.dispose, infrastructure.close])
