"""one RUNNING job per workspace, enforced by a partial unique index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUNNING = "status = 'RUNNING'"


def upgrade() -> None:
    op.create_index(
        "uq_provision_jobs_one_running_per_workspace",
        "provision_jobs",
        ["workspace"],
        unique=True,
        postgresql_where=sa.text(RUNNING),
        sqlite_where=sa.text(RUNNING),
    )


def downgrade() -> None:
    op.drop_index("uq_provision_jobs_one_running_per_workspace", table_name="provision_jobs")
