"""The snapshot service's tables and every statement that touches them.

Owns ``provision_jobs``, ``job_outbox`` and ``state_recoveries`` (Alembic history in ``migrations/``, version table
``alembic_version_snapshot``). Functions take the session; the caller owns the transaction,
so a state change and its outbox rows always commit (or roll back) together.

Invariants kept here:
- every status change is a guarded ``UPDATE … WHERE id = :id AND status = :from`` (plus
  ``lease_token = :token`` for runner actions) with ``RETURNING``: a lost race changes
  nothing and returns no row;
- the claim is one statement: ``UPDATE … WHERE seq = (SELECT … FOR UPDATE SKIP LOCKED)
  RETURNING *`` on Postgres, the same without the lock clause inside ``BEGIN IMMEDIATE``
  on SQLite; a job is claimable when it is the oldest QUEUED job of its workspace and
  that workspace has no RUNNING job (Terraform Cloud's run queue);
- ``seq`` (the primary key) only grows: it is the FIFO order of the queue and of the outbox;
- a PLAN is applied at most once: a partial unique index allows one DEPLOY per
  ``plan_job_id`` among QUEUED/RUNNING/SUCCEEDED/ERRORED deploys;
- a workspace with a pending state recovery (Terraform's ``errored.tfstate`` not yet pushed
  back) has no claimable job but an UNLOCK: the claim statement itself excludes it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    all_,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from alethia.database import JSONType
from services.snapshot.jobs import JobStatus, JobType, SetState

VERSION_TABLE = "alembic_version_snapshot"

Row = dict[str, Any]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite stores naive UTC text that sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid alias).
SeqType = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# Statuses of a DEPLOY that use up its plan: running/queued, applied, or needing a person.
PLAN_CONSUMING = (
    JobStatus.QUEUED.value,
    JobStatus.RUNNING.value,
    JobStatus.SUCCEEDED.value,
    JobStatus.ERRORED.value,
)


provision_jobs = Table(
    "provision_jobs",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("spec_id", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("plan_job_id", String(36)),
    Column("applied_by_job_id", String(36)),
    Column("config_hash", String(64), nullable=False),
    Column("spec_revision", BigInteger, nullable=False),
    Column("workspace", String(512), nullable=False),
    Column("snapshot", JSONType, nullable=False),
    Column("idempotency_key", String(256), unique=True),
    Column("requested_by", String(256), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_token", String(64)),
    Column("lease_seconds", Integer),
    Column("lease_expires_at", UTCDateTime()),
    Column("runner_id", String(256), nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("changes", JSONType),
    Column("cost", JSONType),
    Column("outputs", JSONType),
    Column("artifacts", JSONType),
    Column("post_apply_steps", JSONType),
    Column("attempt_errors", JSONType, nullable=False),
    Column("error", Text, nullable=False),
    Column("create_time", UTCDateTime(), nullable=False),
    Column("start_time", UTCDateTime()),
    Column("end_time", UTCDateTime()),
    Column("update_time", UTCDateTime(), nullable=False),
    Column("lock_id", String(64)),
    Column("state_lock_id", String(64)),
    Column("resources_applied", Integer, nullable=False, server_default="0"),
)
Index("ix_provision_jobs_queue", provision_jobs.c.workspace, provision_jobs.c.status, provision_jobs.c.seq)
Index("ix_provision_jobs_status", provision_jobs.c.status, provision_jobs.c.seq)
Index("ix_provision_jobs_spec", provision_jobs.c.spec_id, provision_jobs.c.seq)
Index(
    "uq_provision_jobs_plan_applied_once",
    provision_jobs.c.plan_job_id,
    unique=True,
    postgresql_where=and_(
        provision_jobs.c.plan_job_id.is_not(None), provision_jobs.c.status.in_(PLAN_CONSUMING)
    ),
    sqlite_where=and_(provision_jobs.c.plan_job_id.is_not(None), provision_jobs.c.status.in_(PLAN_CONSUMING)),
)
# The invariant "one running job per workspace" held by the database itself, so no race in
# the claim statement (or a future edit of it) can ever run two jobs on one state.
Index(
    "uq_provision_jobs_one_running_per_workspace",
    provision_jobs.c.workspace,
    unique=True,
    postgresql_where=provision_jobs.c.status == "RUNNING",
    sqlite_where=provision_jobs.c.status == "RUNNING",
)

job_outbox = Table(
    "job_outbox",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("job_id", String(36), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("msg_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("published_at", UTCDateTime()),
)
Index(
    "ix_job_outbox_unpublished",
    job_outbox.c.seq,
    postgresql_where=job_outbox.c.published_at.is_(None),
    sqlite_where=job_outbox.c.published_at.is_(None),
)
Index("ix_job_outbox_job", job_outbox.c.job_id, job_outbox.c.seq)

# A state Terraform could not write (errored.tfstate), kept by a runner until it is pushed.
# Pending while ``resolve_time`` is NULL; at most one pending per workspace (a second failed
# apply cannot happen: the workspace takes no job while one is pending).
state_recoveries = Table(
    "state_recoveries",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("workspace", String(512), nullable=False),
    Column("job_id", String(36), nullable=False, unique=True),
    Column("spec_id", String(64), nullable=False),
    Column("state_key", String(1024), nullable=False),
    Column("location", Text, nullable=False),
    Column("resources_applied", Integer, nullable=False),
    Column("lock_id", String(64), nullable=False),
    Column("runner_id", String(256), nullable=False),
    Column("detail", Text, nullable=False),
    Column("create_time", UTCDateTime(), nullable=False),
    Column("resolve_time", UTCDateTime()),
    Column("resolution", Text, nullable=False),
)
Index(
    "uq_state_recoveries_pending_workspace",
    state_recoveries.c.workspace,
    unique=True,
    postgresql_where=state_recoveries.c.resolve_time.is_(None),
    sqlite_where=state_recoveries.c.resolve_time.is_(None),
)


def _is_pg(session: AsyncSession) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"


def _row(mapping: Any) -> Row:
    return dict(mapping)


# ---------------------------------------------------------------- jobs: reads


async def get_job(session: AsyncSession, job_id: str) -> Row | None:
    """One job by id, or None."""
    res = await session.execute(select(provision_jobs).where(provision_jobs.c.id == job_id))
    found = res.mappings().first()
    return _row(found) if found else None


# The driver path's reads, built once with bound parameters.
JOB_BY_ID = select(provision_jobs).where(
    provision_jobs.c.id == bindparam("g_id", type_=provision_jobs.c.id.type)
)
# Whether any state recovery is pending: a claim that found nothing must then refuse blocked jobs.
ANY_PENDING_RECOVERY = (
    select(state_recoveries.c.seq).where(state_recoveries.c.resolve_time.is_(None)).limit(1)
)


async def get_job_by_idempotency_key(session: AsyncSession, key: str) -> Row | None:
    """The job created with ``key``, or None."""
    res = await session.execute(select(provision_jobs).where(provision_jobs.c.idempotency_key == key))
    found = res.mappings().first()
    return _row(found) if found else None


async def queue_position(session: AsyncSession, job: Row) -> int:
    """1-based position of a QUEUED job among the QUEUED jobs of its workspace; 0 otherwise."""
    if job["status"] != JobStatus.QUEUED:
        return 0
    res = await session.execute(
        select(func.count())
        .select_from(provision_jobs)
        .where(
            provision_jobs.c.workspace == job["workspace"],
            provision_jobs.c.status == JobStatus.QUEUED.value,
            provision_jobs.c.seq <= job["seq"],
        )
    )
    return int(res.scalar_one())


def encode_page_token(seq: int) -> str:
    """An opaque page token (the last seq seen)."""
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode()


def decode_page_token(token: str) -> int:
    """The seq inside a page token; ValueError when it is not one of ours."""
    raw = base64.urlsafe_b64decode(token.encode()).decode()
    if not raw.startswith("s:"):
        raise ValueError("not a page token")
    seq = int(raw[2:])
    if not 0 <= seq < 2**63:  # a forged value would overflow BIGINT in the query
        raise ValueError("not a page token")
    return seq


async def list_jobs(
    session: AsyncSession,
    spec_id: str,
    status: str,
    limit: int,
    before_seq: int | None,
    zones: Sequence[str] | None = None,
) -> list[Row]:
    """Newest first, filtered by spec and status when given; ``limit`` rows before ``before_seq``.

    ``zones``: only jobs whose workspace (``zone/project-env-region``) is in one of them.
    """
    q = select(provision_jobs).order_by(provision_jobs.c.seq.desc()).limit(limit)
    if zones is not None:
        # A prefix match on the workspace; LIKE wildcards in a zone id are escaped.
        q = q.where(
            or_(
                false(),
                *(provision_jobs.c.workspace.like(_like_prefix(z) + "/%", escape="\\") for z in zones),
            )
        )
    if spec_id:
        q = q.where(provision_jobs.c.spec_id == spec_id)
    if status:
        q = q.where(provision_jobs.c.status == status)
    if before_seq is not None:
        q = q.where(provision_jobs.c.seq < before_seq)
    res = await session.execute(q)
    return [_row(m) for m in res.mappings().all()]


async def infrastructure_jobs(session: AsyncSession, spec_id: str) -> list[Row]:
    """The Spec's DEPLOY/DESTROY jobs and its QUEUED/RUNNING ones, oldest first (few columns)."""
    c = provision_jobs.c
    res = await session.execute(
        select(c.id, c.type, c.status, c.start_time, c.workspace)
        .where(
            c.spec_id == spec_id,
            or_(c.type.in_(("DEPLOY", "DESTROY")), c.status.in_(("QUEUED", "RUNNING"))),
        )
        .order_by(c.seq)
    )
    return [dict(m) for m in res.mappings().all()]


