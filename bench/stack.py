"""The system under test, started the way ``alethia up`` starts it: one process per service.

- :class:`SharedInfra`: one real ``nats-server`` (JetStream) and one SeaweedFS S3 for the
  whole run, the same binaries the embedded stack uses.
- :class:`PostgresDatabases`: fresh databases on the benchmark's Postgres server, dropped
  at the end.
- :class:`ServiceStack`: the four services as separate processes through the embedded
  stack's own supervisor (:class:`alethia.stack.supervisor.Stack`), on SQLite
  (``embedded``) or Postgres (``postgres``), plus gRPC clients and helpers to create
  Specs, queue jobs and wait for them.

Everything lives under one temporary directory, removed at the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from alethia.events.v1 import events_pb2
from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.rpc.client import connect
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import cloud_identity_from_dict, spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import ManagedProcess, NatsServer, SeaweedS3, free_port
from alethia.stack.supervisor import Stack, StackConfig, health_status

TERMINAL = {events_pb2.SUCCEEDED, events_pb2.FAILED, events_pb2.CANCELLED, events_pb2.ERRORED}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def ts_seconds(ts: Any) -> float:
    """A protobuf Timestamp as epoch seconds (0.0 when unset)."""
    return float(ts.seconds) + ts.nanos / 1e9


@dataclass
class SharedInfra:
    """NATS JetStream and SeaweedFS S3 for the whole run (started from the main thread)."""

    root: Path
    nats: NatsServer | None = None
    s3: SeaweedS3 | None = None

    def start(self) -> SharedInfra:
        self.nats = NatsServer(self.root / "nats", die_with_parent=True).start()
        self.s3 = SeaweedS3(self.root / "s3", die_with_parent=True).start()
        return self

    def stop(self) -> None:
        if self.s3:
            self.s3.stop()
        if self.nats:
            self.nats.stop()


class PostgresDatabases:
    """Creates databases on the server of ``admin_url`` and drops them on :meth:`drop_all`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
        self.created: list[str] = []

    async def _exec(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def server_version(self) -> str:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def create(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await self._exec(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.admin_url.rsplit('/', 1)[0]}/{name}"

    async def drop_all(self) -> None:
        for name in self.created:
            try:
                await self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reporting only: never fail the run on cleanup
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        self.created.clear()


@dataclass
class ServiceStack:
    """The four services as processes (``alethia up``'s supervisor), and clients to them."""

    kind: str  # "embedded" | "postgres"
    root: Path
    infra: SharedInfra
    specs_db: str = ""
    snapshot_db: str = ""
    supervisor: Stack | None = None
    token: str = ""
    addresses: dict[str, str] = field(default_factory=dict)
    identity_id: str = ""
    extra_runners: list[ManagedProcess] = field(default_factory=list)
    _channels: list[Any] = field(default_factory=list)
    _nc: Any = None
    _finished: dict[str, asyncio.Event] = field(default_factory=dict)
    phases: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        assert self.infra.nats and self.infra.s3
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
        env["ALETHIA_NATS_URL"] = self.infra.nats.url
        env["ALETHIA_S3_ENDPOINT"] = self.infra.s3.endpoint
        env["ALETHIA_LOG_LEVEL"] = "WARNING"
        if self.specs_db:
            env["ALETHIA_SPECS_DATABASE_URL"] = self.specs_db
        if self.snapshot_db:
            env["ALETHIA_SNAPSHOT_DATABASE_URL"] = self.snapshot_db
        return env

    def start(self) -> ServiceStack:
        """Start every service and wait until healthy (blocking: call from the main thread)."""
        self.supervisor = Stack(StackConfig(data_dir=self.root, free_ports=True, env=self.env()))
        info = self.supervisor.start()
        self.addresses = dict(info.services)
        self.token = self.supervisor.service_token()
        self.connect()
        return self

    def connect(self) -> None:
        """gRPC clients to the services at ``addresses``."""
        ch = connect(self.addresses["specs"], self.token)
        ch2 = connect(self.addresses["snapshot"], self.token)
        ch3 = connect(self.addresses["mapper"], self.token)
        # RunnerService accepts only runners: the benchmark's claimers present the runner token.
        runner_token = self.supervisor.runner_token() if self.supervisor else self.token
        ch4 = connect(self.addresses["snapshot"], runner_token)
        self._channels = [ch, ch2, ch3, ch4]
        self.spec_stub = specs_pb2_grpc.SpecServiceStub(ch)
        self.jobs = snapshot_pb2_grpc.SnapshotServiceStub(ch2)
        self.runner_stub = snapshot_pb2_grpc.RunnerServiceStub(ch4)
        self.mapper = mapper_pb2_grpc.MapperServiceStub(ch3)

    async def open_events(self) -> None:
        """Listen for terminal job events on NATS, so waiting for a job costs no polling.

        Polling GetJob every few milliseconds would take CPU from the very services and
        Terraform runs being measured (a 2-core machine notices).
        """
        import nats

        assert self.infra.nats is not None
        self._nc = await nats.connect(self.infra.nats.url, name=f"bench-{self.kind}")

        async def on_event(msg: Any) -> None:
            job_id = msg.subject.split(".")[2]
            self._finished.setdefault(job_id, asyncio.Event()).set()

        for event in ("succeeded", "failed", "cancelled", "errored"):
            await self._nc.subscribe(f"alethia.jobs.*.{event}", cb=on_event)
        await self._nc.flush()

    @property
    def snapshot_database_url(self) -> str:
        assert self.supervisor is not None
        return self.snapshot_db or self.supervisor.data.sqlite_url("snapshot")

    @property
    def specs_database_url(self) -> str:
        assert self.supervisor is not None
        return self.specs_db or self.supervisor.data.sqlite_url("specs")

    def pids(self) -> dict[str, int]:
        assert self.supervisor is not None
        return {k: v for k, v in self.supervisor.pids().items() if k not in ("nats", "s3", "gateway")}

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        for ch in self._channels:
            await ch.close()
        self.stop_extra_runners()
        if self.supervisor is not None:
            await asyncio.to_thread(self.supervisor.stop)

    # ------------------------------------------------------------------ runners

    def stop_default_runner(self) -> None:
        """Stop the stack's own executor (benchmarks that must be the only claimers)."""
        assert self.supervisor is not None
        svc = self.supervisor.services.get("executor")
        if svc is not None:
            svc.process.stop(grace=30)

    def start_runners(
        self, runner_ids: list[str], concurrency: int, snapshot_addresses: list[str] | None = None
    ) -> list[ManagedProcess]:
        """More runner processes (``python -m services.executor``) wired like the stack's own.

        ``snapshot_addresses``: the snapshot replica each runner talks to (default: the
        stack's). Started together, then waited for until each answers its health check.
        Call from the main thread: the children die with it (``PR_SET_PDEATHSIG`` is per thread).
        """
        assert self.supervisor is not None
        started: list[tuple[ManagedProcess, str]] = []
        for i, runner_id in enumerate(runner_ids):
            addresses = dict(self.addresses)
            addresses["executor"] = f"127.0.0.1:{free_port()}"
            if snapshot_addresses:
                addresses["snapshot"] = snapshot_addresses[i]
            env = self.supervisor.service_env("executor", addresses, self.token)
            env["ALETHIA_RUNNER_ID"] = runner_id
            env["ALETHIA_RUNNER_CONCURRENCY"] = str(concurrency)
            proc = ManagedProcess(
                [sys.executable, "-m", "services.executor"],
                self.root / "logs" / f"{runner_id}.log",
                env=env,
                die_with_parent=True,
            )
            proc.start()
            self.extra_runners.append(proc)
            started.append((proc, addresses["executor"]))
        deadline = time.monotonic() + 90
        for proc, address in started:
            while health_status(address, 0.5) != 1:  # SERVING
                if not proc.running() or time.monotonic() > deadline:
                    raise RuntimeError(f"a runner did not start (log {proc.log_path})")
                time.sleep(0.1)
        return [p for p, _ in started]

    def start_snapshot_replica(self) -> tuple[ManagedProcess, str]:
        """A second snapshot service process on the stack's database; returns it and its address.

        It serves gRPC only (the stack's replica keeps the HTTP event stream) and competes
        for the outbox relay's leader lease. Call from the main thread.
        """
        assert self.supervisor is not None
        addresses = dict(self.addresses)
        addresses["snapshot"] = f"127.0.0.1:{free_port()}"
        addresses["events"] = ""
        env = self.supervisor.service_env("snapshot", addresses, self.token)
        proc = ManagedProcess(
            [sys.executable, "-m", "services.snapshot"],
            self.root / "logs" / "snapshot-replica.log",
            env=env,
            die_with_parent=True,
        )
        proc.start()
        self.extra_runners.append(proc)  # stopped with the extra runners
        deadline = time.monotonic() + 90
        while health_status(addresses["snapshot"], 0.5) != 1:  # SERVING
            if not proc.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the snapshot replica did not start (log {proc.log_path})")
            time.sleep(0.1)
        return proc, addresses["snapshot"]

    @staticmethod
    def pause(proc: ManagedProcess) -> None:
        """SIGSTOP: the runner takes no work until :meth:`resume` (it holds no job while idle)."""
        if proc.proc is not None:
            proc.proc.send_signal(signal.SIGSTOP)

    @staticmethod
    def resume(proc: ManagedProcess) -> None:
        if proc.proc is not None:
            proc.proc.send_signal(signal.SIGCONT)

    def stop_extra_runners(self) -> None:
        for proc in self.extra_runners:
            self.resume(proc)  # a stopped process would only see SIGTERM once continued
            proc.stop(grace=30)
        self.extra_runners.clear()

    # ------------------------------------------------------------------ helpers

    async def create_identity(self) -> str:
        ident = cloud_identity_from_dict(
            {
                "name": f"bench-{uuid.uuid4().hex[:8]}",
                "provider": "aws",
                "account_id": "123456789012",
                "credentials_ref": "env:AWS_PROFILE_BENCH",
            }
        )
        resp = await self.spec_stub.CreateCloudIdentity(specs_pb2.CreateCloudIdentityRequest(identity=ident))
        self.identity_id = resp.id
        return str(resp.id)

    async def create_spec(self, data: dict[str, Any]) -> specs_pb2.Spec:
        return await self.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))

    async def queue(self, spec_id: str, jtype: int, plan_job_id: str = "") -> snapshot_pb2.Job:
        return await self.jobs.QueueJob(
            snapshot_pb2.QueueJobRequest(
                spec_id=spec_id,
                type=jtype,  # type: ignore[arg-type]
                plan_job_id=plan_job_id,
                idempotency_key=uuid.uuid4().hex,
                requested_by="bench",
            )
        )

    async def wait(self, job_id: str, limit: float = 300.0) -> snapshot_pb2.Job:
        """Wait for the job's terminal event (GetJob once a second as a safety net), return the row.

        Timings come from the row (``start_time``/``end_time``), not from when this returns.
        """
        deadline = time.monotonic() + limit
        finished = self._finished.setdefault(job_id, asyncio.Event())
        try:
            while True:
                if self._nc is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(finished.wait(), 1.0)
                try:
                    job = await self.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job_id), timeout=10)
                except grpc.aio.AioRpcError:
                    job = None
                if job is not None and job.status in TERMINAL:
                    return job
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} not finished after {limit:.0f}s")
                if self._nc is None:
                    await asyncio.sleep(0.05)
        finally:
            self._finished.pop(job_id, None)

    async def run(self, spec_id: str, jtype: int, plan_job_id: str = "") -> tuple[float, snapshot_pb2.Job]:
        """Queue a job and wait; (seconds from QueueJob sent to the job's end time, the job).

        ``self.phases`` collects where the time went: the QueueJob call, the pickup (call
        returned -> claimed) and the run (claimed -> completed), in seconds.
        """
        t0 = time.time()
        job = await self.queue(spec_id, jtype, plan_job_id)
        returned = time.time()
        done = await self.wait(job.id)
        if done.status != events_pb2.SUCCEEDED:
            raise RuntimeError(
                f"{events_pb2.JobType.Name(jtype)} job {job.id} ended "
                f"{events_pb2.JobStatus.Name(done.status)}: {done.error}"
            )
        start, end = ts_seconds(done.start_time), ts_seconds(done.end_time)
        self.phases.setdefault(jtype, []).append((returned - t0, start - returned, end - start))
        return end - t0, done

    async def tfvars(self, spec_id: str) -> tuple[str, str]:
        """(template, tfvars JSON) of a Spec as the runner will get them."""
        snap = await self.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec_id))
        resp = await self.mapper.RenderTfvars(
            mapper_pb2.RenderTfvarsRequest(snapshot_json=snap.snapshot_json)
        )
        return resp.template or resp.provider, resp.tfvars_json
