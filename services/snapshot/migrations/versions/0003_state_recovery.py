"""state recoveries (errored.tfstate kept until pushed), UNLOCK jobs and state lock ids

Revision ID: 0003_state_recovery
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_state_recovery"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
PENDING = "resolve_time IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("provision_jobs") as batch:
        batch.add_column(sa.Column("lock_id", sa.String(64)))
        batch.add_column(sa.Column("state_lock_id", sa.String(64)))
        batch.add_column(sa.Column("resources_applied", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "state_recoveries",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(512), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False, unique=True),
        sa.Column("spec_id", sa.String(64), nullable=False),
        sa.Column("state_key", sa.String(1024), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("resources_applied", sa.Integer, nullable=False),
        sa.Column("lock_id", sa.String(64), nullable=False),
        sa.Column("runner_id", sa.String(256), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("create_time", TS, nullable=False),
        sa.Column("resolve_time", TS),
        sa.Column("resolution", sa.Text, nullable=False),
    )
    op.create_index(
        "uq_state_recoveries_pending_workspace",
        "state_recoveries",
        ["workspace"],
        unique=True,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("uq_state_recoveries_pending_workspace", table_name="state_recoveries")
    op.drop_table("state_recoveries")
    with op.batch_alter_table("provision_jobs") as batch:
        batch.drop_column("resources_applied")
        batch.drop_column("state_lock_id")
        batch.drop_column("lock_id")
