"""databases[].backup_retention_days: a column of its own (default 7, 0..35).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 04:40:00

Existing rows get 7 (the declared default), or the value they carried as
``provider_config.backup_retention_days`` on AWS/Azure, which the key then leaves: the
field is no longer a provider option.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen here: the migration must not follow later model edits.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_databases = sa.table(
    "spec_databases",
    sa.column("spec_id", sa.String),
    sa.column("name", sa.String),
    sa.column("provider_config", JSON),
    sa.column("backup_retention_days", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("spec_databases") as batch_op:
        batch_op.add_column(
            sa.Column("backup_retention_days", sa.Integer(), nullable=False, server_default="7")
        )
    with op.batch_alter_table("spec_databases") as batch_op:
        batch_op.alter_column("backup_retention_days", server_default=None)
    conn = op.get_bind()
    rows = conn.execute(sa.select(_databases.c.spec_id, _databases.c.name, _databases.c.provider_config))
    for spec_id, name, config in rows.all():
        if isinstance(config, str):  # SQLite without the JSON type's processing
            config = json.loads(config)
        if not isinstance(config, dict) or "backup_retention_days" not in config:
            continue
        days = config.pop("backup_retention_days")
        values: dict[str, object] = {"provider_config": config}
        if isinstance(days, int | float) and not isinstance(days, bool) and 0 <= days <= 35:
            values["backup_retention_days"] = int(days)
        conn.execute(
            sa.update(_databases)
            .where(_databases.c.spec_id == spec_id, _databases.c.name == name)
            .values(**values)
        )


def downgrade() -> None:
    with op.batch_alter_table("spec_databases") as batch_op:
        batch_op.drop_column("backup_retention_days")
