"""``python -m services.executor``: one runner process (settings from ALETHIA_* env vars)."""

from __future__ import annotations

import asyncio
import logging
import sys

# nats-py imports aiohttp at import time for its websocket transport only; a runner talks
# ``nats://`` and never uses aiohttp. A None entry makes that import fail, which nats-py
# handles (websockets unavailable): ~9 MB less idle RSS and ~0.1 s less start-up. Here in
# the process entry point only, before anything imports nats: in-process uses (tests) and
# the snapshot service (its SSE server is aiohttp) are unaffected.
sys.modules.setdefault("aiohttp", None)  # type: ignore[arg-type]

from alethia.rpc.server import serve  # noqa: E402
from services.executor.app import start  # noqa: E402
from services.executor.settings import ExecutorSettings  # noqa: E402


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
