"""Which database failures are transient (answered UNAVAILABLE, so callers retry) and which are not.

The scenarios kill connections and crash a Postgres server for real; this pins down the
classification they rely on, error by error, including the ones a crash produces rarely
(``AdminShutdownError`` arrives only when a query is in flight at the shutdown).
"""

from __future__ import annotations

import asyncpg.exceptions as pg
import pytest
from sqlalchemy import exc as sa_exc

from alethia.database import is_connection_lost


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy raises it: a DBAPIError carrying the driver's error as ``orig`` and cause."""
    err = sa_exc.DBAPIError("SELECT 1", None, orig)  # type: ignore[arg-type]
    err.__cause__ = orig
    return err


@pytest.mark.parametrize(
    "error",
    [
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.CrashShutdownError("terminating connection because of crash of another server process"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connect call failed"),
        sa_exc.OperationalError("SELECT 1", None, Exception("server closed the connection")),  # type: ignore[arg-type]
    ],
    ids=lambda e: type(e).__name__,
)
def test_lost_connections_are_transient(error: BaseException) -> None:
    assert is_connection_lost(error)
    assert is_connection_lost(_wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        pg.UniqueViolationError("duplicate key value violates unique constraint"),
        pg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
        pg.StringDataRightTruncationError("value too long for type character varying(256)"),
        ValueError("not a database problem"),
        KeyError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_not(error: BaseException) -> None:
    assert not is_connection_lost(error)
    assert not is_connection_lost(_wrapped(error))
