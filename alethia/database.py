"""Async SQLAlchemy on SQLite and Postgres: the dialect differences live here and only here.

- SQLite: WAL, ``foreign_keys=ON``, ``busy_timeout``; writes that must not interleave (job
  claims) start with ``BEGIN IMMEDIATE`` (see :func:`begin_write`).
- Postgres: asyncpg, JSONB for JSON columns, ``FOR UPDATE SKIP LOCKED`` for claims; every
  checkout pings with one ``;`` (not ``pool_pre_ping``'s three round trips), unless the
  connection was checked in within the last 0.5 s.
Each service owns its tables and its Alembic history (``services/<name>/migrations``) with
its own version table, so services can share one Postgres database without sharing rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, MetaData, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

T = TypeVar("T")

# JSONB on Postgres, JSON (text) on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://``/``sqlite:///`` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    name = (
        url_or_engine.dialect.name if isinstance(url_or_engine, AsyncEngine) else normalize_url(url_or_engine)
    )
    return str(name).startswith("sqlite")


def create_engine(
    url: str,
    *,
    sqlite_foreign_keys: bool = True,
    ping_bypass_seconds: float | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine configured for its dialect (pool, pragmas, JSON serializer).

    ``sqlite_foreign_keys=False`` is for migrations only (see :func:`run_alembic_env`).
    ``ping_bypass_seconds``: Postgres only, see :func:`_ping_on_checkout` (default 0.5 s).
    """
    url = normalize_url(url)
    if is_sqlite(url):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's implicit BEGIN would defeat BEGIN IMMEDIATE; we issue BEGIN ourselves.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA foreign_keys={'ON' if sqlite_foreign_keys else 'OFF'}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_on_checkout(engine, PING_BYPASS_SECONDS if ping_bypass_seconds is None else ping_bypass_seconds)
    return engine


# A connection checked in less than this long ago is handed out without a ping (HikariCP's
# ``aliveBypassWindowMs``, same default): under load every checkout would otherwise pay a
# round trip for a connection that answered a moment ago.
PING_BYPASS_SECONDS = 0.5


