"""``python -m services.mapper``: run the mapper service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

from alethia.rpc.server import serve
from services.mapper.app import start
from services.mapper.settings import MapperSettings


async def _main() -> None:
    settings = MapperSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    running = await start(settings)
    logging.getLogger("services.mapper").info("mapper listening on %s", running.address)
    await serve(running.server, running.health)


if __name__ == "__main__":
    asyncio.run(_main())