async def consuming_deploy(session: AsyncSession, plan_job_id: str) -> Row | None:
    """A DEPLOY that applied, is applying, or will apply ``plan_job_id`` (one that uses it up)."""
    res = await session.execute(
        select(provision_jobs)
        .where(provision_jobs.c.plan_job_id == plan_job_id, provision_jobs.c.status.in_(PLAN_CONSUMING))
        .limit(1)
    )
    found = res.mappings().first()
    return _row(found) if found else None


def _workspace_head_statement() -> Any:
    j, running = provision_jobs.alias("j"), provision_jobs.alias("r")
    workspace = bindparam("head_workspace", type_=j.c.workspace.type)
    return (
        select(j.c.id)
        .where(
            j.c.workspace == workspace,
            j.c.status == JobStatus.QUEUED.value,
            ~exists().where(running.c.workspace == workspace, running.c.status == JobStatus.RUNNING.value),
        )
        .order_by(j.c.seq)
        .limit(1)
    )


# Built once: one statement (it was two: "any RUNNING?" then "the oldest QUEUED").
WORKSPACE_HEAD = _workspace_head_statement()


async def workspace_head(session: AsyncSession, workspace: str) -> str | None:
    """The id of the job that may start next in ``workspace``: its oldest QUEUED job when none is RUNNING."""
    found = (await session.execute(WORKSPACE_HEAD, {"head_workspace": workspace})).first()
    return str(found[0]) if found else None


