"""Measure CreateSpec / GetSpec latency for a full Spec over a real channel (prints; not a test).

    .venv/bin/python -m tests.specs.measure_latency [database_url] [iterations]

Default database: a temporary SQLite file. Each iteration creates a full AWS Spec in a
new workspace, then reads it back with GetSpec; prints median and p95 in milliseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from alethia.rpc.client import connect
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from tests.fixtures.specs import create_identity, full_spec_dict, start_specs


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"{name}: median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, n={len(ordered)}"


async def measure(url: str, iterations: int) -> None:
    service = await start_specs(url)
    try:
        async with connect(service.address) as channel:
            stub = specs_pb2_grpc.SpecServiceStub(channel)
            ident = await create_identity(stub, "aws")
            create_ms: list[float] = []
            get_ms: list[float] = []
            for i in range(iterations + 5):
                spec = spec_from_dict(full_spec_dict("aws", cloud_identity_id=ident.id, zone_id=f"zone-{i}"))
                t0 = time.perf_counter()
                created = await stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec))
                t1 = time.perf_counter()
                await stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
                t2 = time.perf_counter()
                if i >= 5:  # warm-up: connection pools, first-use imports
                    create_ms.append((t1 - t0) * 1000)
                    get_ms.append((t2 - t1) * 1000)
            print(url.split("://", 1)[0])
            print("  " + _summary("CreateSpec (full Spec)", create_ms))
            print("  " + _summary("GetSpec (full Spec, concurrent table reads)", get_ms))
    finally:
        await service.stop(None)


def main() -> None:
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite+aiosqlite:///{Path(tmp) / 'specs.db'}"
        asyncio.run(measure(url, iterations))


if __name__ == "__main__":
    main()
