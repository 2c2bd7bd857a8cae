"""The floor of the service path: the raw baselines' SQL behind bare ``grpc.aio`` handlers.

``python -m bench.floor --specs-db URL --snapshot-db URL`` serves, on a port of its own
(printed on stdout once it listens), the same protobuf methods the services serve, with
handlers that run exactly the SQL of each benchmark's raw baseline and nothing else: no
interceptors, no validation, no ORM, no events. A service-path benchmark runs its client
against this process too (a separate process, as the real service is), so its result
shows the ratio to raw SQL and to this floor side by side: what is left between the
floor and the service is ours to cut; what lies between raw SQL and the floor is the price
of any gRPC API on this machine.

- ``CreateSpec``: the Spec read from the request, then the raw inserts of its rows in one
  transaction (``bench.database._raw_create``).
- ``BuildSnapshot``: the one-query snapshot JSON (``bench.database.snapshot_sql``).
- ``ClaimJob`` / ``CompleteJob`` / ``CompleteAndClaimJob``: the raw claim ``UPDATE … RETURNING``
  and the completing ``UPDATE`` on the ``bench_claim`` table (both, in that order, for the
  combined call), one database connection per concurrent caller.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_to_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from bench.database import RawDB, raw_claim_once, raw_complete_once, raw_create, snapshot_sql


class _Pool:
    """Raw connections handed out one per call (asyncpg or sqlite3), opened on demand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.free: list[RawDB] = []
        self.all: list[RawDB] = []

    @asynccontextmanager
    async def get(self) -> AsyncIterator[RawDB]:
        db = self.free.pop() if self.free else None
        if db is None:
            db = await RawDB(self.url).open()
            self.all.append(db)
        try:
            yield db
        finally:
            self.free.append(db)

    async def close(self) -> None:
        for db in self.all:
            await db.close()


class FloorSpecs(specs_pb2_grpc.SpecServiceServicer):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool

    async def CreateSpec(self, request: specs_pb2.CreateSpecRequest, context: Any) -> specs_pb2.Spec:
        data = spec_to_dict(request.spec, include_output_only=False)
        async with self.pool.get() as db:
            spec_id = await raw_create(db, data)
        return specs_pb2.Spec(id=spec_id, revision=1)


class FloorSnapshot(snapshot_pb2_grpc.SnapshotServiceServicer):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.sql: dict[bool, str] = {}

    async def BuildSnapshot(
        self, request: snapshot_pb2.BuildSnapshotRequest, context: Any
    ) -> snapshot_pb2.BuildSnapshotResponse:
        async with self.pool.get() as db:
            sql = self.sql.setdefault(db.pg, db.sql(snapshot_sql(db.pg)))
            if db.pg:
                text = await db.conn.fetchval(sql, request.spec_id)
            else:
                text = await asyncio.to_thread(lambda: db.conn.execute(sql, (request.spec_id,)).fetchone()[0])
        return snapshot_pb2.BuildSnapshotResponse(snapshot_json=text or "")


class FloorRunner(snapshot_pb2_grpc.RunnerServiceServicer):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool

    async def ClaimJob(
        self, request: snapshot_pb2.ClaimJobRequest, context: Any
    ) -> snapshot_pb2.ClaimJobResponse:
        async with self.pool.get() as db:
            job_id = await raw_claim_once(db, request.runner_id)
        if job_id is None:
            return snapshot_pb2.ClaimJobResponse(claimed=False)
        return snapshot_pb2.ClaimJobResponse(claimed=True, lease=snapshot_pb2.Lease(job_id=str(job_id)))

    async def CompleteJob(self, request: snapshot_pb2.CompleteJobRequest, context: Any) -> snapshot_pb2.Job:
        async with self.pool.get() as db:
            await raw_complete_once(db, int(request.lease.job_id))
        return snapshot_pb2.Job(id=request.lease.job_id)

    async def CompleteAndClaimJob(
        self, request: snapshot_pb2.CompleteAndClaimJobRequest, context: Any
    ) -> snapshot_pb2.CompleteAndClaimJobResponse:
        async with self.pool.get() as db:
            await raw_complete_once(db, int(request.lease.job_id))
            job_id = await raw_claim_once(db, request.next.runner_id)
        nxt = (
            snapshot_pb2.ClaimJobResponse(claimed=True, lease=snapshot_pb2.Lease(job_id=str(job_id)))
            if job_id is not None
            else snapshot_pb2.ClaimJobResponse(claimed=False)
        )
        return snapshot_pb2.CompleteAndClaimJobResponse(
            job=snapshot_pb2.Job(id=request.lease.job_id), next=nxt
        )


class FloorProcess:
    """``python -m bench.floor`` as a child process, and stubs to call it."""

    def __init__(self, specs_db: str, snapshot_db: str) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "bench.floor",
            "--specs-db",
            specs_db,
            "--snapshot-db",
            snapshot_db,
        ]
        self.proc: asyncio.subprocess.Process | None = None
        self.channel: grpc.aio.Channel | None = None

    async def start(self) -> FloorProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line.strip().isdigit():
            raise RuntimeError(f"the floor server did not start (said {line!r})")
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{int(line)}")
        self.specs = specs_pb2_grpc.SpecServiceStub(self.channel)
        self.snapshot = snapshot_pb2_grpc.SnapshotServiceStub(self.channel)
        self.runner = snapshot_pb2_grpc.RunnerServiceStub(self.channel)
        return self

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def serve(specs_db: str, snapshot_db: str) -> None:
    specs_pool, snapshot_pool = _Pool(specs_db), _Pool(snapshot_db)
    server = grpc.aio.server()
    specs_pb2_grpc.add_SpecServiceServicer_to_server(FloorSpecs(specs_pool), server)
    snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(FloorSnapshot(specs_pool), server)
    snapshot_pb2_grpc.add_RunnerServiceServicer_to_server(FloorRunner(snapshot_pool), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    try:
        await server.wait_for_termination()
    finally:
        await specs_pool.close()
        await snapshot_pool.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("--specs-db", required=True)
    p.add_argument("--snapshot-db", required=True)
    args = p.parse_args(argv)
    asyncio.run(serve(args.specs_db, args.snapshot_db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
