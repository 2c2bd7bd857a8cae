"""A service process's start-up migrations, run in a child process.

Alembic, Mako and the migration scripts stay loaded once imported: run in the service's own
process they hold about 12 MB of RSS for its whole life to be used once (bench:
``rss_idle_mb``). The process entry points (``python -m services.specs`` and
``python -m services.snapshot``) run ``python -m alethia.stack.bootstrap migrate`` for
their own database instead, then start the service with ``migrated=True``. In-process
starts (tests, the harness) keep migrating in a thread: a child per start would cost them
a Python start-up each.
"""

from __future__ import annotations

import asyncio
import os
import sys

from alethia.errors import Unavailable
from alethia.stack.bootstrap import MIGRATED


async def migrate_in_child(service: str, database_url: str) -> None:
    """Upgrade ``service``'s tables in ``database_url`` to head in a child process.

    The URL (it may carry a password) goes through the child's environment, never its
    command line. Its output goes to this process's log; a failure raises, naming the service.
    """
    env = {k: v for k, v in os.environ.items() if k not in MIGRATED.values()}
    env[MIGRATED[service]] = database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alethia.stack.bootstrap", "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    code = await proc.wait()
    if code != 0:
        raise Unavailable(f"{service}: database migrations failed (exit {code}); the log above says why")


__all__ = ["migrate_in_child"]