async def expired_leases(session: AsyncSession, now: datetime, limit: int = 100) -> list[Row]:
    """RUNNING jobs whose lease expired before ``now``, oldest first.

    On Postgres the rows are locked (``FOR UPDATE SKIP LOCKED``) for the caller's
    transaction: rescuers of several replicas then split the expired jobs between them
    instead of queueing behind each other's locks (each rescue is guarded anyway).
    """
    q = (
        select(provision_jobs)
        .where(provision_jobs.c.status == JobStatus.RUNNING.value, provision_jobs.c.lease_expires_at < now)
        .order_by(provision_jobs.c.seq)
        .limit(limit)
    )
    if _is_pg(session):
        q = q.with_for_update(skip_locked=True)
    res = await session.execute(q)
    return [_row(m) for m in res.mappings().all()]


# ---------------------------------------------------------------- jobs: writes


def new_job_row(
    *,
    job_id: str,
    spec_id: str,
    job_type: JobType,
    snapshot: dict[str, Any],
    config_hash: str,
    spec_revision: int,
    workspace: str,
    plan_job_id: str | None,
    idempotency_key: str | None,
    requested_by: str,
    max_attempts: int,
    now: datetime,
    lock_id: str | None = None,
) -> Row:
    """The values of a freshly queued job."""
    return {
        "id": job_id,
        "spec_id": spec_id,
        "type": job_type.value,
        "status": JobStatus.QUEUED.value,
        "plan_job_id": plan_job_id,
        "applied_by_job_id": None,
        "config_hash": config_hash,
        "spec_revision": spec_revision,
        "workspace": workspace,
        "snapshot": snapshot,
        "idempotency_key": idempotency_key,
        "requested_by": requested_by,
        "attempt": 0,
        "max_attempts": max_attempts,
        "lease_token": None,
        "lease_seconds": None,
        "lease_expires_at": None,
        "runner_id": "",
        "cancel_requested": False,
        "changes": None,
        "cost": None,
        "outputs": None,
        "artifacts": None,
        "post_apply_steps": None,
        "attempt_errors": [],
        "error": "",
        "create_time": now,
        "start_time": None,
        "end_time": None,
        "update_time": now,
        "lock_id": lock_id,
        "state_lock_id": None,
        "resources_applied": 0,
    }


