"""``rss_idle_mb``: resident memory of each service process once idle.

The services run as the processes ``alethia up`` starts. The floor beside them is a bare
Python gRPC server (the same ``alethia.rpc.server.create_server`` with health and
reflection, no service) in a process of its own: what any Python gRPC service pays before
its first line of logic.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import psutil

from tests.harness import Pipeline

FLOOR_CODE = """
import asyncio
from alethia.rpc.server import create_server

async def main():
    server, port, _ = await create_server([], [], "127.0.0.1:0", None)
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1024 * 1024)


def floor_rss_mb(settle: float) -> float:
    """RSS of a bare Python gRPC server process after ``settle`` seconds."""
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_CODE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the port: the server is up
        time.sleep(settle)
        return rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


async def rss_idle(st: Pipeline, settle: float) -> dict[str, Any]:
    """RSS in MB of every service process after ``settle`` idle seconds; value = the largest."""
    await asyncio.sleep(settle)
    per = {name: round(rss_mb(pid), 1) for name, pid in st.pids().items()}
    floor = await asyncio.to_thread(floor_rss_mb, settle)
    value = max(per.values())
    return {
        "value": value,
        "baseline": round(floor, 1),
        "ratio": value / floor if floor else float("nan"),
        "unit": "MB",
        "per_service": per,
        "note": "baseline: a bare Python gRPC server process (health + reflection only)",
    }
