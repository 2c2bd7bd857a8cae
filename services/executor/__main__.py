"""``python -m services.executor``: one runner process (settings from ALETHIA_* env vars)."""

from __future__ import annotations

import asyncio
import logging

from alethia.rpc.server import serve
from services.executor.app import start
from services.executor.settings import ExecutorSettings


async def main() -> None:
    settings = ExecutorSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    svc = await start(settings)
    runner = svc.runner
    assert runner is not None

    async def drain() -> None:
        # SIGTERM: stop taking work, let running Terraform finish or cancel it within the grace.
        await runner.drain(settings.runner_drain_grace_seconds)

    await serve(svc.server, svc.health, grace_seconds=5.0, on_shutdown=drain)
    for close in reversed(svc.closers):
        await close()


if __name__ == "__main__":
    asyncio.run(main())