async def insert_job(session: AsyncSession, values: Row) -> Row:
    """Insert a job; returns the stored row (with its ``seq``)."""
    res = await session.execute(insert(provision_jobs).values(**values).returning(*provision_jobs.c))
    return _row(res.mappings().one())


def _claim_statement(pg: bool) -> Any:
    """The claim as one ``UPDATE … RETURNING`` with bound parameters (see :func:`claim`)."""
    j = provision_jobs.alias("j")
    running = provision_jobs.alias("r")
    older = provision_jobs.alias("o")
    pending = state_recoveries.alias("sr")
    candidate = (
        select(j.c.seq)
        .where(
            j.c.status == JobStatus.QUEUED.value,
            ~exists().where(
                running.c.workspace == j.c.workspace, running.c.status == JobStatus.RUNNING.value
            ),
            ~exists().where(
                older.c.workspace == j.c.workspace,
                older.c.status == JobStatus.QUEUED.value,
                older.c.seq < j.c.seq,
            ),
            # Applied state not pushed back yet: nothing but an UNLOCK may touch this state.
            (j.c.type == JobType.UNLOCK.value)
            | ~exists().where(pending.c.workspace == j.c.workspace, pending.c.resolve_time.is_(None)),
        )
        .order_by(j.c.seq)
        .limit(1)
    )
    if pg:
        # Concurrent claimers skip each other's candidate instead of queueing behind it.
        candidate = candidate.with_for_update(skip_locked=True, of=j)
    c = provision_jobs.c
    return (
        update(provision_jobs)
        # ``seq = (SELECT …)``, not ``IN``: Postgres runs a scalar subquery once (an InitPlan);
        # as a semi-join it may re-scan it per row, skip the row it just locked itself and
        # claim a second job in the same statement.
        .where(c.seq == candidate.scalar_subquery(), c.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            runner_id=bindparam("claim_runner_id", type_=c.runner_id.type),
            lease_token=bindparam("claim_lease_token", type_=c.lease_token.type),
            lease_seconds=bindparam("claim_lease_seconds", type_=c.lease_seconds.type),
            lease_expires_at=bindparam("claim_expires_at", type_=c.lease_expires_at.type),
            attempt=c.attempt + 1,
            start_time=bindparam("claim_start_time", type_=c.start_time.type),
            update_time=bindparam("claim_update_time", type_=c.update_time.type),
            error="",
        )
        .returning(*provision_jobs.c)
    )


