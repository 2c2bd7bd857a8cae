"""NATS for the snapshot service: the connection, and the outbox relay that publishes to it.

- :class:`NatsLink` connects in the background and keeps retrying (the service serves while
  NATS is down), then creates the streams idempotently (``ensure_streams``).
- :class:`OutboxRelay` publishes committed outbox rows in ``seq`` order with
  ``Nats-Msg-Id`` = the row's message id and marks them published. It only ever reads rows
  through a fresh transaction, so a row of a transaction that rolled back (or has not
  committed yet) is never seen, hence never published. A publish that fails is retried
  with backoff; one that reached NATS but whose ack was lost is re-sent and dropped by
  JetStream's duplicate window.
- Replicas: only the holder of the :class:`~services.snapshot.leader.LeaderLease` relays;
  the others stand by and try to take the lease every poll interval (a dead leader's lease
  ends with its database session). The leader also prunes the outbox: rows delivered more
  than ``retention_seconds`` ago are deleted, so the table holds the undelivered backlog and
  a short history, not every event ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alethia import messaging
from alethia.database import begin_write, driver_connection, driver_statement, pg_fetch
from services.snapshot import store
from services.snapshot.leader import WAKE_CHANNEL, LeaderLease

log = logging.getLogger(__name__)


class NatsLink:
    """A NATS connection made in the background; ``js`` is None until streams exist."""

    def __init__(self, url: str, name: str = "alethia-snapshot") -> None:
        self.url = url
        self.name = name
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin connecting (returns at once)."""
        self._task = asyncio.create_task(self._connect(), name="snapshot-nats-connect")

    async def _connect(self) -> None:
        # messaging.connect retries forever on its own (max_reconnect_attempts=-1).
        self.nc = await messaging.connect(self.url, self.name)
        js = self.nc.jetstream()
        delay = 0.2
        while True:
            try:
                await messaging.ensure_streams(js)
                break
            except Exception as exc:  # NATS up but JetStream not ready yet, or a timeout
                log.warning(
                    "nats: creating streams failed (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.js = js
        self.ready.set()

    async def ensure_streams(self) -> None:
        """Create the streams again (after a NATS server lost its store)."""
        if self.js is not None:
            await messaging.ensure_streams(self.js)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()


class OutboxRelay:
    """Publishes committed outbox rows to JetStream, in order, at least once (deduplicated)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        link: NatsLink,
        poll_seconds: float = 1.0,
        publish_timeout: float = 2.0,
        batch: int = 200,
        lease: LeaderLease | None = None,
        retention_seconds: float = 3600.0,
        prune_interval: float = 60.0,
        mark_delay: float = 0.05,
    ) -> None:
        self.sessions = sessions
        self.link = link
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.batch = batch
        self.lease = lease  # None: the only replica (always the leader)
        self.retention_seconds = retention_seconds
        self.prune_interval = prune_interval
        self._wake = asyncio.Event()
        self._notify = asyncio.Event()  # standby: tell the leader about our commits
        self._stop = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._next_prune = 0.0
        self._acked: list[int] = []  # published, to be marked by the next read
        self.mark_delay = mark_delay
        self.published = 0
        self.pruned = 0

    @property
    def is_leader(self) -> bool:
        """Whether this replica relays the outbox (as of its last lease check)."""
        return self.lease is None or self.lease.is_leader

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: publish now rather than at the next poll.

        On a standby replica the leader is told instead (``NOTIFY``, sent in the background).
        """
        self._wake.set()
        if not self.is_leader:
            self._notify.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="snapshot-outbox-relay")
        if self.lease is not None and not self.lease.always:
            self._notifier = asyncio.create_task(self._notify_leader(), name="snapshot-outbox-notify")

    async def _notify_leader(self) -> None:
        """Send one NOTIFY per burst of commits on this standby (the leader LISTENs)."""
        while True:
            await self._notify.wait()
            self._notify.clear()  # commits during the NOTIFY set it again: none is missed
            try:
                async with self.sessions() as session:
                    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": WAKE_CHANNEL})
                    await session.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the leader's poll relays the rows anyway
                log.debug("outbox relay: NOTIFY failed: %s", type(exc).__name__)
                await asyncio.sleep(self.poll_seconds)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                if self.link.js is None:
                    await self._sleep(self.poll_seconds, self.link.ready)
                    continue
                if self.lease is not None and not await self.lease.held():
                    # Standby: its local commits NOTIFY the leader instead of waking this loop,
                    # which only tries the lease again at the poll interval.
                    await self._sleep(self.poll_seconds, self._stop)
                    continue
                await self.flush()
                await self._prune_if_due()
                backoff = 0.1
                if self._acked:
                    # The next read marks them; when none comes soon, a statement of its own.
                    await self._sleep(self.mark_delay, self._wake)
                    if self._wake.is_set():
                        continue
                    await self.mark_acked()
                await self._sleep(self.poll_seconds, self._wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Never log payloads; the type is enough to see NATS is down.
                log.warning(
                    "outbox relay: publish failed (%s); retrying in %.1fs", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self, seconds: float, event: asyncio.Event) -> None:
        # flush() clears the wake flag before it reads, so a commit during a flush is not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def flush(self) -> int:
        """Publish every committed, unpublished row now; returns how many were published.

        Raises when NATS cannot take a message (the rows stay unpublished for the next try).
        The rows acked are marked published by the next read (one statement for both on
        Postgres), not by a statement of their own: until then a crash re-sends them, and
        JetStream drops the copies (``Nats-Msg-Id``, within its duplicate window of minutes;
        or, when no read follows within ``mark_delay``, a statement of their own).
        """
        js = self.link.js
        if js is None:
            raise ConnectionError("NATS is not connected yet")
        total = 0
        while True:
            self._wake.clear()
            rows = await self._read_unpublished()
            if not rows:
                return total
            done, failure = await self._publish(js, rows)
            self._acked.extend(done)
            total += len(done)
            self.published += len(done)
            if failure is not None:
                raise failure
            if len(rows) < self.batch:
                # Every row committed before the read is out; a commit since then set the
                # wake flag again (cleared before the read), so no second read is needed now.
                return total

    async def _publish(
        self, js: JetStreamContext, rows: list[store.Row]
    ) -> tuple[list[int], BaseException | None]:
        """Publish ``rows`` in order and wait for their acks together: the seqs acked, and
        the first failure.

        The messages go out on one connection in ``seq`` order (JetStream stores them in
        that order) and their acks are awaited at once: one round trip to NATS per batch,
        not per message. The caller marks what was acked, then raises the failure; a failed
        message is sent again by the next flush (``Nats-Msg-Id`` drops a copy that was
        stored after all).
        """
        futures: list[asyncio.Future[Any]] = []
        try:
            for row in rows:
                futures.append(
                    await js.publish_async(
                        row["subject"], row["payload"], headers={"Nats-Msg-Id": row["msg_id"]}
                    )
                )
            if futures:
                await asyncio.wait(futures, timeout=self.publish_timeout)
        finally:
            for future in futures:
                future.cancel()  # no-op for those done; the rest timed out (or we are stopping)
        acked: list[int] = []
        failure: BaseException | None = None
        for row, future in zip(rows, futures, strict=False):
            if future.cancelled():
                failure = failure or TimeoutError(f"no ack within {self.publish_timeout}s")
            elif future.exception() is not None:
                failure = failure or future.exception()
            else:
                acked.append(row["seq"])
        if isinstance(failure, NoStreamResponseError):
            # The server lost its streams (a fresh store): recreate, then retry.
            with contextlib.suppress(Exception):
                await self.link.ensure_streams()
        return acked, failure

    async def _read_unpublished(self) -> list[store.Row]:
        """The next unpublished rows, marking those acked since the last read on the way."""
        engine = self.sessions.kw.get("bind")
        if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
            # One statement on the driver connection: no BEGIN/COMMIT around it (it sees
            # committed rows only), and none of a session's per-statement work, which was
            # most of the relay's CPU per flush under load (claim profile).
            stmt = driver_statement(engine.dialect, store.MARK_AND_READ_PG)
            params = store.mark_and_read_params(self._acked, datetime.now(UTC), self.batch)
            async with driver_connection(engine) as driver:
                raw = await pg_fetch(driver, stmt.sql, *stmt.args(params))
            self._acked = []
            return [stmt.row(r) for r in raw]
        await self.mark_acked()  # SQLite: the mark takes the write lock; the read then follows
        async with self.sessions() as session:
            return await store.unpublished(session, self.batch)

    async def mark_acked(self) -> None:
        """Write down what was acked but not yet marked (on stop; tests)."""
        if self._acked:
            async with begin_write(self.sessions) as session:
                await store.mark_published(session, self._acked, datetime.now(UTC))
            self._acked = []

    async def _prune_if_due(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.prune_interval
        await self.prune()

    async def prune(self, now: datetime | None = None) -> int:
        """Delete outbox rows delivered more than ``retention_seconds`` before ``now``; how many."""
        before = (now or datetime.now(UTC)) - timedelta(seconds=self.retention_seconds)
        total = 0
        while True:
            # Bounded deletes: a large backlog of history never holds the write lock for long.
            async with begin_write(self.sessions) as session:
                n = await store.prune_published(session, before, self.batch * 5)
            total += n
            if n < self.batch * 5:
                break
        self.pruned += total
        return total

    async def stop(self, final_flush_timeout: float = 5.0) -> None:
        """Stop the loop after one last flush if leading (bounded: NATS may be down), then
        give the lease up so a standby takes over at once."""
        self._stopping = True
        self._wake.set()
        self._stop.set()
        for task in (self._task, self._notifier):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.link.js is not None and self.is_leader:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), final_flush_timeout)
        with contextlib.suppress(Exception):  # else the next leader re-sends them (deduplicated)
            await asyncio.wait_for(self.mark_acked(), final_flush_timeout)
        if self.lease is not None:
            await self.lease.release()
