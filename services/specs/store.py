"""Reads and writes of the spec service's own tables.

Every function takes the session (or, for the concurrent reads, the session factory);
the caller owns the transaction. Specs travel as the plain dicts of
:func:`alethia.specfile.spec_to_dict` (the proto field names, see docs/architecture.md), lists ordered by name
(repositories by url, branch, path) so the same Spec always reads back the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    JSON,
    Dialect,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alethia import naming, spec_schema
from alethia.database import driver_connection, end_failed, is_sqlite, pg_fetch, sqlite_error
from alethia.errors import Aborted, AlreadyExists, FieldViolation, NotFound
from services.specs.models import COMPONENT_TABLES, Base, CloudIdentityRow, SpecRow


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


ComponentRows = list[tuple[Table, list[dict[str, Any]]]]


def component_rows(spec_id: str, spec: dict[str, Any]) -> ComponentRows:
    """The rows of every component of the Spec dict, per table (lists in their one order).

    The declared fields come from :mod:`alethia.spec_schema`; the service adds the columns
    it derives (``models.SERVICE_COLUMNS``): the GitOps keys of each repository entry.
    """
    out: ComponentRows = []
    for comp, rows in spec_schema.component_rows(spec):
        if not rows:
            continue
        if comp.field == "repositories":
            for r in rows:
                r["branch_key"] = naming.repository_branch_key(r["url"], r["branch"])
                r["owner_key"] = naming.gitops_owner_key(r["url"], r["branch"], r["path"])
                r["norm_path"] = naming.normalize_repository_path(r["path"])
        out.append((COMPONENT_TABLES[comp.field], [{"spec_id": spec_id, **row} for row in rows]))
    return out


# One INSERT per table, built once: a statement object keeps its cache key, a fresh
# ``insert(table)`` per call computed it again every time.
_INSERTS: dict[str, Any] = {}


def _insert_of(table: Table) -> Any:
    stmt = _INSERTS.get(table.name)
    if stmt is None:
        stmt = _INSERTS[table.name] = insert(table)
    return stmt


async def _insert_components(session: AsyncSession, rows: ComponentRows) -> None:
    for table, values in rows:
        await session.execute(_insert_of(table), values)


def _advisory_key(key: str) -> int:
    # A signed 64-bit number from the hex digest, for pg_advisory_xact_lock.
    return int(key[:15], 16)


# --- specs: the names a Spec holds --------------------------------------------------------


@dataclass(frozen=True)
class NameClaims:
    """The names a Spec would hold (alethia.naming), and the statement finding who holds them now.

    ``entries``: (index in the request, branch key, normalized path) of each repository entry.
    """

    spec_id: str
    workspace: str
    account: str
    prefix: str
    repos: list[dict[str, Any]]
    entries: list[tuple[int, str, str]]

    def lock_keys(self) -> list[int]:
        """Postgres advisory lock keys of the repository branches, sorted: no deadlock between two writers."""
        return [_advisory_key(k) for k in sorted({k for _, k, _ in self.entries})]


def name_claims(spec_id: str, spec: dict[str, Any], account: str) -> NameClaims:
    """The names ``spec`` (stored as ``spec_id`` in cloud account ``account``) would hold."""
    repos = list(spec.get("repositories") or [])
    return NameClaims(
        spec_id=spec_id,
        workspace=workspace_key(spec),
        account=account,
        prefix=naming.resource_prefix(spec["project_name"], spec["environment"]),
        repos=repos,
        entries=[
            (
                i,
                naming.repository_branch_key(r["url"], r["branch"]),
                naming.normalize_repository_path(r.get("path", "")),
            )
            for i, r in enumerate(repos)
        ],
    )


def _ancestors(path: str) -> list[str]:
    """The paths that contain ``path`` or are it: the root, each parent, itself."""
    segments = path.split("/")
    return ["", *("/".join(segments[: i + 1]) for i in range(len(segments)))]


def _below(path: str) -> tuple[str, str]:
    """The byte range of every path strictly below ``path``: from ``path/`` up to ``path0``
    (``0`` follows ``/``), compared as bytes (see :func:`_holders_sql`)."""
    return path + "/", path + "0"


# The holders statement by (dialect, shape of the repository entries): generated once each.
_HOLDERS_SQL: dict[tuple[bool, tuple[int, ...]], str] = {}


def _holders_sql(pg: bool, shape: tuple[int, ...]) -> str:
    """Both unique names' holders and the repository paths that may overlap, in ONE statement.

    ``shape``: per repository entry, how many ancestor paths it has (0: the root). Rows are
    ``(kind, spec id, zone, project, environment, region, workspace, account, prefix,
    position, branch key, path)``: kind 0 a ``specs`` row holding the workspace or the
    prefix in the account (at most one of each: unique constraints), kind 1 a repository
    entry of another Spec whose path may overlap, ordered by Spec id and position.

    The path part is a prefilter: its ancestors, itself, or below it; :func:`name_violations`
    still decides. "Below it" is a byte range of ``norm_path``, which the index on
    ``(branch_key, norm_path)`` answers (Postgres: ``~>=~``/``~<~``, the operators of its
    ``text_pattern_ops``, byte order whatever the collation; SQLite: ``>=``/``<`` in its
    BINARY collation). A ``LIKE 'p/%'`` there was not served by the index (the pattern is a
    parameter, and the column's collation is not bytewise in general), so each write read
    every entry of the branch: all of a company's Specs when they share one apps repository.
    """
    n = 0

    def arg() -> str:
        nonlocal n
        n += 1
        return f"${n}" if pg else "?"

    sql = (
        "SELECT 0, id, zone_id, project_name, environment, region, workspace, cloud_account, "
        f"resource_prefix, NULL, NULL, NULL FROM specs WHERE id <> {arg()} AND "
        f"(workspace = {arg()} OR (cloud_account = {arg()} AND resource_prefix = {arg()}))"
    )
    if shape:
        # Placeholders in the order they appear in the text (SQLite's ``?`` are positional).
        other = arg()
        conditions = []
        for ancestors in shape:
            if not ancestors:  # the root overlaps everything in its branch
                conditions.append(f"branch_key = {arg()}")
                continue
            # Two OR terms, each an index range of its own (SQLite's OR optimization needs
            # that; one term with an inner OR searches by branch_key alone).
            key = arg()
            within = ", ".join(arg() for _ in range(ancestors))
            conditions.append(f"(branch_key = {key} AND norm_path IN ({within}))")
            ge, lt = ("~>=~", "~<~") if pg else (">=", "<")
            conditions.append(f"(branch_key = {arg()} AND norm_path {ge} {arg()} AND norm_path {lt} {arg()})")
        sql += (
            " UNION ALL SELECT 1, spec_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, position, "
            f"branch_key, norm_path FROM spec_repositories WHERE spec_id <> {other} AND "
            f"({' OR '.join(conditions)})"
        )
    return sql + " ORDER BY 1, 2, 10"


def holders_statement(claims: NameClaims, pg: bool) -> tuple[str, list[Any]]:
    """The SQL of :func:`_holders_sql` for these claims, and its arguments."""
    args: list[Any] = [claims.spec_id, claims.workspace, claims.account, claims.prefix]
    if claims.entries:
        args.append(claims.spec_id)
    shape: list[int] = []
    for _, key, path in claims.entries:
        if not path:
            shape.append(0)
            args.append(key)
            continue
        ancestors = _ancestors(path)
        shape.append(len(ancestors))
        args += [key, *ancestors, key, *_below(path)]
    cache_key = (pg, tuple(shape))
    sql = _HOLDERS_SQL.get(cache_key)
    if sql is None:
        sql = _holders_sql(pg, cache_key[1])
        if len(_HOLDERS_SQL) < 1000:  # shapes are few (entries and path depths); a bound anyway
            _HOLDERS_SQL[cache_key] = sql
    return sql, args


def name_violations(claims: NameClaims, rows: Iterable[Sequence[Any]]) -> list[FieldViolation]:
    """Every name of ``claims`` that another Spec already holds (rows of :func:`holders_statement`).

    Pure: each violation names its field and the owning Spec: the joined workspace key
    (Terraform state and lock), the resource name prefix in the cloud account, and each
    apps repository path (same or nested path in the same normalized repository and
    branch, also against the Spec's own other entries).
    """
    holders: list[Sequence[Any]] = []
    owned: list[Sequence[Any]] = []
    for r in rows:
        (holders if r[0] == 0 else owned).append(r)
    violations: list[FieldViolation] = []
    workspace, account, prefix = claims.workspace, claims.account, claims.prefix
    found = next((h for h in holders if h[6] == workspace), None)
    if found is not None:
        violations.append(
            FieldViolation(
                "project_name",
                f"workspace {workspace} (the Terraform state key and lock) is held by Spec {found[1]} "
                f"(project_name {found[3]!r}, environment {found[4]!r}, "
                f"region {found[5]!r}); choose another project_name or environment",
            )
        )
    owner = next((h for h in holders if h[7] == account and h[8] == prefix), None)
    if owner is not None:
        violations.append(
            FieldViolation(
                "project_name",
                f"resource name prefix {prefix!r} (project_name-environment) is used in cloud account "
                f"{account} by Spec {owner[1]} (zone {owner[2]}, region {owner[5]}); "
                "cloud resource names would collide: choose another project_name or environment",
            )
        )
    entries = claims.entries
    for i, key, path in entries:
        repo = claims.repos[i]
        where = f"{repo['url']} branch {repo['branch']}"
        for j, other_key, other_path in entries[:i]:
            if other_key == key and naming.paths_overlap(path, other_path):
                violations.append(
                    FieldViolation(
                        f"repositories[{i}].path",
                        f"{path or '/'!r} overlaps repositories[{j}].path {other_path or '/'!r} in {where}",
                    )
                )
        for row in owned:
            spec_id, branch_key, norm_path = row[1], row[10], row[11]
            if branch_key == key and naming.paths_overlap(path, norm_path):
                same = "is" if path == norm_path else f"overlaps {norm_path or '/'!r}, which is"
                violations.append(
                    FieldViolation(
                        f"repositories[{i}].path",
                        f"{path or '/'!r} in {where} {same} owned by Spec {spec_id}; ArgoCD prunes "
                        "what one Spec does not write, so two Specs must never share a GitOps path",
                    )
                )
                break
    return violations


def _refuse(violations: list[FieldViolation]) -> None:
    if violations:
        raise AlreadyExists("; ".join(str(v) for v in violations), violations)


async def check_names(session: AsyncSession, spec_id: str, spec: dict[str, Any], account: str) -> None:
    """Refuse ``spec`` when another Spec already owns one of the names it would use.

    Checked in the write transaction, every problem at once (:func:`name_violations`). The
    unique constraints hold the workspace, the prefix and the exact path against a
    concurrent writer; nested paths cannot be a constraint, so on Postgres the writers of
    one repository branch are serialized by an advisory lock taken before the paths are
    read (SQLite's ``BEGIN IMMEDIATE`` already serializes all writers).
    """
    claims = name_claims(spec_id, spec, account)
    pg = _is_pg(session)
    if pg:
        for key in claims.lock_keys():
            await session.execute(select(func.pg_advisory_xact_lock(key)))
    sql, args = holders_statement(claims, pg)
    conn = await session.connection()
    rows = (await conn.exec_driver_sql(sql, tuple(args))).all()
    _refuse(name_violations(claims, rows))


def _is_pg(session: AsyncSession) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


# --- specs: writes ----------------------------------------------------------------------


def spec_values(spec_id: str, spec: dict[str, Any], now: datetime, account: str) -> dict[str, Any]:
    """The ``specs`` row of a new Spec (revision 1), by column."""
    return {
        "id": spec_id,
        # The Spec's own fields, as declared (spec_schema.SPEC_COLUMNS; all strings, "" when unset).
        **{col.name: spec.get(col.name, "") for col in spec_schema.SPEC_COLUMNS},
        "workspace": workspace_key(spec),
        "cloud_account": account,
        "resource_prefix": naming.resource_prefix(spec["project_name"], spec["environment"]),
        "revision": 1,
        "create_time": now,
        "update_time": now,
    }


async def insert_spec(
    engine: AsyncEngine, spec_id: str, spec: dict[str, Any], now: datetime, account: str
) -> tuple[dict[str, Any], ComponentRows]:
    """Insert a Spec and all its components (revision 1) in one transaction of its own.

    A name another Spec holds is ALREADY_EXISTS (:func:`name_violations`), and nothing is
    written. ``account`` is :func:`alethia.naming.cloud_account` of the Spec's identity.
    Returns the ``specs`` row and the component rows written, from which the caller builds
    its answer without reading back.

    The transaction runs on the driver connection of a pooled connection, not through a
    session: the statements are generated once per shape and their arguments bound by the
    columns' own SQLAlchemy types (:func:`_binders`), so what is stored is what the ORM
    would store, at a fraction of its CPU (Postgres) and of its thread hops (SQLite).
    """
    values = spec_values(spec_id, spec, now, account)
    components = component_rows(spec_id, spec)
    claims = name_claims(spec_id, spec, account)
    async with driver_connection(engine) as driver:
        if is_sqlite(engine):
            await _insert_sqlite(driver, engine.dialect, claims, values, components)
        else:
            await _insert_pg(driver, engine.dialect, claims, values, components)
    return values, components


async def _insert_pg(
    driver: Any, dialect: Dialect, claims: NameClaims, values: dict[str, Any], components: ComponentRows
) -> None:
    """Postgres: BEGIN and the advisory locks, the holders (one statement), the insert (one).

    Four round trips after the checkout: BEGIN with the locks (one simple-query message:
    the keys are integers computed here), holders, insert, COMMIT. The locks precede the
    holders' statement: a statement reads the snapshot taken when it starts, so paths read
    in the statement that waited for a lock could miss the writer it waited for.
    """
    holders_sql, holders_args = holders_statement(claims, pg=True)
    insert_sql, insert_args = _one_insert(dialect, values, components)
    begin = "BEGIN;" + "".join(f" SELECT pg_advisory_xact_lock({key});" for key in claims.lock_keys())
    try:
        await driver.execute(begin)
        _refuse(name_violations(claims, await driver.fetch(holders_sql, *holders_args)))
        await driver.execute(insert_sql, *insert_args)
        await driver.execute("COMMIT")
    except BaseException as exc:
        await end_failed(driver, exc)
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            # A concurrent create took one of the names after the holders were read.
            error = IntegrityError(insert_sql, None, exc)
            raise (_race(error) or error) from exc
        raise


async def _insert_sqlite(
    driver: Any, dialect: Dialect, claims: NameClaims, values: dict[str, Any], components: ComponentRows
) -> None:
    """SQLite: the whole transaction as ONE call in the driver's thread.

    aiosqlite runs every call in its connection's thread, and each one is a hop there and
    back (SQLAlchemy's adapter makes three or four per statement: ~50 for this write). Here
    ``BEGIN IMMEDIATE`` (writers serialized, as :func:`alethia.database.begin_write` does),
    the holders, the check and every INSERT run in one hop (aiosqlite's ``_execute``: the
    one way into that thread; ``_conn`` is its sqlite3 connection).
    """
    holders_sql, holders_args = holders_statement(claims, pg=False)
    inserts = _sqlite_inserts(dialect, values, components)

    def write() -> list[FieldViolation]:
        conn = driver._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            violations = name_violations(claims, conn.execute(holders_sql, holders_args).fetchall())
            if not violations:
                for sql, rows in inserts:
                    conn.executemany(sql, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("ROLLBACK" if violations else "COMMIT")
        return violations

    try:
        violations = await driver._execute(write)
    except sqlite3.Error as exc:
        error = sqlite_error(exc)
        taken = _race(error) if isinstance(error, IntegrityError) else None
        raise (taken or error) from exc
    _refuse(violations)


# Per dialect and table: the SQLAlchemy bind processor of each column (None: the value as is).
_BINDERS: dict[tuple[str, str], dict[str, Callable[[Any], Any] | None]] = {}


def _binders(dialect: Dialect, table: Table) -> dict[str, Callable[[Any], Any] | None]:
    """What each column's type does to a value before the driver sees it (JSON to text,
    times to UTC, SQLite's time format), taken from the types themselves."""
    key = (dialect.name, table.name)
    found = _BINDERS.get(key)
    if found is None:
        found = _BINDERS[key] = {
            c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns
        }
    return found


def _bound(dialect: Dialect, table: Table, rows: list[dict[str, Any]]) -> Iterable[list[Any]]:
    binders = _binders(dialect, table)
    for row in rows:
        yield [v if (b := binders[c]) is None else b(v) for c, v in row.items()]


# The one-statement insert's SQL, by shape (columns and rows per table): generated once per
# shape. Built as SQLAlchemy Core, the multi-row VALUES were compiled again on every call
# (such statements are not cached), which cost more CPU than the round trips it saves.
_ONE_INSERTS: dict[tuple[Any, ...], str] = {}


def _one_insert(dialect: Dialect, head: dict[str, Any], components: ComponentRows) -> tuple[str, list[Any]]:
    """Postgres: the ``specs`` row and every component row as ONE statement, and its arguments.

    Each component table's rows are a data-modifying CTE of the ``specs`` INSERT; Postgres
    checks the foreign keys at the end of the statement, so the children may come with
    their parent: one round trip where a statement per table took twelve.
    """
    specs_table = SpecRow.__table__
    assert isinstance(specs_table, Table)
    parts: list[tuple[Table, list[dict[str, Any]]]] = [(specs_table, [head]), *components]
    shape = tuple((t.name, tuple(rows[0]), len(rows)) for t, rows in parts)
    sql = _ONE_INSERTS.get(shape)
    if sql is None:
        n = 0
        statements: list[str] = []
        for t, rows in parts:
            cols = list(rows[0])
            tuples = []
            for _ in rows:
                tuples.append("(" + ", ".join(f"${n + i + 1}" for i in range(len(cols))) + ")")
                n += len(cols)
            names = ", ".join(f'"{c}"' for c in cols)
            statements.append(f"INSERT INTO {t.name} ({names}) VALUES {', '.join(tuples)}")
        ctes = ", ".join(
            f"ins_{t.name} AS ({sql})" for (t, _), sql in zip(parts[1:], statements[1:], strict=True)
        )
        sql = (f"WITH {ctes} " if ctes else "") + statements[0]
        if len(_ONE_INSERTS) < 1000:  # shapes are few (rows per table); a bound anyway
            _ONE_INSERTS[shape] = sql
    args: list[Any] = []
    for t, rows in parts:
        for bound in _bound(dialect, t, rows):
            args += bound
    return sql, args


# SQLite's INSERT of one table by its columns (one statement per table, all its rows).
_SQLITE_INSERTS: dict[tuple[str, tuple[str, ...]], str] = {}


def _sqlite_inserts(
    dialect: Dialect, head: dict[str, Any], components: ComponentRows
) -> list[tuple[str, list[list[Any]]]]:
    specs_table = SpecRow.__table__
    assert isinstance(specs_table, Table)
    out = []
    for t, rows in [(specs_table, [head]), *components]:
        key = (t.name, tuple(rows[0]))
        sql = _SQLITE_INSERTS.get(key)
        if sql is None:
            names = ", ".join(f'"{c}"' for c in key[1])
            sql = f"INSERT INTO {t.name} ({names}) VALUES ({', '.join('?' for _ in key[1])})"
            if len(_SQLITE_INSERTS) < 1000:
                _SQLITE_INSERTS[key] = sql
        out.append((sql, list(_bound(dialect, t, rows))))
    return out


def _race(exc: IntegrityError) -> AlreadyExists | None:
    """A unique name taken by a concurrent writer after the holders were read (None: another error)."""
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
) -> ComponentRows:
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
    for table in COMPONENT_TABLES.values():
        await session.execute(delete(table).where(table.c.spec_id == spec_id))
    components = component_rows(spec_id, spec)
    try:
        await _insert_components(session, components)
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


async def _load(session: AsyncSession, table: Table, spec_ids: Sequence[str]) -> list[Any]:
    # Core rows, not ORM objects: no identity map or instrumentation on the hot read path.
    result = await session.execute(select(table).where(table.c.spec_id.in_(spec_ids)))
    return list(result.all())


def _merge(field: str, rows: Iterable[Mapping[str, Any]], into: Components) -> None:
    """Turn one table's rows into the spec dict parts (ordered as documented)."""
    comp = spec_schema.COMPONENTS_BY_FIELD[field]
    for r in rows:
        part = into.setdefault(r["spec_id"], {})
        item = spec_schema.component_item(comp, r)
        if not comp.repeated:
            part[field] = item
            continue
        if comp.has_position:
            item["_pos"] = r["position"]
        part.setdefault(field, []).append(item)


def _sorted_parts(parts: Components) -> Components:
    # Sorted in Python, not in SQL: Postgres collations and SQLite's binary order differ.
    for part in parts.values():
        for items in part.values():
            if not isinstance(items, list):
                continue
            if items and "_pos" in items[0]:
                items.sort(key=lambda r: r.pop("_pos"))
            else:
                items.sort(key=lambda x: x["name"])
    return parts


def parts_from_rows(spec_id: str, rows: ComponentRows) -> dict[str, Any]:
    """The components of one Spec's freshly written rows, exactly as a read would give them."""
    parts: Components = {}
    by_table = {t.name: f for f, t in COMPONENT_TABLES.items()}
    for table, values in rows:
        _merge(by_table[table.name], values, parts)
    return _sorted_parts(parts).get(spec_id, {})


async def read_components(session: AsyncSession, spec_ids: Sequence[str]) -> Components:
    """All components of the given Specs, one table after another in the caller's transaction."""
    parts: Components = {}
    for field, table in COMPONENT_TABLES.items():
        _merge(field, [r._mapping for r in await _load(session, table, spec_ids)], parts)
    return _sorted_parts(parts)


def _aggregate_sql(comp: spec_schema.Component, table: Table, pg: bool) -> str:
    """A scalar subquery: the component rows of ``specs.id`` as one JSON array of objects.

    Only the declared columns (and ``position``) travel; JSON columns nest as JSON. Built
    from the Spec declaration like the tables themselves, so a new field needs nothing here.
    """
    names = (["position"] if comp.has_position else []) + [c.name for c in comp.columns]
    kinds = {c.name: c.kind for c in comp.columns}

    def value(name: str) -> str:
        # SQLite keeps JSON as text: json() makes it nest instead of arriving as a string.
        return f"json(t.{name})" if kinds.get(name) == "json" and not pg else f"t.{name}"

    pairs = ", ".join(f"'{n}', {value(n)}" for n in names)
    if pg:
        return (
            f"(SELECT coalesce(json_agg(json_build_object({pairs})), '[]'::json) "
            f"FROM {table.name} t WHERE t.spec_id = specs.id)"
        )
    return f"(SELECT json_group_array(json_object({pairs})) FROM {table.name} t WHERE t.spec_id = specs.id)"


def _booleans(comp: spec_schema.Component) -> tuple[str, ...]:
    return tuple(c.name for c in comp.columns if c.kind == "bool")


# Per dialect: GetSpec's one statement as SQL, and each result column's name and processor.
_READ: dict[str, tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]] = {}


def _read_statement(dialect: Dialect) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]:
    """The Spec row, its identity and every component (JSON aggregates) in one statement.

    Compiled once per dialect; each column comes with what its SQLAlchemy type does to a
    value read (times as aware UTC, SQLite's JSON text parsed), so the driver's row turns
    into exactly what the ORM would have given.
    """
    found = _READ.get(dialect.name)
    if found is None:
        pg = dialect.name == "postgresql"
        specs = SpecRow.__table__
        assert isinstance(specs, Table)
        aggregates = [
            literal_column(_aggregate_sql(comp, COMPONENT_TABLES[comp.field], pg), JSON()).label(
                f"c_{comp.field}"
            )
            for comp in spec_schema.COMPONENTS
        ]
        stmt = (
            select(
                *specs.columns,
                CloudIdentityRow.provider.label("identity_provider"),
                CloudIdentityRow.account_id.label("identity_account_id"),
                *aggregates,
            )
            .join(CloudIdentityRow, CloudIdentityRow.id == specs.c.cloud_identity_id)
            .where(specs.c.id == bindparam("spec_id"))
        )
        columns: list[tuple[str, Callable[[Any], Any] | None]] = [
            (str(c.name), c.type.dialect_impl(dialect).result_processor(dialect, None))
            for c in stmt.selected_columns
        ]
        found = (str(stmt.compile(dialect=dialect)), columns)
        _READ[dialect.name] = found
    return found


@dataclass
class ReadSpec:
    """One Spec as GetSpec reads it: the ``specs`` row by column, its identity, its components."""

    values: dict[str, Any]
    provider: str
    cloud_account_id: str
    part: dict[str, Any]


async def read_spec(engine: AsyncEngine, spec_id: str) -> ReadSpec | None:
    """The Spec's row, identity and components in ONE statement (None when there is no such Spec).

    One statement reads one snapshot of the database on both dialects, so the parts always
    belong to the revision in the head, with no seqlock or retry, and needs no transaction
    around it: on the driver connection it is the checkout and one round trip (Postgres) or
    one call into aiosqlite's thread (SQLite), where a session's BEGIN, statement and
    ROLLBACK took four round trips or nine hops (bench: ``python -m bench.roundtrips``).
    """
    sql, columns = _read_statement(engine.dialect)
    async with driver_connection(engine) as driver:
        if is_sqlite(engine):
            try:
                found = await driver._execute(lambda: driver._conn.execute(sql, (spec_id,)).fetchone())
            except sqlite3.Error as exc:
                raise sqlite_error(exc, sql) from exc
        else:
            rows = await pg_fetch(driver, sql, spec_id)
            found = rows[0] if rows else None
    if found is None:
        return None
    row = {name: value if p is None else p(value) for (name, p), value in zip(columns, found, strict=True)}
    parts: Components = {}
    for comp in spec_schema.COMPONENTS:
        rows = row.pop(f"c_{comp.field}") or []
        flags = _booleans(comp)
        for r in rows:
            r["spec_id"] = spec_id
            for name in flags:  # SQLite's JSON has 0/1 for a boolean
                if r[name] is not None:
                    r[name] = bool(r[name])
        _merge(comp.field, rows, parts)
    provider, account = row.pop("identity_provider"), row.pop("identity_account_id")
    return ReadSpec(row, provider, account, _sorted_parts(parts).get(spec_id, {}))


def read_spec_dict(found: ReadSpec) -> dict[str, Any]:
    """The full Spec dict of :func:`read_spec`'s answer."""
    return _spec_dict(found.values, found.provider, found.cloud_account_id, found.part)


def assemble(head: SpecHead, part: dict[str, Any]) -> dict[str, Any]:
    """The full Spec dict: the row, its identity's provider/account, and its components."""
    row = head.row
    values = {name: getattr(row, name) for name in _ROW_FIELDS}
    return _spec_dict(values, head.provider, head.cloud_account_id, part)


# The ``specs`` columns a Spec dict carries.
_ROW_FIELDS = ("id", "revision", *(c.name for c in spec_schema.SPEC_COLUMNS), "create_time", "update_time")


def written_spec(
    values: Mapping[str, Any], provider: str, cloud_account_id: str, components: ComponentRows
) -> dict[str, Any]:
    """The full Spec dict of the ``specs`` row and component rows just written (:func:`insert_spec`),
    exactly as a read gives it back: CreateSpec answers without reading the Spec again."""
    return _spec_dict(values, provider, cloud_account_id, parts_from_rows(values["id"], components))


def _spec_dict(
    row: Mapping[str, Any], provider: str, cloud_account_id: str, part: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": row["id"],
        "revision": row["revision"],
        **{col.name: row[col.name] for col in spec_schema.SPEC_COLUMNS},
        "provider": provider,
        "cloud_account_id": cloud_account_id,
        "create_time": row["create_time"],
        "update_time": row["update_time"],
    }
    for comp in spec_schema.COMPONENTS:
        if comp.repeated:
            spec[comp.field] = part.get(comp.field, [])
        elif comp.field in part:
            spec[comp.field] = part[comp.field]
    return spec