# Built once per dialect: constructing this statement (three aliases, two EXISTS, a locking
# subquery) cost more CPU than running it (bench: claim_throughput profile).
_CLAIM_STATEMENTS = {pg: _claim_statement(pg) for pg in (False, True)}


async def claim(
    session: AsyncSession,
    runner_id: str,
    lease_token: str,
    lease_seconds: int,
    expires_at: datetime,
    now: datetime,
) -> Row | None:
    """Claim the oldest claimable job in one statement; None when nothing is claimable.

    On SQLite the caller must hold the write lock (``begin_write``): without row locks the
    statement is only atomic because no other writer can interleave.
    """
    res = await session.execute(
        _CLAIM_STATEMENTS[_is_pg(session)],
        claim_params(runner_id, lease_token, lease_seconds, expires_at, now),
    )
    found = res.mappings().first()
    return _row(found) if found else None


def claim_statement(pg: bool) -> Any:
    """The claim's one statement (see :func:`claim`), for the driver path."""
    return _CLAIM_STATEMENTS[pg]


def claim_params(
    runner_id: str, lease_token: str, lease_seconds: int, expires_at: datetime, now: datetime
) -> dict[str, Any]:
    """The bound parameters of the claim statement."""
    return {
        "claim_runner_id": runner_id,
        "claim_lease_token": lease_token,
        "claim_lease_seconds": lease_seconds,
        "claim_expires_at": expires_at,
        "claim_start_time": now,
        "claim_update_time": now,
    }


# Guarded UPDATE statements by shape (the columns set, whether the lease token and an expiry
# guard apply), built once with bound parameters: building and cache-keying a fresh UPDATE
# of ~10 columns on every transition cost more CPU than its round trip (claim profile).
_TRANSITIONS: dict[tuple[tuple[str, ...], bool, bool], Any] = {}


def _transition_statement(columns: tuple[str, ...], with_token: bool, with_expiry: bool) -> Any:
    key = (columns, with_token, with_expiry)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        c = provision_jobs.c
        conds = [
            c.id == bindparam("t_id", type_=c.id.type),
            c.status == bindparam("t_from", type_=c.status.type),
        ]
        if with_token:
            conds.append(c.lease_token == bindparam("t_token", type_=c.lease_token.type))
        if with_expiry:
            conds.append(c.lease_expires_at < bindparam("t_expired_before", type_=c.lease_expires_at.type))
        values = {name: bindparam(f"v_{name}", type_=c[name].type) for name in columns}
        stmt = update(provision_jobs).where(*conds).values(values).returning(*provision_jobs.c)
        _TRANSITIONS[key] = stmt
    return stmt


async def transition(
    session: AsyncSession,
    job_id: str,
    from_status: JobStatus,
    values: Row,
    lease_token: str | None = None,
    expired_before: datetime | None = None,
) -> Row | None:
    """Guarded update: applies ``values`` only while the job is ``from_status`` (and holds the lease).

    ``expired_before``: also only while the lease expired before that time (a rescue).
    Returns the updated row, or None when the guard did not match (the caller lost a race
    or the lease is not current).
    """
    key, params = _transition_params(job_id, from_status, values, lease_token, expired_before)
    found = (await session.execute(_transition_statement(*key), params)).mappings().first()
    return _row(found) if found else None


def _transition_params(
    job_id: str,
    from_status: JobStatus,
    values: Mapping[str, Any],
    lease_token: str | None,
    expired_before: datetime | None,
) -> tuple[tuple[tuple[str, ...], bool, bool], dict[str, Any]]:
    """The shape of a guarded UPDATE (its statement's cache key) and its bound parameters."""
    columns = tuple(sorted(values))
    params: dict[str, Any] = {"t_id": job_id, "t_from": from_status.value}
    if lease_token is not None:
        params["t_token"] = lease_token
    if expired_before is not None:
        params["t_expired_before"] = expired_before
    for name in columns:
        params[f"v_{name}"] = values[name]
    return (columns, lease_token is not None, expired_before is not None), params


