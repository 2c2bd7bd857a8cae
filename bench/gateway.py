"""The gateway's cost: GetSpec through Envoy (REST/JSON) against direct gRPC, and Envoy's memory.

- ``gateway_getspec``: a batch of GetSpec calls for the full example Spec, as REST through
  the gateway (``GET /api/specs/{id}`` on one kept-alive HTTP/1.1 connection, JSON parsed by
  the client: what a Console does) and as gRPC straight to the spec service, alternating,
  with the same user token (both sides verify it). Value and baseline are milliseconds per
  call; goal: ratio <= 1.3.

  The REST side's client is a minimal HTTP/1.1 client on asyncio streams, as a browser's
  native HTTP stack is, so the ratio is the gateway's cost (Envoy, the transcoding, the
  JSON) and not a Python HTTP library's. The same calls through aiohttp are timed in the
  same rotation and reported beside it (``aiohttp_ms_per_call``, ``aiohttp_ratio``), with
  what aiohttp alone costs per call against a local server answering the same bytes
  (``aiohttp_client_ms``).
- ``gateway_idle_rss_mb``: Envoy's resident memory once idle (after the REST run), beside
  the largest idle Python service of the same stack.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from alethia.rpc.client import connect
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from bench.harness import alternate_async
from bench.memory import rss_mb
from bench.specs import full_spec
from tests.harness import Pipeline

BATCH = 20  # calls per sample: a sample is long enough for the timer, short enough to alternate


class KeepAliveClient:
    """GET over one kept-alive HTTP/1.1 connection: status line, headers, then the body by
    ``content-length`` or chunked framing (Envoy uses either)."""

    def __init__(self, base_url: str) -> None:
        parsed = urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> KeepAliveClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        if "content-length" in fields:
            return status, await self.reader.readexactly(int(fields["content-length"]))
        if "chunked" not in fields.get("transfer-encoding", "").lower():
            raise RuntimeError(f"an answer with neither content-length nor chunked framing: {fields}")
        body = bytearray()
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readuntil(b"\r\n")  # the empty trailer
        return status, bytes(body)


async def _client_only_ms(http: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> float:
    """What aiohttp itself costs per GET: against a local server that answers ``body`` at once."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(BATCH):
                async with http.get(url, headers=headers) as resp:
                    json.loads(await resp.read())
            times.append((time.perf_counter() - t0) * 1000 / BATCH)
        return statistics.median(times)
    finally:
        server.close()
        await server.wait_closed()


async def getspec_rest_vs_grpc(st: Pipeline, reps: int) -> dict[str, Any]:
    """Milliseconds per GetSpec: REST through Envoy vs gRPC to the service, same token."""
    assert st.supervisor is not None and st.supervisor.info is not None
    info = st.supervisor.info
    token = (await asyncio.to_thread(Path(info.gateway_token_file).read_text)).strip()
    spec = await st.create_spec(full_spec(f"gw-{uuid.uuid4().hex[:6]}", st.identity_id))
    channel = connect(st.addresses["specs"], token)
    stub = specs_pb2_grpc.SpecServiceStub(channel)
    path = f"/api/specs/{spec.id}"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, KeepAliveClient(info.gateway) as client:

        def check(status: int, body: Any) -> None:
            if status != 200 or body["id"] != spec.id:
                raise RuntimeError(f"REST GetSpec answered {status}")

        async def rest() -> None:
            for _ in range(BATCH):
                status, raw = await client.get(path, headers)
                check(status, json.loads(raw))

        async def rest_aiohttp() -> None:
            for _ in range(BATCH):
                async with http.get(info.gateway + path, headers=headers) as resp:
                    check(resp.status, json.loads(await resp.read()))

        async def grpc_direct() -> None:
            for _ in range(BATCH):
                got = await stub.GetSpec(specs_pb2.GetSpecRequest(id=spec.id))
                if got.id != spec.id:
                    raise RuntimeError("gRPC GetSpec answered another Spec")

        try:
            for _ in range(2):  # warm-up: connections, token caches
                await rest()
                await rest_aiohttp()
                await grpc_direct()
            samples = await alternate_async(rest, grpc_direct, reps)
            extra = await alternate_async(rest_aiohttp, grpc_direct, max(3, reps // 3))
            _, body = await client.get(path, headers)
            client_ms = await _client_only_ms(http, body, headers)
        finally:
            await channel.close()
    res = samples.result("s")
    for k in ("value", "baseline", "p95", "baseline_p95"):
        res[k] = res[k] * 1000 / BATCH
    via_aiohttp = extra.result("s")
    res["aiohttp_ms_per_call"] = via_aiohttp["value"] * 1000 / BATCH
    res["aiohttp_ratio"] = via_aiohttp["ratio"]
    res["aiohttp_client_ms"] = client_ms
    res["response_bytes"] = len(body)
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
