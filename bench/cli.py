"""``cli_latency``: what a person (or a script) waits for one ``alethia`` command.

The whole process, side by side: ``alethia spec list --zone Z --json`` against the running
stack (found through its data directory and the local admin's token, as a user's shell
finds it) against ``python -c "import grpc"`` (the least any Python gRPC client pays), the
two alternating. The zone holds one full Spec, so the listing is one small page and the
measure is the CLI's own start-up and call, not the size of the answer; the service's
own answer time (ListSpecs over an open channel) is reported beside it. Goal: ratio <= 1.5.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from alethia.specs.v1 import specs_pb2
from bench.harness import alternate_async
from bench.specs import full_spec
from tests.harness import Pipeline


def _cli_env() -> dict[str, str]:
    # No ALETHIA_* from the caller: the CLI finds the stack by --stack-dir, like a user's shell.
    return {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}


async def _run(argv: list[str], env: dict[str, str]) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace')[-300:]}")
    return out


async def cli_latency(st: Pipeline, reps: int) -> dict[str, Any]:
    """Seconds per ``alethia spec list --json`` process vs per ``python -c "import grpc"``."""
    zone = f"zone-cli-{uuid.uuid4().hex[:6]}"
    data = full_spec(f"cli-{uuid.uuid4().hex[:6]}", st.identity_id)
    data["zone_id"] = zone
    spec = await st.create_spec(data)
    alethia = str(Path(sys.executable).with_name("alethia"))
    cli = [alethia, "spec", "list", "--zone", zone, "--json", "--stack-dir", str(st.tmp)]
    grpc_only = [sys.executable, "-c", "import grpc"]
    env = _cli_env()

    async def system() -> None:
        listed = json.loads(await _run(cli, env))
        if [s["id"] for s in listed] != [spec.id]:
            raise RuntimeError(f"alethia spec list returned {listed!r:.200}")

    async def baseline() -> None:
        await _run(grpc_only, env)

    for _ in range(2):  # warm-up: the page cache, .pyc files
        await system()
        await baseline()
    samples = await alternate_async(system, baseline, reps)
    res = samples.result("s")

    service: list[float] = []
    for _ in range(20):
        t0 = time.perf_counter()
        await st.spec_stub.ListSpecs(specs_pb2.ListSpecsRequest(zone_id=zone, page_size=200))
        service.append(time.perf_counter() - t0)
    service.sort()
    res["service_ms"] = round(service[len(service) // 2] * 1000, 2)
    res["command"] = "alethia spec list --zone Z --json --stack-dir DIR"
    res["baseline_is"] = 'python -c "import grpc"'
    return res