def change_statement(change: SetState, with_head: bool) -> tuple[Any, dict[str, Any]]:
    """The guarded UPDATE of ``change`` (Postgres ``with_head``: as :func:`set_state_and_head`'s
    one statement, whose rows carry ``next_job_id``) and its parameters, for the driver path."""
    key, params = _transition_params(
        change.job_id, change.from_status, change.values, change.lease_token, change.expired_before
    )
    stmt = _transition_statement(*key)
    return (_with_head(stmt, key) if with_head else stmt), params


_HEADED: dict[tuple[tuple[str, ...], bool, bool], Any] = {}


def _with_head(update_stmt: Any, key: tuple[tuple[str, ...], bool, bool]) -> Any:
    """Postgres: the guarded UPDATE as a CTE, plus the id of its workspace's next job.

    The outer SELECT reads the snapshot from before the UPDATE, where the changed job still
    has its old status: it is left out of the "any RUNNING?" test by id, so the answer is
    the head as it is once the change commits (what :func:`workspace_head` reads after it).
    """
    stmt = _HEADED.get(key)
    if stmt is None:
        done = update_stmt.cte("done")
        j, r = provision_jobs.alias("j"), provision_jobs.alias("r")
        head = (
            select(j.c.id)
            .where(
                j.c.workspace == done.c.workspace,
                j.c.status == JobStatus.QUEUED.value,
                ~exists().where(
                    r.c.workspace == done.c.workspace,
                    r.c.status == JobStatus.RUNNING.value,
                    r.c.id != done.c.id,
                ),
            )
            .order_by(j.c.seq)
            .limit(1)
            .scalar_subquery()
        )
        stmt = _HEADED[key] = select(done, head.label("next_job_id"))
    return stmt


async def set_state_and_head(session: AsyncSession, change: SetState) -> tuple[Row | None, str | None]:
    """:func:`set_state`, then the id of the job that may start next in its workspace.

    For a change that ends a RUNNING job (the workspace may take its next job). On Postgres
    both in one statement (one round trip fewer per completion); elsewhere two.
    """
    if not _is_pg(session):
        updated = await set_state(session, change)
        return updated, (await workspace_head(session, updated["workspace"]) if updated else None)
    stmt, params = change_statement(change, with_head=True)
    found = (await session.execute(stmt, params)).mappings().first()
    if found is None:
        return None, None
    row = _row(found)
    head = row.pop("next_job_id")
    return row, (str(head) if head else None)


async def set_state(session: AsyncSession, change: SetState) -> Row | None:
    """Apply one named transition (see :class:`services.snapshot.jobs.SetState`), guarded.

    Returns the updated row, or None when the guard matched no row (a lost race, a lease
    that is no longer current, or a lease renewed before the rescue).
    """
    return await transition(
        session,
        change.job_id,
        change.from_status,
        dict(change.values),
        change.lease_token,
        change.expired_before,
    )


async def mark_plan_applied(
    session: AsyncSession, plan_job_id: str, deploy_job_id: str, now: datetime
) -> bool:
    """Record that ``deploy_job_id`` applied the plan; False when it was already recorded."""
    res = await session.execute(MARK_PLAN_APPLIED, mark_plan_applied_params(plan_job_id, deploy_job_id, now))
    return res.first() is not None


MARK_PLAN_APPLIED = (
    update(provision_jobs)
    .where(
        provision_jobs.c.id == bindparam("m_plan_id", type_=provision_jobs.c.id.type),
        provision_jobs.c.type == JobType.PLAN.value,
        provision_jobs.c.applied_by_job_id.is_(None),
    )
    .values(
        applied_by_job_id=bindparam("m_deploy_id", type_=provision_jobs.c.applied_by_job_id.type),
        update_time=bindparam("m_now", type_=provision_jobs.c.update_time.type),
    )
    .returning(provision_jobs.c.id)
)


def mark_plan_applied_params(plan_job_id: str, deploy_job_id: str, now: datetime) -> dict[str, Any]:
    """The bound parameters of :data:`MARK_PLAN_APPLIED`."""
    return {"m_plan_id": plan_job_id, "m_deploy_id": deploy_job_id, "m_now": now}


