"""The compose health check command against a real gRPC server and a closed port."""

from __future__ import annotations

import asyncio
import sys

from alethia.rpc.server import create_server
from alethia.stack.infra import free_port


async def _check(*addresses: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alethia.stack.healthcheck", *addresses,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait()


async def test_healthcheck_exit_codes() -> None:
    # The token does not matter: health is open, as load balancers need it.
    server, port, health = await create_server([], ["alethia.test.v1.Nothing"], auth_token="secret")
    try:
        assert await _check(f"127.0.0.1:{port}") == 0
        assert await _check(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}") == 1
        await health.enter_graceful_shutdown()  # NOT_SERVING while draining
        assert await _check(f"127.0.0.1:{port}") == 1
    finally:
        await server.stop(None)
    assert await _check() == 2  # usage
