"""The pooled connection's checkout check on Postgres (``alethia.database._ping_on_checkout``).

On a real server: a connection used a moment ago is handed out without a ping, one idle
for longer is pinged, and a connection whose backend was terminated is replaced before
the caller's statement runs, inside the bypass window too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from alethia.database import create_engine

pytestmark = pytest.mark.asyncio


_LOGGED: set[int] = set()  # driver connections with a query logger (asyncpg's have no __dict__)


async def _pid_and_pings(engine: Any, seen: list[str]) -> int:
    """Run one statement on a checked-out connection; ``seen`` gets what its driver sends."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if id(driver) not in _LOGGED:
            driver.add_query_logger(lambda record: seen.append(record.query))
            _LOGGED.add(id(driver))
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_recent_connection_is_not_pinged_and_an_idle_one_is(fresh_postgres_url: str) -> None:
    engine = create_engine(fresh_postgres_url, pool_size=1, max_overflow=0, ping_bypass_seconds=0.3)
    try:
        seen: list[str] = []
        pid = await _pid_and_pings(engine, seen)
        seen.clear()
        assert await _pid_and_pings(engine, seen) == pid
        assert ";" not in seen, seen  # checked in a moment ago: no ping
        await asyncio.sleep(0.4)
        seen.clear()
        assert await _pid_and_pings(engine, seen) == pid
        assert seen[0] == ";", seen  # idle past the window: one ping, before the statement
        assert seen.count(";") == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("bypass", [30.0, 0.0])
async def test_terminated_connection_is_replaced_before_the_statement(
    fresh_postgres_url: str, bypass: float
) -> None:
    engine = create_engine(fresh_postgres_url, pool_size=1, max_overflow=0, ping_bypass_seconds=bypass)
    admin = await asyncpg.connect(fresh_postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        seen: list[str] = []
        pid = await _pid_and_pings(engine, seen)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # The backend exits after the signal; wait until the server has closed it.
        for _ in range(100):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # let the pooled connection's socket see the close
        # Within the bypass window (30 s) as well as outside it: the caller never sees the loss.
        new_pid = await _pid_and_pings(engine, [])
        assert new_pid != pid
    finally:
        await admin.close()
        await engine.dispose()
