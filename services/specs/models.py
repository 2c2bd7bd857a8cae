"""The spec service's tables (SQLAlchemy 2 declarative), identical on Postgres and SQLite.

``specs`` holds the Spec's own scalar fields (workspace parts, cloud identity, Terraform
version: columns derived from the declaration, like the component tables) and the
revision, plus the names derived from them (:mod:`alethia.naming`) on which
uniqueness actually matters: the joined ``workspace`` key (state, lock) is unique, and so
is the resource name prefix within a cloud account. ``spec_repositories`` carries the
GitOps ownership key of each entry (unique across Specs); each component lives in its own table keyed by ``spec_id``
with ``ON DELETE CASCADE``, so deleting a Spec deletes its components. The component
tables are derived from the Spec declaration (:mod:`alethia.spec_schema`): adding a
field to the proto adds its column here, and needs one Alembic migration. JSON columns are
JSONB on Postgres. No relationships are declared: the store reads each table with its
own query (concurrently), so nothing can lazy-load by accident in async code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alethia import spec_schema
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


def _column_type(col: spec_schema.Column) -> Any:
    if col.kind == "string":
        return String(col.max_length) if col.max_length else Text
    return {
        "bool": Boolean,
        "int": Integer,
        "bigint": BigInteger,
        "float": Float,
        "json": JSONType,
    }[col.kind]


# What the database adds to a declared Spec field of the ``specs`` row (not part of its shape).
SPEC_FIELD_EXTRAS: dict[str, dict[str, Any]] = {
    # A Spec's identity cannot be deleted from under it; Specs are looked up by identity.
    "cloud_identity_id": {"args": (ForeignKey("cloud_identities.id", ondelete="RESTRICT"),), "index": True},
}


def _spec_field_columns() -> type:
    """A mixin with the Spec's own scalar fields as columns of ``specs``, from the declaration.

    As the component tables are: a field added to the proto gets its column (type, width,
    NOT NULL, the declared default) without being written out here again.
    """
    columns: dict[str, Any] = {}
    for col in spec_schema.SPEC_COLUMNS:
        extras = SPEC_FIELD_EXTRAS.get(col.name, {})
        columns[col.name] = mapped_column(
            _column_type(col),
            *extras.get("args", ()),
            nullable=False,
            index=extras.get("index", False),
            default=spec_schema.default_of(col.field),
        )
    return type("SpecFieldColumns", (), columns)


# Any for the type checker: these attributes exist only once the declaration is read, so
# mypy types SpecRow's Spec fields as Any (the service's own columns below stay typed).
SpecFieldColumns: Any = _spec_field_columns()


class SpecRow(SpecFieldColumns, Base):
    """One Spec: its own scalar fields (:data:`SpecFieldColumns`, from the declaration) plus
    what the service keeps next to them: the joined names it holds unique, the revision and
    the times."""

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
    workspace: Mapped[str] = mapped_column(String(255))
    cloud_account: Mapped[str] = mapped_column(String(96))
    resource_prefix: Mapped[str] = mapped_column(String(127))
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[datetime] = mapped_column(UTCDateTime())


# Columns (and their constraints) the service derives and keeps next to a component's
# declared fields: not Spec fields, so they are declared here, not in the proto.
SERVICE_COLUMNS: dict[str, tuple[Any, ...]] = {
    "repositories": (
        # alethia.naming: sha256 of the normalized (url, branch) and (url, branch, path).
        Column("branch_key", String(64), nullable=False),
        Column("owner_key", String(64), nullable=False),
        Column("norm_path", Text, nullable=False),
        UniqueConstraint("owner_key", name="uq_spec_repositories_owner_key"),
        # The overlap check's lookups (store.holders_statement): a branch's entries, and the
        # paths of one branch within a byte range (text_pattern_ops: whatever the collation).
        Index(
            "ix_spec_repositories_branch_path",
            "branch_key",
            "norm_path",
            postgresql_ops={"norm_path": "text_pattern_ops"},
        ),
    ),
}


def _component_table(comp: spec_schema.Component) -> Table:
    """The table of one Spec component, from the Spec declaration (alethia/spec_schema.py).

    Keyed by ``spec_id`` (one-row components), ``(spec_id, name)`` (named list items) or
    ``(spec_id, position)`` (other list items); ``ON DELETE CASCADE`` from ``specs``.
    """
    columns: list[Any] = [
        Column("spec_id", String(36), ForeignKey("specs.id", ondelete="CASCADE"), primary_key=True)
    ]
    if comp.has_position:
        columns.append(Column("position", Integer, primary_key=True))
    for col in comp.columns:
        columns.append(Column(col.name, _column_type(col), primary_key=col.key, nullable=False))
    columns += SERVICE_COLUMNS.get(comp.field, ())
    return Table(comp.table, Base.metadata, *columns)


# One table per component of the Spec, in declaration order.
COMPONENT_TABLES: dict[str, Table] = {c.field: _component_table(c) for c in spec_schema.COMPONENTS}

# Every table of the service, specs first (tests count their rows).
ALL_TABLES = [t.name for t in Base.metadata.sorted_tables]
