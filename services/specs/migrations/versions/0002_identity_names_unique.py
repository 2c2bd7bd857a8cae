"""Uniqueness on the names a Spec's identity becomes: workspace key, cloud names, GitOps paths.

Adds ``specs.workspace`` (the joined ``{zone}/{project}-{env}-{region}`` key that names
the Terraform state and its lock), ``specs.cloud_account`` + ``specs.resource_prefix``
(``{provider}:{account}`` and ``{project}-{env}``, the prefix of every cloud resource
name) and, on ``spec_repositories``, the normalized ownership keys of each apps
repository entry; fills them from the existing rows and makes them unique.

Existing data that already breaks one of these rules is NOT fixed by guessing which Spec
is the right owner: the upgrade stops with a report naming every colliding Spec, and
nothing is changed (the migration runs in one transaction). Resolve each collision
(destroy and delete, or abandon, one Spec of each group) and start the service again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 04:40:00
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from alethia import naming

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


class CollisionError(RuntimeError):
    """Existing Specs already collide on a name; the message lists them."""


def _collisions(groups: dict[str, list[str]], what: str) -> list[str]:
    return [
        f"{what} {key!r} is shared by Specs {', '.join(sorted(ids))}"
        for key, ids in sorted(groups.items())
        if len(set(ids)) > 1
    ]


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("specs") as batch:
        batch.add_column(sa.Column("workspace", sa.String(255), nullable=True))
        batch.add_column(sa.Column("cloud_account", sa.String(96), nullable=True))
        batch.add_column(sa.Column("resource_prefix", sa.String(127), nullable=True))
    with op.batch_alter_table("spec_repositories") as batch:
        batch.add_column(sa.Column("branch_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("owner_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("norm_path", sa.Text(), nullable=True))

    specs = sa.table(
        "specs",
        sa.column("id"),
        sa.column("zone_id"),
        sa.column("project_name"),
        sa.column("environment"),
        sa.column("region"),
        sa.column("cloud_identity_id"),
        sa.column("workspace"),
        sa.column("cloud_account"),
        sa.column("resource_prefix"),
    )
    identities = sa.table("cloud_identities", sa.column("id"), sa.column("provider"), sa.column("account_id"))
    repos = sa.table(
        "spec_repositories",
        sa.column("spec_id"),
        sa.column("position"),
        sa.column("url"),
        sa.column("branch"),
        sa.column("path"),
        sa.column("branch_key"),
        sa.column("owner_key"),
        sa.column("norm_path"),
    )

    problems: list[str] = []
    workspaces: dict[str, list[str]] = defaultdict(list)
    cloud_names: dict[str, list[str]] = defaultdict(list)
    rows = bind.execute(
        sa.select(
            specs.c.id,
            specs.c.zone_id,
            specs.c.project_name,
            specs.c.environment,
            specs.c.region,
            identities.c.provider,
            identities.c.account_id,
        ).join(identities, identities.c.id == specs.c.cloud_identity_id)
    ).all()
    for r in rows:
        ws = naming.workspace_key(r.zone_id, r.project_name, r.environment, r.region)
        account = naming.cloud_account(r.provider, r.account_id)
        prefix = naming.resource_prefix(r.project_name, r.environment)
        workspaces[ws].append(r.id)
        cloud_names[f"{account} {prefix}"].append(r.id)
        bind.execute(
            specs.update()
            .where(specs.c.id == r.id)
            .values(workspace=ws, cloud_account=account, resource_prefix=prefix)
        )
    problems += _collisions(workspaces, "workspace (Terraform state key)")
    problems += _collisions(cloud_names, "cloud account and resource name prefix")

    owners: dict[str, list[str]] = defaultdict(list)
    by_branch: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in bind.execute(
        sa.select(repos.c.spec_id, repos.c.position, repos.c.url, repos.c.branch, repos.c.path)
    ):
        branch_key = naming.repository_branch_key(r.url, r.branch)
        norm_path = naming.normalize_repository_path(r.path)
        owner = naming.gitops_owner_key(r.url, r.branch, r.path)
        owners[f"{r.url} {r.branch} {norm_path or '/'}"].append(r.spec_id)
        by_branch[branch_key].append((r.spec_id, norm_path, f"{r.url} {r.branch}"))
        bind.execute(
            repos.update()
            .where(repos.c.spec_id == r.spec_id, repos.c.position == r.position)
            .values(branch_key=branch_key, owner_key=owner, norm_path=norm_path)
        )
    problems += _collisions(owners, "GitOps path")
    for entries in by_branch.values():
        for i, (spec_a, path_a, where) in enumerate(entries):
            for spec_b, path_b, _ in entries[i + 1 :]:
                if spec_a != spec_b and path_a != path_b and naming.paths_overlap(path_a, path_b):
                    problems.append(
                        f"GitOps paths {path_a or '/'!r} (Spec {spec_a}) and {path_b or '/'!r} "
                        f"(Spec {spec_b}) overlap in {where}"
                    )
    if problems:
        raise CollisionError(
            "cannot make Spec names unique: existing Specs already collide (nothing was changed; "
            "destroy and delete, or delete with abandon, one Spec of each group, then start again):\n  "
            + "\n  ".join(problems)
        )

    with op.batch_alter_table("specs") as batch:
        batch.alter_column("workspace", existing_type=sa.String(255), nullable=False)
        batch.alter_column("cloud_account", existing_type=sa.String(96), nullable=False)
        batch.alter_column("resource_prefix", existing_type=sa.String(127), nullable=False)
        batch.create_unique_constraint("uq_specs_workspace_key", ["workspace"])
        batch.create_unique_constraint("uq_specs_cloud_names", ["cloud_account", "resource_prefix"])
    with op.batch_alter_table("spec_repositories") as batch:
        batch.alter_column("branch_key", existing_type=sa.String(64), nullable=False)
        batch.alter_column("owner_key", existing_type=sa.String(64), nullable=False)
        batch.alter_column("norm_path", existing_type=sa.Text(), nullable=False)
        batch.create_unique_constraint("uq_spec_repositories_owner_key", ["owner_key"])
        batch.create_index("ix_spec_repositories_branch_key", ["branch_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spec_repositories") as batch:
        batch.drop_index("ix_spec_repositories_branch_key")
        batch.drop_constraint("uq_spec_repositories_owner_key", type_="unique")
        batch.drop_column("norm_path")
        batch.drop_column("owner_key")
        batch.drop_column("branch_key")
    with op.batch_alter_table("specs") as batch:
        batch.drop_constraint("uq_specs_cloud_names", type_="unique")
        batch.drop_constraint("uq_specs_workspace_key", type_="unique")
        batch.drop_column("resource_prefix")
        batch.drop_column("cloud_account")
        batch.drop_column("workspace")
