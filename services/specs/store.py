"""Reads and writes of the spec service's own tables.

Every function takes the session (or, for the concurrent reads, the session factory);
the caller owns the transaction. Specs travel as the plain dicts of
:func:`alethia.specfile.spec_to_dict` (the proto field names, see docs/architecture.md), lists ordered by name
(repositories by url, branch, path) so the same Spec always reads back the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alethia import naming
from alethia.database import is_sqlite
from alethia.errors import Aborted, AlreadyExists, FieldViolation, NotFound
from services.specs.models import (
    COMPONENT_MODELS,
    Base,
    CacheRow,
    CloudIdentityRow,
    ClusterRow,
    DatabaseRow,
    DnsRow,
    NetworkRow,
    NosqlTableRow,
    QueueRow,
    RepositoryRow,
    SecretRow,
    SpecRow,
    StorageBucketRow,
    TopicRow,
)

# How often GetSpec retries its concurrent read when a writer commits in the middle of it,
# before it falls back to one consistent transaction.
CONCURRENT_READ_ATTEMPTS = 3


def workspace_key(spec: dict[str, Any]) -> str:
    """``{zone_id}/{project}-{env}-{region}``: the unit of state and of uniqueness."""
    return naming.workspace_key(spec["zone_id"], spec["project_name"], spec["environment"], spec["region"])


# --- cloud identities -------------------------------------------------------------------


async def insert_identity(
    session: AsyncSession, identity_id: str, identity: dict[str, Any], now: datetime
) -> CloudIdentityRow:
    """Insert a cloud identity; a taken name is ALREADY_EXISTS."""
    row = CloudIdentityRow(
        id=identity_id,
        name=identity["name"],
        provider=identity["provider"],
        account_id=identity["account_id"],
        credentials_ref=identity["credentials_ref"],
        create_time=now,
    )
    taken = await session.scalar(select(CloudIdentityRow.id).where(CloudIdentityRow.name == row.name))
    if taken is not None:
        raise AlreadyExists(f"a cloud identity named {row.name!r} already exists (id {taken})")
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same name
        raise AlreadyExists(f"a cloud identity named {row.name!r} already exists") from exc
    return row


async def get_identity(session: AsyncSession, identity_id: str) -> CloudIdentityRow | None:
    """The identity, or None."""
    return await session.get(CloudIdentityRow, identity_id)


async def list_identities(
    session: AsyncSession, after: tuple[datetime, str] | None, limit: int
) -> list[CloudIdentityRow]:
    """Identities in (create_time, id) order, strictly after the cursor."""
    stmt = select(CloudIdentityRow)
    if after is not None:
        stmt = stmt.where(_after(CloudIdentityRow.create_time, CloudIdentityRow.id, after))
    stmt = stmt.order_by(CloudIdentityRow.create_time, CloudIdentityRow.id).limit(limit)
    return list((await session.scalars(stmt)).all())


def identity_to_dict(row: CloudIdentityRow) -> dict[str, Any]:
    """The identity as a CloudIdentity dict (create_time as a datetime)."""
    return {
        "id": row.id,
        "name": row.name,
        "provider": row.provider,
        "account_id": row.account_id,
        "credentials_ref": row.credentials_ref,
        "create_time": row.create_time,
    }


def _after(time_col: Any, id_col: Any, after: tuple[datetime, str]) -> Any:
    # Spelled out instead of a row-value comparison: same plan on both dialects.
    t, i = after
    return or_(time_col > t, (time_col == t) & (id_col > i))


# --- specs: writes ----------------------------------------------------------------------


def component_rows(spec_id: str, spec: dict[str, Any]) -> list[Base]:
    """One row per component of the Spec dict (lists sorted as they will be read back)."""
    rows: list[Base] = []
    net = spec.get("network")
    if net is not None:
        rows.append(
            NetworkRow(
                spec_id=spec_id,
                provision_network=bool(net.get("provision_network")),
                cidr_block=net.get("cidr_block", ""),
                network_id=net.get("network_id", ""),
                provider_config=net.get("provider_config") or {},
            )
        )
    cl = spec.get("cluster")
    if cl is not None:
        rows.append(
            ClusterRow(
                spec_id=spec_id,
                cluster_version=cl.get("cluster_version", ""),
                instance_types=list(cl.get("instance_types") or []),
                node_min_size=cl.get("node_min_size", 0),
                node_max_size=cl.get("node_max_size", 0),
                node_desired_size=cl.get("node_desired_size", 0),
                cluster_admins=list(cl.get("cluster_admins") or []),
                provider_config=cl.get("provider_config") or {},
            )
        )
    dns = spec.get("dns")
    if dns is not None:
        rows.append(
            DnsRow(
                spec_id=spec_id,
                enabled=bool(dns.get("enabled")),
                zone_id=dns.get("zone_id", ""),
                domain_name=dns.get("domain_name", ""),
                provider_config=dns.get("provider_config") or {},
            )
        )
    repos = sorted(spec.get("repositories") or [], key=lambda r: (r["url"], r["branch"], r["path"]))
    rows += [
        RepositoryRow(
            spec_id=spec_id,
            position=i,
            url=r["url"],
            branch=r["branch"],
            path=r.get("path", ""),
            branch_key=naming.repository_branch_key(r["url"], r["branch"]),
            owner_key=naming.gitops_owner_key(r["url"], r["branch"], r.get("path", "")),
            norm_path=naming.normalize_repository_path(r.get("path", "")),
        )
        for i, r in enumerate(repos)
    ]
    for d in spec.get("databases") or []:
        scaling = d.get("scaling") or {}
        rows.append(
            DatabaseRow(
                spec_id=spec_id,
                name=d["name"],
                engine=d["engine"],
                engine_version=d.get("engine_version", ""),
                instance_class=d["instance_class"],
                storage_gb=d["storage_gb"],
                scaling_min_capacity=float(scaling.get("min_capacity", 0.0)),
                scaling_max_capacity=float(scaling.get("max_capacity", 0.0)),
                provider_config=d.get("provider_config") or {},
            )
        )
    rows += [
        CacheRow(
            spec_id=spec_id,
            name=c["name"],
            node_type=c["node_type"],
            cluster_size=c["cluster_size"],
            provider_config=c.get("provider_config") or {},
        )
        for c in spec.get("caches") or []
    ]
    rows += [
        QueueRow(spec_id=spec_id, name=q["name"], config=q.get("config") or {})
        for q in spec.get("queues") or []
    ]
    rows += [
        TopicRow(
            spec_id=spec_id,
            name=t["name"],
            subscriptions=sorted(
                (
                    {"name": s["name"], "protocol": s.get("protocol", ""), "endpoint": s.get("endpoint", "")}
                    for s in t.get("subscriptions") or []
                ),
                key=lambda s: s["name"],
            ),
        )
        for t in spec.get("topics") or []
    ]
    rows += [
        NosqlTableRow(
            spec_id=spec_id,
            name=t["name"],
            partition_key=t["partition_key"],
            sort_key=t.get("sort_key", ""),
            provider_config=t.get("provider_config") or {},
        )
        for t in spec.get("nosql_tables") or []
    ]
    rows += [
        StorageBucketRow(
            spec_id=spec_id,
            name=b["name"],
            versioning=bool(b.get("versioning")),
            provider_config=b.get("provider_config") or {},
        )
        for b in spec.get("storage_buckets") or []
    ]
    rows += [
        SecretRow(spec_id=spec_id, name=s["name"], metadata_=s.get("metadata") or {})
        for s in spec.get("secrets") or []
    ]
    return rows


async def find_workspace(session: AsyncSession, spec: dict[str, Any]) -> str | None:
    """The id of the Spec that holds the workspace of ``spec``, if any."""
    return await session.scalar(select(SpecRow.id).where(SpecRow.workspace == workspace_key(spec)))


def _advisory_key(key: str) -> int:
    # A signed 64-bit number from the hex digest, for pg_advisory_xact_lock.
    return int(key[:15], 16)


async def check_names(session: AsyncSession, spec_id: str, spec: dict[str, Any], account: str) -> None:
    """Refuse ``spec`` when another Spec already owns one of the names it would use.

    Checked in the write transaction, every problem at once, each naming its field and
    the owning Spec: the joined workspace key (Terraform state and lock), the resource
    name prefix in the cloud account, and each apps repository path (same or nested path
    in the same normalized repository and branch). The unique constraints hold the first
    three against a concurrent writer; nested paths cannot be a constraint, so on
    Postgres the writers of one repository branch are serialized by an advisory lock
    (SQLite's ``BEGIN IMMEDIATE`` already serializes all writers).
    """
    violations: list[FieldViolation] = []
    workspace = workspace_key(spec)
    found = (
        await session.execute(
            select(SpecRow.id, SpecRow.project_name, SpecRow.environment, SpecRow.region).where(
                SpecRow.workspace == workspace, SpecRow.id != spec_id
            )
        )
    ).first()
    if found is not None:
        violations.append(
            FieldViolation(
                "project_name",
                f"workspace {workspace} (the Terraform state key and lock) is held by Spec {found.id} "
                f"(project_name {found.project_name!r}, environment {found.environment!r}, "
                f"region {found.region!r}); choose another project_name or environment",
            )
        )
    prefix = naming.resource_prefix(spec["project_name"], spec["environment"])
    owner = (
        await session.execute(
            select(SpecRow.id, SpecRow.zone_id, SpecRow.region).where(
                SpecRow.cloud_account == account, SpecRow.resource_prefix == prefix, SpecRow.id != spec_id
            )
        )
    ).first()
    if owner is not None:
        violations.append(
            FieldViolation(
                "project_name",
                f"resource name prefix {prefix!r} (project_name-environment) is used in cloud account "
                f"{account} by Spec {owner.id} (zone {owner.zone_id}, region {owner.region}); "
                "cloud resource names would collide: choose another project_name or environment",
            )
        )
    violations += await _check_repositories(session, spec_id, spec)
    if violations:
        raise AlreadyExists("; ".join(str(v) for v in violations), violations)


async def _check_repositories(
    session: AsyncSession, spec_id: str, spec: dict[str, Any]
) -> list[FieldViolation]:
    repos = list(spec.get("repositories") or [])
    if not repos:
        return []
    entries = [
        (
            i,
            naming.repository_branch_key(r["url"], r["branch"]),
            naming.normalize_repository_path(r.get("path", "")),
        )
        for i, r in enumerate(repos)
    ]
    bind = session.bind
    if isinstance(bind, AsyncEngine) and not is_sqlite(bind):
        for key in sorted({k for _, k, _ in entries}):  # sorted: no deadlock between two writers
            await session.execute(select(func.pg_advisory_xact_lock(_advisory_key(key))))
    owned = (
        await session.execute(
            select(
                RepositoryRow.spec_id,
                RepositoryRow.position,
                RepositoryRow.branch_key,
                RepositoryRow.norm_path,
            )
            .where(
                RepositoryRow.branch_key.in_({k for _, k, _ in entries}),
                RepositoryRow.spec_id != spec_id,
            )
            .order_by(RepositoryRow.spec_id, RepositoryRow.position)
        )
    ).all()
    out: list[FieldViolation] = []
    for i, key, path in entries:
        repo = repos[i]
        where = f"{repo['url']} branch {repo['branch']}"
        for j, other_key, other_path in entries[:i]:
            if other_key == key and naming.paths_overlap(path, other_path):
                out.append(
                    FieldViolation(
                        f"repositories[{i}].path",
                        f"{path or '/'!r} overlaps repositories[{j}].path {other_path or '/'!r} in {where}",
                    )
                )
        for row in owned:
            if row.branch_key == key and naming.paths_overlap(path, row.norm_path):
                same = "is" if path == row.norm_path else f"overlaps {row.norm_path or '/'!r}, which is"
                out.append(
                    FieldViolation(
                        f"repositories[{i}].path",
                        f"{path or '/'!r} in {where} {same} owned by Spec {row.spec_id}; ArgoCD prunes "
                        "what one Spec does not write, so two Specs must never share a GitOps path",
                    )
                )
                break
    return out


async def insert_spec(
    session: AsyncSession, spec_id: str, spec: dict[str, Any], now: datetime, account: str
) -> tuple[SpecRow, list[Base]]:
    """Insert a Spec and all its components (revision 1); a taken name is ALREADY_EXISTS.

    ``account`` is :func:`alethia.naming.cloud_account` of the Spec's identity. Returns the
    rows written, from which the caller builds its answer without reading back.
    """
    await check_names(session, spec_id, spec, account)
    row = SpecRow(
        id=spec_id,
        zone_id=spec["zone_id"],
        project_name=spec["project_name"],
        environment=spec["environment"],
        region=spec["region"],
        workspace=workspace_key(spec),
        cloud_account=account,
        resource_prefix=naming.resource_prefix(spec["project_name"], spec["environment"]),
        cloud_identity_id=spec["cloud_identity_id"],
        terraform_version=spec.get("terraform_version", ""),
        revision=1,
        create_time=now,
        update_time=now,
    )
    session.add(row)
    components = component_rows(spec_id, spec)
    try:
        await session.flush()
        session.add_all(components)
        await session.flush()
    except IntegrityError as exc:  # a concurrent create took one of the names first
        taken = _race(exc)
        if taken is None:
            raise
        raise taken from exc
    return row, components


def _race(exc: IntegrityError) -> AlreadyExists | None:
    """A unique name taken by a concurrent writer after :func:`check_names` looked (None: another error)."""
    text = str(exc.orig)
    if "owner_key" in text:
        field, what = "repositories", "one of its GitOps paths"
    elif "cloud_names" in text or "resource_prefix" in text:
        field, what = "project_name", "its resource name prefix in this cloud account"
    elif "workspace" in text:
        field, what = "project_name", "its workspace"
    else:
        return None  # not a name: a real error, never disguised as ALREADY_EXISTS
    message = f"another Spec took {what} at the same moment; read the Specs again"
    return AlreadyExists(message, [FieldViolation(field, message)])


async def replace_spec(
    session: AsyncSession,
    spec_id: str,
    spec: dict[str, Any],
    expected_revision: int,
    now: datetime,
    account: str,
) -> list[Base]:
    """Replace the Spec's fields and components if its revision is still ``expected_revision``.

    The revision guard is in the UPDATE itself, so of two writers holding the same
    revision exactly one matches a row; the other gets ABORTED. The names it would take
    are checked first (:func:`check_names`). Returns the new components.
    """
    await check_names(session, spec_id, spec, account)
    try:
        result = await session.execute(
            update(SpecRow)
            .where(SpecRow.id == spec_id, SpecRow.revision == expected_revision)
            .values(
                revision=SpecRow.revision + 1,
                cloud_account=account,
                cloud_identity_id=spec["cloud_identity_id"],
                terraform_version=spec.get("terraform_version", ""),
                update_time=now,
            )
            .execution_options(synchronize_session=False)
        )
    except IntegrityError as exc:  # the new account's prefix was taken at the same moment
        taken = _race(exc)
        if taken is None:
            raise
        raise taken from exc
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        current = await session.scalar(select(SpecRow.revision).where(SpecRow.id == spec_id))
        if current is None:
            raise NotFound(f"spec {spec_id} not found")
        raise Aborted(
            f"spec {spec_id} is at revision {current}, not {expected_revision}: re-read it and retry"
        )
    for model in COMPONENT_MODELS:
        await session.execute(delete(model).where(model.spec_id == spec_id))
    components = component_rows(spec_id, spec)
    session.add_all(components)
    try:
        await session.flush()
    except IntegrityError as exc:
        taken = _race(exc)
        if taken is None:
            raise
        raise taken from exc
    return components


async def delete_spec(session: AsyncSession, spec_id: str, expected_revision: int) -> None:
    """Delete the Spec (components go with it: ON DELETE CASCADE); 0 = any revision."""
    stmt = delete(SpecRow).where(SpecRow.id == spec_id)
    if expected_revision:
        stmt = stmt.where(SpecRow.revision == expected_revision)
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        current = await session.scalar(select(SpecRow.revision).where(SpecRow.id == spec_id))
        if current is None:
            raise NotFound(f"spec {spec_id} not found")
        raise Aborted(
            f"spec {spec_id} is at revision {current}, not {expected_revision}: re-read it and retry"
        )


# --- specs: reads -----------------------------------------------------------------------


@dataclass
class SpecHead:
    """The ``specs`` row with its identity's provider and account (one query)."""

    row: SpecRow
    provider: str
    cloud_account_id: str


async def get_head(session: AsyncSession, spec_id: str) -> SpecHead | None:
    """The Spec's own row (and identity) or None."""
    res = await session.execute(
        select(SpecRow, CloudIdentityRow.provider, CloudIdentityRow.account_id)
        .join(CloudIdentityRow, CloudIdentityRow.id == SpecRow.cloud_identity_id)
        .where(SpecRow.id == spec_id)
    )
    found = res.first()
    return SpecHead(found[0], found[1], found[2]) if found else None


async def list_heads(
    session: AsyncSession,
    zone_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
    zones: Sequence[str] | None = None,
) -> list[SpecHead]:
    """Spec rows in (create_time, id) order strictly after the cursor, optionally of one zone
    and limited to ``zones`` (the caller's) when given."""
    stmt = select(SpecRow, CloudIdentityRow.provider, CloudIdentityRow.account_id).join(
        CloudIdentityRow, CloudIdentityRow.id == SpecRow.cloud_identity_id
    )
    if zone_id:
        stmt = stmt.where(SpecRow.zone_id == zone_id)
    if zones is not None:
        stmt = stmt.where(SpecRow.zone_id.in_(list(zones)))
    if after is not None:
        stmt = stmt.where(_after(SpecRow.create_time, SpecRow.id, after))
    stmt = stmt.order_by(SpecRow.create_time, SpecRow.id).limit(limit)
    return [SpecHead(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


async def current_revision(session: AsyncSession, spec_id: str) -> int | None:
    """The Spec's revision right now (None when it is gone)."""
    return await session.scalar(select(SpecRow.revision).where(SpecRow.id == spec_id))


async def count_rows(session: AsyncSession) -> dict[str, int]:
    """Row count of every table of the service (tests assert a refused write changed nothing)."""
    out: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        out[table.name] = int(await session.scalar(select(func.count()).select_from(table)) or 0)
    return out


Components = dict[str, dict[str, Any]]  # spec_id -> partial spec dict of its components


async def _load(session: AsyncSession, model: Any, spec_ids: Sequence[str]) -> list[Any]:
    # Core rows, not ORM objects: no identity map or instrumentation on the hot read path.
    table = model.__table__
    result = await session.execute(select(table).where(table.c.spec_id.in_(spec_ids)))
    return list(result.all())


def _merge(model: Any, rows: Iterable[Any], into: Components) -> None:
    """Turn one table's rows into the spec dict parts (ordered as documented)."""
    for r in rows:
        part = into.setdefault(r.spec_id, {})
        if model is NetworkRow:
            part["network"] = {
                "provision_network": r.provision_network,
                "cidr_block": r.cidr_block,
                "network_id": r.network_id,
                "provider_config": r.provider_config,
            }
        elif model is ClusterRow:
            part["cluster"] = {
                "cluster_version": r.cluster_version,
                "instance_types": list(r.instance_types),
                "node_min_size": r.node_min_size,
                "node_max_size": r.node_max_size,
                "node_desired_size": r.node_desired_size,
                "cluster_admins": list(r.cluster_admins),
                "provider_config": r.provider_config,
            }
        elif model is DnsRow:
            part["dns"] = {
                "enabled": r.enabled,
                "zone_id": r.zone_id,
                "domain_name": r.domain_name,
                "provider_config": r.provider_config,
            }
        elif model is RepositoryRow:
            part.setdefault("repositories", []).append(
                {"url": r.url, "branch": r.branch, "path": r.path, "_pos": r.position}
            )
        elif model is DatabaseRow:
            part.setdefault("databases", []).append(
                {
                    "name": r.name,
                    "engine": r.engine,
                    "engine_version": r.engine_version,
                    "instance_class": r.instance_class,
                    "storage_gb": r.storage_gb,
                    "scaling": {
                        "min_capacity": r.scaling_min_capacity,
                        "max_capacity": r.scaling_max_capacity,
                    },
                    "provider_config": r.provider_config,
                }
            )
        elif model is CacheRow:
            part.setdefault("caches", []).append(
                {
                    "name": r.name,
                    "node_type": r.node_type,
                    "cluster_size": r.cluster_size,
                    "provider_config": r.provider_config,
                }
            )
        elif model is QueueRow:
            part.setdefault("queues", []).append({"name": r.name, "config": r.config})
        elif model is TopicRow:
            part.setdefault("topics", []).append({"name": r.name, "subscriptions": list(r.subscriptions)})
        elif model is NosqlTableRow:
            part.setdefault("nosql_tables", []).append(
                {
                    "name": r.name,
                    "partition_key": r.partition_key,
                    "sort_key": r.sort_key,
                    "provider_config": r.provider_config,
                }
            )
        elif model is StorageBucketRow:
            part.setdefault("storage_buckets", []).append(
                {"name": r.name, "versioning": r.versioning, "provider_config": r.provider_config}
            )
        elif model is SecretRow:
            metadata = r.metadata_ if isinstance(r, SecretRow) else r._mapping["metadata"]
            part.setdefault("secrets", []).append({"name": r.name, "metadata": metadata})


def _sorted_parts(parts: Components) -> Components:
    # Sorted in Python, not in SQL: Postgres collations and SQLite's binary order differ.
    for part in parts.values():
        for key, items in part.items():
            if key == "repositories":
                items.sort(key=lambda r: r.pop("_pos"))
            elif isinstance(items, list):
                items.sort(key=lambda x: x["name"])
    return parts


def parts_from_rows(spec_id: str, rows: Iterable[Base]) -> dict[str, Any]:
    """The components of one Spec's freshly written rows, exactly as a read would give them."""
    parts: Components = {}
    for row in rows:
        _merge(type(row), [row], parts)
    return _sorted_parts(parts).get(spec_id, {})


async def read_components(session: AsyncSession, spec_ids: Sequence[str]) -> Components:
    """All components of the given Specs, one table after another in the caller's transaction."""
    parts: Components = {}
    for model in COMPONENT_MODELS:
        _merge(model, await _load(session, model, spec_ids), parts)
    return _sorted_parts(parts)


async def read_components_concurrently(
    sessions: async_sessionmaker[AsyncSession], spec_ids: Sequence[str]
) -> Components:
    """All components of the given Specs, every table on its own connection at the same time."""

    async def one(model: Any) -> tuple[Any, list[Any]]:
        async with sessions() as session:
            return model, await _load(session, model, spec_ids)

    parts: Components = {}
    for model, rows in await asyncio.gather(*(one(m) for m in COMPONENT_MODELS)):
        _merge(model, rows, parts)
    return _sorted_parts(parts)


def assemble(head: SpecHead, part: dict[str, Any]) -> dict[str, Any]:
    """The full Spec dict: the row, its identity's provider/account, and its components."""
    row = head.row
    spec: dict[str, Any] = {
        "id": row.id,
        "revision": row.revision,
        "zone_id": row.zone_id,
        "project_name": row.project_name,
        "environment": row.environment,
        "region": row.region,
        "cloud_identity_id": row.cloud_identity_id,
        "terraform_version": row.terraform_version,
        "provider": head.provider,
        "cloud_account_id": head.cloud_account_id,
        "create_time": row.create_time,
        "update_time": row.update_time,
    }
    for key in ("network", "cluster", "dns"):
        if key in part:
            spec[key] = part[key]
    for key in (
        "repositories",
        "databases",
        "caches",
        "queues",
        "topics",
        "nosql_tables",
        "storage_buckets",
        "secrets",
    ):
        spec[key] = part.get(key, [])
    return spec
