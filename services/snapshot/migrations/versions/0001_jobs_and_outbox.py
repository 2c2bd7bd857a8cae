"""provision_jobs and job_outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
PLAN_CONSUMING = "plan_job_id IS NOT NULL AND status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'ERRORED')"


def upgrade() -> None:
    op.create_table(
        "provision_jobs",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("spec_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan_job_id", sa.String(36)),
        sa.Column("applied_by_job_id", sa.String(36)),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("spec_revision", sa.BigInteger, nullable=False),
        sa.Column("workspace", sa.String(512), nullable=False),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(256), unique=True),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_token", sa.String(64)),
        sa.Column("lease_seconds", sa.Integer),
        sa.Column("lease_expires_at", TS),
        sa.Column("runner_id", sa.String(256), nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("changes", JSON),
        sa.Column("cost", JSON),
        sa.Column("outputs", JSON),
        sa.Column("artifacts", JSON),
        sa.Column("post_apply_steps", JSON),
        sa.Column("attempt_errors", JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("create_time", TS, nullable=False),
        sa.Column("start_time", TS),
        sa.Column("end_time", TS),
        sa.Column("update_time", TS, nullable=False),
    )
    op.create_index("ix_provision_jobs_queue", "provision_jobs", ["workspace", "status", "seq"])
    op.create_index("ix_provision_jobs_status", "provision_jobs", ["status", "seq"])
    op.create_index("ix_provision_jobs_spec", "provision_jobs", ["spec_id", "seq"])
    op.create_index(
        "uq_provision_jobs_plan_applied_once",
        "provision_jobs",
        ["plan_job_id"],
        unique=True,
        postgresql_where=sa.text(PLAN_CONSUMING),
        sqlite_where=sa.text(PLAN_CONSUMING),
    )
    op.create_table(
        "job_outbox",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS),
    )
    op.create_index(
        "ix_job_outbox_unpublished",
        "job_outbox",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_job_outbox_job", "job_outbox", ["job_id", "seq"])


def downgrade() -> None:
    op.drop_table("job_outbox")
    op.drop_table("provision_jobs")
