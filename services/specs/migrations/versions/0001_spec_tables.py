"""The spec service's tables: specs, cloud identities and one table per component.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 08:53:11.808653
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# JSONB on Postgres, JSON text on SQLite (frozen here: the migration must not follow later model edits).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('cloud_identities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('credentials_ref', sa.String(length=512), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cloud_identities')),
    sa.UniqueConstraint('name', name=op.f('uq_cloud_identities_name'))
    )
    op.create_table('specs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=63), nullable=False),
    sa.Column('project_name', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('region', sa.String(length=63), nullable=False),
    sa.Column('cloud_identity_id', sa.String(length=36), nullable=False),
    sa.Column('terraform_version', sa.String(length=128), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cloud_identity_id'], ['cloud_identities.id'], name=op.f('fk_specs_cloud_identity_id_cloud_identities'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_specs')),
    sa.UniqueConstraint('zone_id', 'project_name', 'environment', 'region', name='uq_specs_workspace')
    )
    with op.batch_alter_table('specs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_specs_cloud_identity_id'), ['cloud_identity_id'], unique=False)
        batch_op.create_index('ix_specs_list', ['create_time', 'id'], unique=False)
        batch_op.create_index('ix_specs_zone_list', ['zone_id', 'create_time', 'id'], unique=False)

    op.create_table('spec_caches',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('node_type', sa.String(length=64), nullable=False),
    sa.Column('cluster_size', sa.Integer(), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_caches_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_caches'))
    )
    op.create_table('spec_cluster',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('cluster_version', sa.String(length=16), nullable=False),
    sa.Column('instance_types', JSON, nullable=False),
    sa.Column('node_min_size', sa.Integer(), nullable=False),
    sa.Column('node_max_size', sa.Integer(), nullable=False),
    sa.Column('node_desired_size', sa.Integer(), nullable=False),
    sa.Column('cluster_admins', JSON, nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_cluster_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', name=op.f('pk_spec_cluster'))
    )
    op.create_table('spec_databases',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=False),
    sa.Column('engine_version', sa.String(length=32), nullable=False),
    sa.Column('instance_class', sa.String(length=64), nullable=False),
    sa.Column('storage_gb', sa.Integer(), nullable=False),
    sa.Column('scaling_min_capacity', sa.Float(), nullable=False),
    sa.Column('scaling_max_capacity', sa.Float(), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_databases_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_databases'))
    )
    op.create_table('spec_dns',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('zone_id', sa.String(length=128), nullable=False),
    sa.Column('domain_name', sa.Text(), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_dns_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', name=op.f('pk_spec_dns'))
    )
    op.create_table('spec_network',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('provision_network', sa.Boolean(), nullable=False),
    sa.Column('cidr_block', sa.String(length=64), nullable=False),
    sa.Column('network_id', sa.Text(), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_network_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', name=op.f('pk_spec_network'))
    )
    op.create_table('spec_nosql_tables',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('partition_key', sa.String(length=255), nullable=False),
    sa.Column('sort_key', sa.String(length=255), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_nosql_tables_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_nosql_tables'))
    )
    op.create_table('spec_queues',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_queues_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_queues'))
    )
    op.create_table('spec_repositories',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_repositories_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'position', name=op.f('pk_spec_repositories'))
    )
    op.create_table('spec_secrets',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_secrets_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_secrets'))
    )
    op.create_table('spec_storage_buckets',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('versioning', sa.Boolean(), nullable=False),
    sa.Column('provider_config', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_storage_buckets_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_storage_buckets'))
    )
    op.create_table('spec_topics',
    sa.Column('spec_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('subscriptions', JSON, nullable=False),
    sa.ForeignKeyConstraint(['spec_id'], ['specs.id'], name=op.f('fk_spec_topics_spec_id_specs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spec_id', 'name', name=op.f('pk_spec_topics'))
    )


def downgrade() -> None:
    op.drop_table('spec_topics')
    op.drop_table('spec_storage_buckets')
    op.drop_table('spec_secrets')
    op.drop_table('spec_repositories')
    op.drop_table('spec_queues')
    op.drop_table('spec_nosql_tables')
    op.drop_table('spec_network')
    op.drop_table('spec_dns')
    op.drop_table('spec_databases')
    op.drop_table('spec_cluster')
    op.drop_table('spec_caches')
    with op.batch_alter_table('specs', schema=None) as batch_op:
        batch_op.drop_index('ix_specs_zone_list')
        batch_op.drop_index('ix_specs_list')
        batch_op.drop_index(batch_op.f('ix_specs_cloud_identity_id'))

    op.drop_table('specs')
    op.drop_table('cloud_identities')
