"""The spec service's tables (SQLAlchemy 2 declarative), identical on Postgres and SQLite.

``specs`` holds the workspace (zone, project, environment, region), the cloud identity
and the revision, plus the names derived from them (:mod:`alethia.naming`) on which
uniqueness actually matters: the joined ``workspace`` key (state, lock) is unique, and so
is the resource name prefix within a cloud account. ``spec_repositories`` carries the
GitOps ownership key of each entry (unique across Specs); each component lives in its own table keyed by ``spec_id``
with ``ON DELETE CASCADE``, so deleting a Spec deletes its components. JSON columns are
JSONB on Postgres. No relationships are declared: the store reads each table with its
own query (concurrently), so nothing can lazy-load by accident in async code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alethia.database import JSONType

# Named constraints so Alembic migrations and error handling can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares the stored text: keep one naive UTC format so ordering is right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}


def _spec_fk() -> Any:
    return ForeignKey("specs.id", ondelete="CASCADE")


class CloudIdentityRow(Base):
    __tablename__ = "cloud_identities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(64))
    credentials_ref: Mapped[str] = mapped_column(String(512))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class SpecRow(Base):
    __tablename__ = "specs"
    __table_args__ = (
        UniqueConstraint("zone_id", "project_name", "environment", "region", name="uq_specs_workspace"),
        # The joined key is what names the state and its lock: unique on it, not only on its parts.
        UniqueConstraint("workspace", name="uq_specs_workspace_key"),
        UniqueConstraint("cloud_account", "resource_prefix", name="uq_specs_cloud_names"),
        Index("ix_specs_list", "create_time", "id"),
        Index("ix_specs_zone_list", "zone_id", "create_time", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(63))
    project_name: Mapped[str] = mapped_column(String(63))
    environment: Mapped[str] = mapped_column(String(63))
    region: Mapped[str] = mapped_column(String(63))
    workspace: Mapped[str] = mapped_column(String(255))
    cloud_account: Mapped[str] = mapped_column(String(96))
    resource_prefix: Mapped[str] = mapped_column(String(127))
    cloud_identity_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("cloud_identities.id", ondelete="RESTRICT"), index=True
    )
    terraform_version: Mapped[str] = mapped_column(String(128), default="")
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[datetime] = mapped_column(UTCDateTime())


class NetworkRow(Base):
    __tablename__ = "spec_network"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    provision_network: Mapped[bool] = mapped_column(Boolean)
    cidr_block: Mapped[str] = mapped_column(String(64), default="")
    network_id: Mapped[str] = mapped_column(Text, default="")
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ClusterRow(Base):
    __tablename__ = "spec_cluster"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    cluster_version: Mapped[str] = mapped_column(String(16))
    instance_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    node_min_size: Mapped[int] = mapped_column(Integer)
    node_max_size: Mapped[int] = mapped_column(Integer)
    node_desired_size: Mapped[int] = mapped_column(Integer)
    cluster_admins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class DnsRow(Base):
    __tablename__ = "spec_dns"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    zone_id: Mapped[str] = mapped_column(String(128), default="")
    domain_name: Mapped[str] = mapped_column(Text, default="")
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class RepositoryRow(Base):
    __tablename__ = "spec_repositories"
    __table_args__ = (
        UniqueConstraint("owner_key", name="uq_spec_repositories_owner_key"),
        Index("ix_spec_repositories_branch_key", "branch_key"),
    )

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text, default="")
    # alethia.naming: sha256 of the normalized (url, branch) and (url, branch, path).
    branch_key: Mapped[str] = mapped_column(String(64))
    owner_key: Mapped[str] = mapped_column(String(64))
    norm_path: Mapped[str] = mapped_column(Text, default="")


class DatabaseRow(Base):
    __tablename__ = "spec_databases"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    engine: Mapped[str] = mapped_column(String(32))
    engine_version: Mapped[str] = mapped_column(String(32), default="")
    instance_class: Mapped[str] = mapped_column(String(64))
    storage_gb: Mapped[int] = mapped_column(Integer)
    scaling_min_capacity: Mapped[float] = mapped_column(Float)
    scaling_max_capacity: Mapped[float] = mapped_column(Float)
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class CacheRow(Base):
    __tablename__ = "spec_caches"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    node_type: Mapped[str] = mapped_column(String(64))
    cluster_size: Mapped[int] = mapped_column(Integer)
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class QueueRow(Base):
    __tablename__ = "spec_queues"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TopicRow(Base):
    __tablename__ = "spec_topics"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    subscriptions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)


class NosqlTableRow(Base):
    __tablename__ = "spec_nosql_tables"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    partition_key: Mapped[str] = mapped_column(String(255))
    sort_key: Mapped[str] = mapped_column(String(255), default="")
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class StorageBucketRow(Base):
    __tablename__ = "spec_storage_buckets"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    versioning: Mapped[bool] = mapped_column(Boolean)
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SecretRow(Base):
    """A secret's name and metadata only; there is deliberately no column for a value."""

    __tablename__ = "spec_secrets"

    spec_id: Mapped[str] = mapped_column(String(36), _spec_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)


# Every table of the service, specs first (tests count their rows).
ALL_TABLES = [t.name for t in Base.metadata.sorted_tables]
COMPONENT_MODELS = (
    NetworkRow,
    ClusterRow,
    DnsRow,
    RepositoryRow,
    DatabaseRow,
    CacheRow,
    QueueRow,
    TopicRow,
    NosqlTableRow,
    StorageBucketRow,
    SecretRow,
)