async def running_job(session: AsyncSession, workspace: str) -> Row | None:
    """The RUNNING job of ``workspace``, or None."""
    res = await session.execute(
        select(provision_jobs)
        .where(provision_jobs.c.workspace == workspace, provision_jobs.c.status == JobStatus.RUNNING.value)
        .limit(1)
    )
    found = res.mappings().first()
    return _row(found) if found else None


async def job_by_state_lock(session: AsyncSession, workspace: str, lock_id: str) -> Row | None:
    """The job of ``workspace`` whose Terraform took the state lock ``lock_id``, or None."""
    res = await session.execute(
        select(provision_jobs)
        .where(provision_jobs.c.workspace == workspace, provision_jobs.c.state_lock_id == lock_id)
        .order_by(provision_jobs.c.seq.desc())
        .limit(1)
    )
    found = res.mappings().first()
    return _row(found) if found else None


async def queued_jobs(session: AsyncSession, workspace: str) -> list[Row]:
    """The QUEUED jobs of ``workspace`` in queue order."""
    res = await session.execute(
        select(provision_jobs)
        .where(provision_jobs.c.workspace == workspace, provision_jobs.c.status == JobStatus.QUEUED.value)
        .order_by(provision_jobs.c.seq)
    )
    return [_row(m) for m in res.mappings().all()]


# ---------------------------------------------------------------- state recoveries


async def pending_recovery(session: AsyncSession, workspace: str) -> Row | None:
    """The pending state recovery of ``workspace``, or None."""
    res = await session.execute(
        select(state_recoveries)
        .where(state_recoveries.c.workspace == workspace, state_recoveries.c.resolve_time.is_(None))
        .limit(1)
    )
    found = res.mappings().first()
    return _row(found) if found else None


async def recovery_of_job(session: AsyncSession, job_id: str) -> Row | None:
    """The state recovery recorded for ``job_id`` (pending or resolved), or None."""
    res = await session.execute(select(state_recoveries).where(state_recoveries.c.job_id == job_id))
    found = res.mappings().first()
    return _row(found) if found else None


async def insert_recovery(session: AsyncSession, values: Row) -> Row:
    """Record a pending state recovery (the unique index refuses a second one per workspace)."""
    res = await session.execute(insert(state_recoveries).values(**values).returning(*state_recoveries.c))
    return _row(res.mappings().one())


async def resolve_recovery(session: AsyncSession, job_id: str, resolution: str, now: datetime) -> Row | None:
    """Mark the pending recovery of ``job_id`` resolved; None when none is pending."""
    res = await session.execute(
        update(state_recoveries)
        .where(state_recoveries.c.job_id == job_id, state_recoveries.c.resolve_time.is_(None))
        .values(resolve_time=now, resolution=resolution)
        .returning(*state_recoveries.c)
    )
    found = res.mappings().first()
    return _row(found) if found else None


async def list_recoveries(session: AsyncSession, include_resolved: bool, workspace: str) -> list[Row]:
    """State recoveries, oldest first (pending only unless ``include_resolved``)."""
    q = select(state_recoveries).order_by(state_recoveries.c.seq)
    if not include_resolved:
        q = q.where(state_recoveries.c.resolve_time.is_(None))
    if workspace:
        q = q.where(state_recoveries.c.workspace == workspace)
    res = await session.execute(q.limit(1000))
    return [_row(m) for m in res.mappings().all()]


# ---------------------------------------------------------------- outbox


_OUTBOX_INSERT = insert(job_outbox)  # built once (its cache key too)

# The driver path's outbox write: ``n`` rows as ONE multi-row INSERT (one round trip, and
# one statement to compile per row count: a job's writes have one to four rows).
_OUTBOX_INSERTS: dict[int, Any] = {}


