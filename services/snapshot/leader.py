"""Which replica of the snapshot service relays the outbox: a leader lease.

Every replica serves gRPC, queues, claims and rescues; only one publishes the outbox, so
events leave in commit order and replicas do not race each other through the same rows.

- Postgres: a session-level advisory lock (``pg_try_advisory_lock``) taken on a connection
  of its own (no pool: closing it really ends the session). The lock lives as long as that
  session: a leader that dies, is killed or loses its connection releases it with the
  session, and a standby takes it at its next try. The leader checks its session before
  every pass; a pass already under way when the session dies may overlap with the new
  leader's first pass, and JetStream's duplicate window (``Nats-Msg-Id`` = the row's id)
  drops the repeats.
- SQLite: one process owns the file (the embedded stack runs one replica), so this process
  is always the leader.

The lock is scoped to the database, so services sharing one Postgres server (or even one
database, with their own tables) do not contend.

Wake-ups across replicas: a standby that commits outbox rows sends ``NOTIFY`` on
:data:`WAKE_CHANNEL`; the leader ``LISTEN``s on its lease session and relays at once, so an
event written on any replica leaves as soon as one written on the leader (not at the
leader's next poll).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from alethia.database import is_sqlite, normalize_url

log = logging.getLogger(__name__)

# A fixed 64-bit key for "the snapshot service's outbox relay" (advisory locks are integers).
OUTBOX_RELAY_LOCK = 0x616C_6574_6F75_7462  # b"aletoutb"
# NOTIFY channel: "a replica committed outbox rows".
WAKE_CHANNEL = "alethia_snapshot_outbox"


class LeaderLease:
    """``await lease.held()``: whether this replica is the leader now (taking the lease if free)."""

    def __init__(
        self,
        database_url: str,
        key: int = OUTBOX_RELAY_LOCK,
        on_wake: Callable[[], None] | None = None,
        verify_seconds: float = 1.0,
    ) -> None:
        self.url = normalize_url(database_url)
        self.key = key
        # A held lease is confirmed with a round trip at most this often; in between, the
        # driver's own view of the socket (closed when the server ends the session) suffices.
        self.verify_seconds = verify_seconds
        self._verified = 0.0
        self.on_wake = on_wake  # called (leader only) when another replica committed outbox rows
        self.always = is_sqlite(self.url)
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    @property
    def is_leader(self) -> bool:
        """Whether the last :meth:`held` found this replica leading (no database call)."""
        return self.always or self._conn is not None

    async def held(self) -> bool:
        """Keep the lease (its session still alive) or try to take it; never raises."""
        if self.always:
            return True
        if self._conn is not None:
            if not self._closed() and time.monotonic() - self._verified < self.verify_seconds:
                return True
            try:
                await self._conn.execute(text("SELECT 1"))
                self._verified = time.monotonic()
                return True
            except Exception as exc:
                log.warning("outbox relay: lost the leader lease (%s)", type(exc).__name__)
                await self._drop()
        try:
            if self._engine is None:
                self._engine = create_async_engine(self.url, poolclass=NullPool)
            conn = await self._engine.connect()
        except Exception as exc:
            log.debug("outbox relay: cannot reach the database for the lease: %s", type(exc).__name__)
            return False
        try:
            # Autocommit: the session holds the lock, never an open transaction (no idle-in-transaction).
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar()
        except Exception as exc:
            log.debug("outbox relay: lease attempt failed: %s", type(exc).__name__)
            with contextlib.suppress(Exception):
                await conn.close()
            return False
        if not got:
            await conn.close()
            return False
        if self.on_wake is not None:
            await self._listen(conn)
        self._conn = conn
        self._verified = time.monotonic()
        log.info("outbox relay: this replica is now the leader")
        return True

    def _closed(self) -> bool:
        """Whether the driver already saw the lease session end (no round trip)."""
        conn = self._conn
        try:
            driver = (
                conn.sync_connection.connection.driver_connection if conn and conn.sync_connection else None
            )
            return driver is None or bool(driver.is_closed())
        except Exception:  # an invalidated connection: treat as gone, verify for real
            return True

    async def _listen(self, conn: AsyncConnection) -> None:
        on_wake = self.on_wake
        assert on_wake is not None

        def wake(*_: Any) -> None:
            on_wake()

        try:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.add_listener(WAKE_CHANNEL, wake)  # type: ignore[union-attr]
        except Exception as exc:  # the poll still relays; only the wake-up is lost
            log.warning("outbox relay: LISTEN failed (%s); relaying on the poll", type(exc).__name__)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def release(self) -> None:
        """Give the lease up (shutdown): a standby takes over at its next try."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                await conn.close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
