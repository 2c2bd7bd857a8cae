"""Alembic environment of the snapshot service: its own version table (the shared body is in alethia.database)."""

from __future__ import annotations

from alethia.database import run_alembic_env
from services.snapshot.store import VERSION_TABLE, metadata

run_alembic_env(metadata, VERSION_TABLE)
