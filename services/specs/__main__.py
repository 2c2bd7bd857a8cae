"""``python -m services.specs``: run the spec service until SIGTERM/SIGINT.

Settings come from the environment (see :mod:`services.specs.settings`):
``ALETHIA_SPECS_DATABASE_URL``, ``ALETHIA_SPECS_LISTEN``, ``ALETHIA_SERVICE_TOKEN``.
"""

from __future__ import annotations

import asyncio
import logging

from alethia.rpc.server import serve
from alethia.stack.migrate_child import migrate_in_child
from services.specs.app import start
from services.specs.settings import SpecsSettings

log = logging.getLogger("services.specs")


async def main() -> None:
    """Start the service and serve until a termination signal, then shut down gracefully."""
    settings = SpecsSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic in a child process: once imported it would stay in this one (alethia/stack/migrate_child.py).
    await migrate_in_child("specs", settings.database_url)
    service = await start(settings, migrated=True)
    log.info("spec service listening on %s", service.address)
    try:
        await serve(service.server, service.health)
    finally:
        for close in reversed(service.closers):
            await close()
    log.info("spec service stopped")


if __name__ == "__main__":
    asyncio.run(main())