def _ping_on_checkout(engine: AsyncEngine, bypass_seconds: float = PING_BYPASS_SECONDS) -> None:
    """Survive ``pg_terminate_backend`` and server restarts with at most one round trip per checkout.

    SQLAlchemy's ``pool_pre_ping`` on asyncpg wraps its ping in a transaction (BEGIN, ``;``,
    ROLLBACK): three round trips on every checkout, about a third of a job's messages to
    Postgres in the claim profile. This pings with the ``;`` alone (the pool's documented
    pessimistic-disconnect recipe): a dead connection is replaced before the caller sees it,
    exactly as with ``pool_pre_ping``.

    Two cheaper checks come first. A connection whose socket the server has closed (a
    terminated backend, a restart) is known to asyncpg without a round trip
    (``is_closed()``): it is replaced at once. A connection checked in within
    ``bypass_seconds`` and still open is handed out unpinged; if the server drops it in that
    window, the statement fails as a lost connection (``is_connection_lost``: the caller
    gets UNAVAILABLE and retries, and the pool replaces the connection).
    """
    from sqlalchemy import exc as sa_exc

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:  # None: the connection was invalidated
            record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        record.info["pinged"] = False  # read by bench/roundtrips.py
        if record.info.pop("fresh", False):
            return  # just connected (also a replacement made during this checkout): as pre-ping
        driver = dbapi_conn.driver_connection
        if driver.is_closed():
            raise sa_exc.DisconnectionError("pooled connection was closed by the server")
        if time.monotonic() - record.info.get("checked_in", 0.0) < bypass_seconds:
            return
        record.info["pinged"] = True
        try:
            dbapi_conn.await_(driver.fetchrow(";"))
        except Exception as exc:
            raise sa_exc.DisconnectionError(f"pooled connection is gone: {type(exc).__name__}") from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy loads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def begin_write(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A write transaction that takes SQLite's write lock up front (``BEGIN IMMEDIATE``).

    On Postgres this is a normal transaction; row locks come from the statements.
    """
    async with sessions() as session, session.begin():
        bind = session.bind
        if isinstance(bind, AsyncEngine) and is_sqlite(bind):
            # The first connection of the transaction carries the option to the "begin" hook.
            # (Asking for it before session.begin() would autobegin and make begin() fail.)
            await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause chain) is a lost database connection, not a bad statement.

    A connection killed under a request (``pg_terminate_backend``, a Postgres restart, a
    network cut) is transient: the pool hands out a fresh connection next time, so the
    caller should retry (``UNAVAILABLE``), not be told the server is broken (``INTERNAL``).
    """
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (sa_exc.DisconnectionError, sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        name = type(current).__name__
        module = type(current).__module__ or ""
        # asyncpg's connection-state errors (also seen wrapped as the DBAPI adapter's classes).
        if name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "InternalClientError") or (
            module.startswith("asyncpg") and "Connection" in name
        ):
            return True
        if isinstance(current, ConnectionError):
            return True
        # SQLSTATE class 08 (connection exception) and 57P01-03 (admin/crash shutdown,
        # cannot connect now): the server went away or is restarting.
        sqlstate = str(getattr(current, "sqlstate", "") or "")
        if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
            return True
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return False


def run_alembic_env(metadata: MetaData, default_version_table: str) -> None:
    """The body of every service's Alembic ``env.py``: online migrations over an async engine.

    On SQLite, Alembic's batch mode changes a table by copying it and dropping the old one,
    and with foreign keys on, that DROP deletes every child row through ``ON DELETE
    CASCADE`` (an upgrade once emptied the component tables of every existing Spec). So
    migrations follow SQLite's documented procedure for table rebuilds: foreign keys off
    for the migration's connection, then ``PRAGMA foreign_key_check`` before the commit,
    which rolls the whole upgrade back if a migration left a dangling reference.
    """
    from alembic import context

    if context.is_offline_mode():
        raise SystemExit("offline migrations are not supported")
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or ""
    sqlite = is_sqlite(url)

    def _run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=config.attributes.get("version_table", default_version_table),
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise RuntimeError(f"migration left rows without their parent: {dangling[:5]}")

    async def _main() -> None:
        engine = create_engine(url, sqlite_foreign_keys=False)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(_run)
                await conn.commit()
        finally:
            await engine.dispose()

    # run_migrations() calls this from a worker thread, so a fresh event loop is fine here.
    asyncio.run(_main())


def run_migrations(url: str, script_location: Path, version_table: str, target: str = "head") -> None:
    """Upgrade the database to ``target`` (head) with the given Alembic history (blocking; run at start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url))
    cfg.attributes["version_table"] = version_table
    command.upgrade(cfg, target)


async def ping(engine: AsyncEngine) -> None:
    """Fail fast when the database cannot be reached."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


# --- transactions on the driver connection ---------------------------------------------
#
# A session costs CPU per statement (compile-cache lookup, parameter processing, result
# wrapping, the ORM's transaction bookkeeping) and, on SQLite, three or four hops into
# aiosqlite's thread per statement. A hot transaction can instead run its statements on
# the pooled connection's driver: each Core statement compiled ONCE per dialect, its values
# bound and read through the columns' own type processors (so what is stored and read back
# is exactly what the ORM path stores and reads), on SQLite the whole transaction in ONE
# call into the driver's thread. The transaction itself is written as a generator of
# :class:`Query` (pure logic: no I/O of its own), so one body serves both dialects.


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled for one dialect: its SQL, how to bind, how to read."""

    sql: str
    # Per placeholder, in order: (parameter name, None) or (None, constant already bound).
    slots: tuple[tuple[str | None, Any], ...]
    binders: dict[str, Callable[[Any], Any]]
    columns: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (by the statement's bind names)."""
        out = []
        for name, constant in self.slots:
            if name is None:
                out.append(constant)
                continue
            value = params[name]
            binder = self.binders.get(name)
            out.append(value if binder is None else binder(value))
        return out

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        """A result row as the column types give it (aware datetimes, JSON decoded, booleans)."""
        return {
            name: value if p is None else p(value) for (name, p), value in zip(self.columns, raw, strict=True)
        }


_DRIVER_STATEMENTS: dict[tuple[str, int], tuple[Any, DriverStatement]] = {}


def driver_statement(dialect: Dialect, stmt: Any) -> DriverStatement:
    """``stmt`` compiled for ``dialect`` (once: cached by statement object; keep it alive)."""
    key = (dialect.name, id(stmt))
    found = _DRIVER_STATEMENTS.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    compiled = stmt.compile(dialect=dialect)
    processors = compiled._bind_processors
    slots: list[tuple[str | None, Any]] = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is None and not bind.required:  # a literal of the statement itself
            value = bind.value
            slots.append((None, value if name not in processors else processors[name](value)))
        else:
            slots.append((name, None))
    columns = tuple(
        (str(entry.keyname), entry.type._cached_result_processor(dialect, None))
        for entry in compiled._result_columns
    )
    built = DriverStatement(compiled.string, tuple(slots), dict(processors), columns)
    if len(_DRIVER_STATEMENTS) < 1000:  # statements are module-level and few; a bound anyway
        _DRIVER_STATEMENTS[key] = (stmt, built)
    return built


@dataclass(frozen=True)
class Query:
    """One step of a driver transaction: run ``statement`` with ``params``; the step is
    sent the rows it returned (as :meth:`DriverStatement.row` gives them)."""

    statement: DriverStatement
    params: Mapping[str, Any]


# A transaction's body: yields queries, is sent their rows, returns (result, commit?).
Steps = Generator[Query, list[dict[str, Any]], tuple[T, bool]]


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection's driver connection (asyncpg's, or aiosqlite's), for the time of
    the block; it goes back to the pool after it as any checkout does."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        yield driver


def sqlite_error(exc: Exception, statement: str | None = None) -> Exception:
    """A ``sqlite3`` error as SQLAlchemy raises it (IntegrityError, a busy database's
    OperationalError), for code that runs statements on the driver connection."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    return DBAPIError.instance(statement, None, exc, sqlite3.Error)


async def run_on_driver(engine: AsyncEngine, steps: Callable[[], Steps[T]]) -> T:
    """Run one write transaction (``steps()``) on a pooled connection's driver.

    SQLite: ``BEGIN IMMEDIATE`` (as :func:`begin_write`), every query and ``COMMIT`` in ONE
    call into aiosqlite's thread (``_execute``, its one way in; ``_conn`` is the sqlite3
    connection). Postgres: ``BEGIN``, the queries and ``COMMIT`` on the asyncpg connection.
    The body returning ``commit=False`` rolls back. Errors surface as SQLAlchemy raises them
    for the cases callers handle (``IntegrityError``, SQLite's ``OperationalError``); a
    failed or cancelled transaction never goes back to the pool open (:func:`end_failed`).
    """
    async with driver_connection(engine) as driver:
        if is_sqlite(engine):
            return await _run_sqlite(driver, steps)
        return await _run_pg(driver, steps)


async def _run_sqlite(driver: Any, steps: Callable[[], Steps[T]]) -> T:
    import sqlite3

    def transaction() -> T:
        conn = driver._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            body = steps()
            try:
                query = next(body)
                while True:
                    stmt = query.statement
                    cursor = conn.execute(stmt.sql, stmt.args(query.params))
                    query = body.send([stmt.row(r) for r in cursor.fetchall()])
            except StopIteration as done:
                result, commit = done.value
            conn.execute("COMMIT" if commit else "ROLLBACK")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    try:
        return cast(T, await driver._execute(transaction))
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from exc


async def _run_pg(driver: Any, steps: Callable[[], Steps[T]]) -> T:
    import asyncpg
    from sqlalchemy import exc as sa_exc

    sql = "BEGIN"
    try:
        await driver.execute(sql)
        body = steps()
        try:
            query = next(body)
            while True:
                stmt = query.statement
                sql = stmt.sql
                query = body.send([stmt.row(r) for r in await driver.fetch(sql, *stmt.args(query.params))])
        except StopIteration as done:
            result, commit = done.value
        sql = "COMMIT" if commit else "ROLLBACK"
        await driver.execute(sql)
    except BaseException as exc:
        await end_failed(driver, exc)
        # The driver's errors as SQLAlchemy's asyncpg adapter raises them, so callers (the
        # IntegrityError fallback, ``is_connection_lost``) see what the session path gives.
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            raise sa_exc.IntegrityError(sql, None, exc) from exc
        if isinstance(exc, asyncpg.InterfaceError):
            raise sa_exc.InterfaceError(sql, None, exc) from exc
        if isinstance(exc, asyncpg.PostgresError):
            raise sa_exc.DBAPIError(sql, None, exc) from exc
        raise
    return result


async def pg_fetch(driver: Any, sql: str, *args: Any) -> list[Any]:
    """One statement on an asyncpg connection, outside any transaction (it reads one
    snapshot by itself); when it fails or is cancelled the connection is handled by
    :func:`end_failed`, so it never goes back to the pool with the statement still running."""
    try:
        return list(await driver.fetch(sql, *args))
    except BaseException as exc:
        await end_failed(driver, exc)
        raise


async def end_failed(driver: Any, exc: BaseException) -> None:
    """End a failed asyncpg transaction: a pooled connection never goes back inside one.

    SQLAlchemy's pool resets only the transactions it began. After an error the connection
    is between statements and is rolled back; after a cancellation a statement may still be
    running (a lock being waited for), so the connection is closed instead, as SQLAlchemy
    does then, and so is one that cannot roll back (the caller's error stays the one
    raised). The next checkout replaces a closed connection (``is_closed()``, above).
    """
    if driver.is_closed():
        return
    if isinstance(exc, asyncio.CancelledError | TimeoutError):
        driver.terminate()
        return
    if not driver.is_in_transaction():
        return
    try:
        await driver.execute("ROLLBACK")
    except BaseException:  # the connection goes; the original error is the one reported
        driver.terminate()
