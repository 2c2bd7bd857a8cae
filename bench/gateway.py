"""The gateway's cost: GetSpec through Envoy (REST/JSON) against direct gRPC, and Envoy's memory.

- ``gateway_getspec``: a batch of GetSpec calls for the full example Spec, as REST through
  the gateway (``GET /api/specs/{id}``, JSON parsed by the client: what a Console does) and
  as gRPC straight to the spec service, alternating, with the same user token (both sides
  verify it). Value and baseline are milliseconds per call; goal: ratio <= 1.3.
- ``gateway_idle_rss_mb``: Envoy's resident memory once idle (after the REST run), beside
  the largest idle Python service of the same stack.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from alethia.rpc.client import connect
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from bench.harness import alternate_async
from bench.memory import rss_mb
from bench.specs import full_spec
from tests.harness import Pipeline

BATCH = 20  # calls per sample: a sample is long enough for the timer, short enough to alternate


async def getspec_rest_vs_grpc(st: Pipeline, reps: int) -> dict[str, Any]:
    """Milliseconds per GetSpec: REST through Envoy vs gRPC to the service, same token."""
    assert st.supervisor is not None and st.supervisor.info is not None
    info = st.supervisor.info
    token = (await asyncio.to_thread(Path(info.gateway_token_file).read_text)).strip()
    spec = await st.create_spec(full_spec(f"gw-{uuid.uuid4().hex[:6]}", st.identity_id))
    channel = connect(st.addresses["specs"], token)
    stub = specs_pb2_grpc.SpecServiceStub(channel)
    url = f"{info.gateway}/api/specs/{spec.id}"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:

        async def rest() -> None:
            for _ in range(BATCH):
                async with http.get(url, headers=headers) as resp:
                    body = json.loads(await resp.read())
                    if resp.status != 200 or body["id"] != spec.id:
                        raise RuntimeError(f"REST GetSpec answered {resp.status}")

        async def grpc_direct() -> None:
            for _ in range(BATCH):
                got = await stub.GetSpec(specs_pb2.GetSpecRequest(id=spec.id))
                if got.id != spec.id:
                    raise RuntimeError("gRPC GetSpec answered another Spec")

        try:
            for _ in range(2):  # warm-up: connections, token caches
                await rest()
                await grpc_direct()
            samples = await alternate_async(rest, grpc_direct, reps)
        finally:
            await channel.close()
    res = samples.result("s")
    for k in ("value", "baseline", "p95", "baseline_p95"):
        res[k] = res[k] * 1000 / BATCH
    res["unit"] = "ms/call"
    res["calls_per_sample"] = BATCH
    return res


async def gateway_idle_rss(st: Pipeline, settle: float) -> dict[str, Any]:
    """Envoy's RSS in MB once idle; baseline: the largest idle service of the same stack."""
    assert st.supervisor is not None
    await asyncio.sleep(settle)
    pids = st.supervisor.pids()
    envoy = rss_mb(pids["gateway"])
    services = {name: rss_mb(pid) for name, pid in st.pids().items()}
    largest = max(services.values())
    return {
        "value": round(envoy, 1),
        "baseline": round(largest, 1),
        "ratio": envoy / largest if largest else float("nan"),
        "unit": "MB",
        "baseline_is": f"largest idle service ({max(services, key=lambda n: services[n])})",
    }
