"""spec_repositories: one index on (branch_key, norm_path) that finds the paths under a path.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:00:00

CreateSpec and UpdateSpec look for the repository entries of other Specs whose GitOps
path may overlap the new one's: its ancestors, itself, and every path below it. With an
index on ``branch_key`` alone, the "below it" part read every entry of the branch, so a
write grew with the number of Specs sharing one repository branch (a company's one apps
repository). The "below it" part is now a range of ``norm_path`` (``p/`` up to ``p0``),
which this index answers: on Postgres its ``text_pattern_ops`` compares bytes whatever the
database's collation (as the range needs), and SQLite's default BINARY collation does.
It also serves every lookup by ``branch_key`` alone, so it replaces that index.

Building it reads the table once and holds off writes to it (CreateSpec, UpdateSpec) for
that time; the service runs its migrations before it serves.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spec_repositories") as batch:
        batch.create_index(
            "ix_spec_repositories_branch_path",
            ["branch_key", "norm_path"],
            unique=False,
            postgresql_ops={"norm_path": "text_pattern_ops"},
        )
        batch.drop_index("ix_spec_repositories_branch_key")


def downgrade() -> None:
    with op.batch_alter_table("spec_repositories") as batch:
        batch.create_index("ix_spec_repositories_branch_key", ["branch_key"], unique=False)
        batch.drop_index("ix_spec_repositories_branch_path")
