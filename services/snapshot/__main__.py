"""``python -m services.snapshot``: run the snapshot service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

from alethia.rpc.server import serve
from alethia.stack.migrate_child import migrate_in_child
from services.snapshot.app import start
from services.snapshot.settings import SnapshotSettings


async def _main() -> None:
    settings = SnapshotSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic in a child process: once imported it would stay in this one (alethia/stack/migrate_child.py).
    await migrate_in_child("snapshot", settings.database_url)
    svc = await start(settings, migrated=True)
    logging.getLogger("services.snapshot").info("snapshot service listening on %s", svc.address)
    await serve(svc.server, svc.health)
    # The server has stopped; now the rescuer, the relay (after a final flush), NATS, the engine.
    for close in reversed(svc.closers):
        await close()
    logging.getLogger("services.snapshot").info("snapshot service stopped")


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
