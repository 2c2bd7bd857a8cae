"""Alembic environment of the spec service: its own version table (the shared body is in alethia.database)."""

from __future__ import annotations

from alethia.database import run_alembic_env
from services.specs.app import VERSION_TABLE
from services.specs.models import Base

run_alembic_env(Base.metadata, VERSION_TABLE)