def outbox_insert(rows: list[Row]) -> tuple[Any, dict[str, Any]]:
    """The INSERT of ``rows`` (events.event_outbox_row / dispatch_outbox_row) and its parameters."""
    n = len(rows)
    stmt = _OUTBOX_INSERTS.get(n)
    if stmt is None:
        columns = [c for c in job_outbox.columns if c.name != "seq"]
        stmt = insert(job_outbox).values(
            [{c.name: bindparam(f"{c.name}_{i}", type_=c.type) for c in columns} for i in range(n)]
        )
        if len(_OUTBOX_INSERTS) < 64:  # a bound anyway
            _OUTBOX_INSERTS[n] = stmt
    return stmt, {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in row.items()}


async def add_outbox(session: AsyncSession, rows: list[Row]) -> None:
    """Queue messages for the relay, in the caller's transaction."""
    if rows:
        await session.execute(_OUTBOX_INSERT, rows)


# The relay's statements, built once with bound parameters: building and cache-keying them
# on every flush was most of the relay's CPU under load (claim profile).
_UNPUBLISHED = (
    select(job_outbox)
    .where(job_outbox.c.published_at.is_(None))
    .order_by(job_outbox.c.seq)
    .limit(bindparam("n", type_=Integer))
)
_MARK_PUBLISHED = (
    update(job_outbox)
    .where(job_outbox.c.seq.in_(bindparam("seqs", expanding=True)))
    .values(published_at=bindparam("now", type_=job_outbox.c.published_at.type))
)
# The relay's Postgres read for the driver connection (``alethia.database.driver_statement``):
# mark the rows acked since the last read published and read the next unpublished ones, in
# ONE statement (a data-modifying CTE; SQLite has none: :func:`mark_published`, then
# :func:`unpublished`). The read does not see the statement's own UPDATE (one snapshot), so
# it leaves the marked rows out by name. The sequence numbers are one array parameter each
# (``= ANY``/``<> ALL``): the SQL is the same whatever the number of rows it marks.
_SEQS = postgresql.ARRAY(BigInteger)
MARK_AND_READ_PG = (
    select(job_outbox)
    .add_cte(
        update(job_outbox)
        .where(job_outbox.c.seq == any_(bindparam("seqs", type_=_SEQS)))
        .values(published_at=bindparam("now", type_=job_outbox.c.published_at.type))
        .cte("marked")
    )
    .where(
        job_outbox.c.published_at.is_(None),
        job_outbox.c.seq != all_(bindparam("seqs_again", type_=_SEQS)),
    )
    .order_by(job_outbox.c.seq)
    .limit(bindparam("n", type_=Integer))
)


def mark_and_read_params(seqs: list[int], now: datetime, limit: int) -> dict[str, Any]:
    """The parameters of :data:`MARK_AND_READ_PG`."""
    return {"seqs": seqs, "seqs_again": seqs, "now": now, "n": limit}


async def unpublished(session: AsyncSession, limit: int = 100) -> list[Row]:
    """Committed messages not yet published, in the order they were written."""
    res = await session.execute(_UNPUBLISHED, {"n": limit})
    return [_row(m) for m in res.mappings().all()]


async def mark_published(session: AsyncSession, seqs: list[int], now: datetime) -> None:
    """Mark outbox rows as published."""
    if seqs:
        await session.execute(_MARK_PUBLISHED, {"seqs": seqs, "now": now})


async def prune_published(session: AsyncSession, before: datetime, limit: int = 1000) -> int:
    """Delete up to ``limit`` rows published before ``before`` (oldest first); how many went.

    Never an unpublished row: those are the relay's backlog.
    """
    oldest = (
        select(job_outbox.c.seq)
        .where(job_outbox.c.published_at.is_not(None), job_outbox.c.published_at < before)
        .order_by(job_outbox.c.seq)
        .limit(limit)
    )
    res = await session.execute(delete(job_outbox).where(job_outbox.c.seq.in_(oldest.scalar_subquery())))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


async def unpublished_count(session: AsyncSession, job_id: str | None = None) -> int:
    """How many messages (of one job, or all) still wait for the relay."""
    q = select(func.count()).select_from(job_outbox).where(job_outbox.c.published_at.is_(None))
    if job_id is not None:
        q = q.where(job_outbox.c.job_id == job_id)
    return int((await session.execute(q)).scalar_one())


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
