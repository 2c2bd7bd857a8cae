"""One pipeline harness for the end-to-end tests, the reliability tests and the benchmarks.

:class:`Pipeline` starts the real services in one of two ways, with one set of options:

- in this process (default): the spec service, mapper and snapshot service on port 0
  (``app.start``), against the given databases, NATS and S3. Fast, and a test can reach
  into a service (the snapshot service's relay, a runner's child environment). With
  ``snapshot_process`` the snapshot service runs as its own process instead, on a fixed
  port, so a test can SIGKILL and restart it.
- as processes (``processes=True``): the four services started by ``alethia up``'s own
  supervisor (:class:`alethia.stack.supervisor.Stack`), on SQLite in the data directory
  unless database URLs are given: what benchmarks measure and what a user runs.

Either way runners run in this process (:meth:`Pipeline.start_runner`) or as processes
(:meth:`Pipeline.spawn_runner`, wired like the stack's own) that a test can SIGKILL with
their Terraform children; :meth:`Pipeline.start_snapshot_replica` adds a snapshot service
process on the same database. Then one identity, one Spec helper, one "queue and wait
until terminal", one event reader (:mod:`tests.harness.events`) and one teardown.

Options left at None keep the services' own defaults (benchmarks measure those);
:meth:`Pipeline.quick` sets the short leases and intervals tests want, so a lost runner
is noticed within seconds. Every wait polls or listens and fails naming what is stuck.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import grpc

from alethia.events.v1 import events_pb2
from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import S3Credentials, free_port
from alethia.stack.supervisor import Stack, StackConfig
from services.executor.settings import ExecutorSettings
from services.snapshot.settings import SnapshotSettings
from tests.fixtures.s3 import TEST_S3_RUNNER, TEST_S3_TERRAFORM, keyring_reference, open_artifact
from tests.fixtures.specs import create_identity, full_spec_dict, minimal_spec_dict, start_specs

from .children import REPO_ROOT, RunnerProcess, ServiceChild, settings_env
from .events import TerminalEvents, job_events
from .infra import SharedInfra

REAL_TEMPLATES = REPO_ROOT / "templates"
# A sandbox-shaped template set with one resource: the same variables, a fraction of the work.
CHEAP_TEMPLATES = REPO_ROOT / "tests" / "reliability" / "templates"

GIT_TOKEN = "ghp_ReliabilitySecretToken0123456789ab"
GIT_HOST = "git.example.com"
REPO_URL = f"https://{GIT_HOST}/platform/apps.git"
# A second allowed host for which no git token was issued (the token is bound to GIT_HOST).
OTHER_GIT_HOST = "git.elsewhere.example"
S3_ACCESS = TEST_S3_RUNNER.access_key
S3_SECRET = TEST_S3_RUNNER.secret_key

PLAN, DEPLOY, DESTROY = events_pb2.PLAN, events_pb2.DEPLOY, events_pb2.DESTROY
UNLOCK = events_pb2.UNLOCK
QUEUED, RUNNING = events_pb2.QUEUED, events_pb2.RUNNING
SUCCEEDED, FAILED = events_pb2.SUCCEEDED, events_pb2.FAILED
CANCELLED, ERRORED = events_pb2.CANCELLED, events_pb2.ERRORED
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, ERRORED})
# Answers a client may retry; anything else from a service is a verdict.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

# The timings of :meth:`Pipeline.quick`: a lost lease is rescued within seconds, the outbox
# relayed within a fifth of one, a runner's drain and Terraform's SIGINT grace kept short.
QUICK: dict[str, Any] = {
    "lease_seconds": 4,
    "rescue_interval": 0.5,
    "max_attempts": 3,
    "relay_poll_seconds": 0.2,
    "runner_concurrency": 2,
    "runner_poll_seconds": 1.0,
    "runner_drain_grace": 2.0,
    "terraform_grace": 5.0,
}
# On top of QUICK for the executor's end-to-end tests: the full templates apply under load
# within longer graces, and the state is written with server-side encryption (checked).
E2E: dict[str, Any] = {"runner_drain_grace": 5.0, "terraform_grace": 10.0, "s3_state_encrypt": "true"}


def _set(**options: Any) -> dict[str, Any]:
    """The options given a value (None keeps the service's own default)."""
    return {k: v for k, v in options.items() if v is not None}


def status_name(status: int) -> str:
    return str(events_pb2.JobStatus.Name(status))


def ts_seconds(ts: Any) -> float:
    """A protobuf Timestamp as epoch seconds (0.0 when unset)."""
    return float(ts.seconds) + ts.nanos / 1e9


@dataclass(eq=False)
class Pipeline:
    """The pipeline's services (in this process or as processes), clients, and helpers."""

    tmp: Path  # everything of this pipeline lives here (the data directory in process mode)
    nats_url: str = ""
    s3_endpoint: str = ""
    specs_db: str = ""  # empty: SQLite under ``tmp``
    snapshot_db: str = ""
    # A benchmark run's shared NATS and S3 (their URLs fill nats_url and s3_endpoint).
    infra: SharedInfra | None = None
    processes: bool = False  # the services as processes through alethia up's supervisor
    snapshot_process: bool = False  # in-process mode: the snapshot service alone as a process
    # Options: None keeps the service's own default.
    lease_seconds: int | None = None
    rescue_interval: float | None = None
    max_attempts: int | None = None
    relay_poll_seconds: float | None = None
    runner_concurrency: int | None = None
    runner_poll_seconds: float | None = None
    runner_drain_grace: float | None = None
    terraform_grace: float | None = None
    s3_state_encrypt: str | None = None
    templates_dir: Path | None = None
    service_token: str = ""  # process mode: the stack's own when empty
    git_token: str = GIT_TOKEN  # in-process mode (process mode: the stack's local git token)
    s3_runner: S3Credentials = TEST_S3_RUNNER  # in-process runners' S3 keys
    s3_terraform: S3Credentials | None = TEST_S3_TERRAFORM
    # Wait for jobs on their terminal events instead of polling GetJob (benchmarks: polling
    # takes CPU from the very services being measured).
    watch_events: bool = False

    # Set by start().
    addresses: dict[str, str] = field(default_factory=dict)
    identity_id: str = ""
    bare_repo: Path = Path()
    supervisor: Stack | None = None
    runners: list[Any] = field(default_factory=list)  # in-process runners
    children: list[ServiceChild] = field(default_factory=list)  # runner and snapshot processes
    phases: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)
    _services: list[RunningService] = field(default_factory=list)
    _channels: list[grpc.aio.Channel] = field(default_factory=list)
    _events: TerminalEvents | None = None

    @classmethod
    def quick(cls, **fields: Any) -> Pipeline:
        """A pipeline with the short timings of :data:`QUICK` (tests), ``fields`` on top."""
        return cls(**{**QUICK, **fields})

    def __post_init__(self) -> None:
        if self.infra is not None:
            assert self.infra.nats and self.infra.s3
            self.nats_url = self.nats_url or self.infra.nats.url
            self.s3_endpoint = self.s3_endpoint or self.infra.s3.endpoint

    # ------------------------------------------------------------------ start and stop

    async def start(self, runner: bool = False, **runner_overrides: Any) -> Pipeline:
        """Start the services, connect, create the cloud identity; ``runner``: one in-process runner.

        Process mode starts from this (the main) thread and blocks it while the services
        come up: its children die with the thread that started them (``PR_SET_PDEATHSIG``).
        """
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            if self.processes:
                self._start_processes()
            else:
                await self._start_inprocess()
            self.spec_stub = specs_pb2_grpc.SpecServiceStub(self.channel(self.addresses["specs"]))
            self.mapper_api = mapper_pb2_grpc.MapperServiceStub(self.channel(self.addresses["mapper"]))
            self.jobs = snapshot_pb2_grpc.SnapshotServiceStub(self.channel(self.addresses["snapshot"]))
            # RunnerService answers only runners when the stack has a runner token (process mode).
            runner_token = self.supervisor.runner_token() if self.supervisor else None
            self.runner_api = snapshot_pb2_grpc.RunnerServiceStub(
                self.channel(self.addresses["snapshot"], runner_token)
            )
            if self.watch_events:
                self._events = await TerminalEvents().open(self.nats_url)
            self.identity_id = await self.create_identity()
            if runner:
                await self.start_runner(**runner_overrides)
        except BaseException:
            await self.stop()  # nothing started is left behind, whatever the caller does
            raise
        return self

    async def _start_inprocess(self) -> None:
        from services.mapper.app import start as start_mapper
        from services.mapper.settings import MapperSettings

        self.specs_db = self.specs_db or f"sqlite+aiosqlite:///{self.tmp / 'specs.db'}"
        self.snapshot_db = self.snapshot_db or f"sqlite+aiosqlite:///{self.tmp / 'snapshot.db'}"
        self.bare_repo = self.tmp / "git" / "platform" / "apps.git"
        self.bare_repo.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            subprocess.run, ["git", "init", "-q", "--bare", str(self.bare_repo)], check=True
        )
        # The snapshot service's port is chosen first: the specs service asks it before deletes.
        self.addresses["snapshot"] = f"127.0.0.1:{free_port()}"
        self.specs = await start_specs(
            self.specs_db,
            service_token=self.service_token,
            snapshot_addr=self.addresses["snapshot"],
            git_allowed_hosts=f"{GIT_HOST},{OTHER_GIT_HOST}",
        )
        self._services.append(self.specs)
        self.mapper = await start_mapper(
            MapperSettings(listen="127.0.0.1:0", service_token=self.service_token)
        )
        self._services.append(self.mapper)
        self.addresses.update(specs=self.specs.address, mapper=self.mapper.address)
        await self._start_snapshot()

    def _start_processes(self) -> None:
        env = self._base_env()
        env["ALETHIA_LOG_LEVEL"] = "WARNING"  # process logs go to files: warnings are what a run needs
        given = {
            "ALETHIA_NATS_URL": self.nats_url,
            "ALETHIA_S3_ENDPOINT": self.s3_endpoint,
            "ALETHIA_SPECS_DATABASE_URL": self.specs_db,
            "ALETHIA_SNAPSHOT_DATABASE_URL": self.snapshot_db,
            "ALETHIA_SERVICE_TOKEN": self.service_token,
        }
        env.update({k: v for k, v in given.items() if v})
        env.update(settings_env(SnapshotSettings, self._snapshot_options()))
        env.update(settings_env(ExecutorSettings, self._runner_options()))
        self.supervisor = Stack(StackConfig(data_dir=self.tmp, free_ports=True, env=env))
        info = self.supervisor.start()
        self.addresses = dict(info.services)
        self.service_token = self.supervisor.service_token()
        self.nats_url = self.nats_url or self.supervisor.nats_url
        self.s3_endpoint = self.s3_endpoint or self.supervisor.s3_endpoint
        self.specs_db = self.specs_db or self.supervisor.data.sqlite_url("specs")
        self.snapshot_db = self.snapshot_db or self.supervisor.data.sqlite_url("snapshot")

    async def _start_snapshot(self) -> Any:
        """In-process mode: the snapshot service, in this process or (``snapshot_process``) as one."""
        values = self._snapshot_values(self.addresses["snapshot"])
        self.snapshot: Any
        if self.snapshot_process:
            self.snapshot = await self._child("snapshot", values, self.tmp / "snapshot.log").start()
        else:
            from services.snapshot.app import start as start_snapshot

            service = await start_snapshot(SnapshotSettings(**values))
            self._services.append(service)
            self.snapshot = service
        return self.snapshot

    async def stop(self) -> None:
        """Everything this pipeline started, children first (SIGKILLed: a test may have paused one).

        Safe to call twice (a failed start already called it).
        """
        if self._events is not None:
            await self._events.close()
            self._events = None
        for child in reversed(self.children):
            child.kill()
        self.children.clear()
        for runner in list(self.runners):
            await self.stop_runner(runner)
        while self._services:
            await self._services.pop().stop(0.5)
        while self._channels:
            await self._channels.pop().close()
        if self.supervisor is not None:
            await asyncio.to_thread(self.supervisor.stop)
            self.supervisor = None

    def channel(self, address: str, token: str | None = None) -> grpc.aio.Channel:
        """A client channel with the service token (or ``token``), closed at :meth:`stop`."""
        ch = connect(address, self.service_token if token is None else token)
        self._channels.append(ch)
        return ch

    def pids(self) -> dict[str, int]:
        """Process mode: the service processes' ids (not NATS, S3 or the gateway)."""
        assert self.supervisor is not None
        return {k: v for k, v in self.supervisor.pids().items() if k not in ("nats", "s3", "gateway")}

    # ------------------------------------------------------------------ settings

    def _base_env(self) -> dict[str, str]:
        """This process's environment without anything that would configure a service."""
        return {k: v for k, v in os.environ.items() if not k.startswith(("ALETHIA_", "TF_VAR_"))}

    def _snapshot_options(self) -> dict[str, Any]:
        return _set(
            lease_seconds=self.lease_seconds,
            rescue_interval_seconds=self.rescue_interval,
            relay_poll_seconds=self.relay_poll_seconds,
            max_attempts=self.max_attempts,
        )

    def _runner_options(self) -> dict[str, Any]:
        return _set(
            runner_concurrency=self.runner_concurrency,
            runner_lease_seconds=self.lease_seconds,
            runner_poll_seconds=self.runner_poll_seconds,
            runner_drain_grace_seconds=self.runner_drain_grace,
            terraform_grace_seconds=self.terraform_grace,
            templates_dir=self.templates_dir,
            s3_state_encrypt=self.s3_state_encrypt,
        )

    def _snapshot_values(self, listen: str) -> dict[str, Any]:
        """In-process mode: a snapshot service's settings (for ``app.start`` or a process)."""
        return {
            "database_url": self.snapshot_db,
            "listen": listen,
            "specs_addr": self.addresses["specs"],
            "nats_url": self.nats_url,
            "git_token": self.git_token,
            "git_token_host": GIT_HOST,
            "service_token": self.service_token,
            **self._snapshot_options(),
        }

    def runner_settings(self, **overrides: Any) -> ExecutorSettings:
        """In-process mode: a runner's settings, wired to this pipeline."""
        values: dict[str, Any] = {
            "executor_listen": "127.0.0.1:0",
            "snapshot_addr": self.addresses["snapshot"],
            "mapper_addr": self.addresses["mapper"],
            "nats_url": self.nats_url,
            "service_token": self.service_token,
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": self.s3_runner.access_key,
            "s3_secret_key": self.s3_runner.secret_key,
            "work_dir": str(self.tmp / "work"),
            "plugin_cache_dir": str(self.tmp / "plugin-cache"),
            "git_url_rewrite": f"https://{GIT_HOST}/=file://{self.tmp / 'git'}/",
            "artifact_key": keyring_reference(self.tmp / "keys"),
            "runner_id": f"runner-{uuid.uuid4().hex[:6]}",
            **self._runner_options(),
        }
        if self.s3_terraform is not None:  # Terraform's backend: the state bucket only
            values["s3_state_access_key"] = self.s3_terraform.access_key
            values["s3_state_secret_key"] = self.s3_terraform.secret_key
        values.update(overrides)
        return ExecutorSettings(**values)

    def _child(self, name: str, values: Mapping[str, Any], log_path: Path) -> ServiceChild:
        """In-process mode: a service process configured with ``values`` (settings field names)."""
        settings = SnapshotSettings if name == "snapshot" else ExecutorSettings
        env = {**self._base_env(), **settings_env(settings, values)}
        child = ServiceChild(name, str(values["listen"]), env, log_path, die_with_parent=True)
        self.children.append(child)
        return child

    # ------------------------------------------------------------------ runners

    async def start_runner(self, **overrides: Any) -> Any:
        """An in-process runner (the real ExecutorService and runner loop)."""
        from services.executor.app import start as start_executor

        runner = await start_executor(self.runner_settings(**overrides))
        self.runners.append(runner)
        return runner

    @property
    def executor(self) -> Any:
        """The in-process runner started last."""
        return self.runners[-1]

    async def stop_runner(self, runner: Any, grace: float = 1.0) -> None:
        if runner in self.runners:
            self.runners.remove(runner)
            await runner.stop(grace)

    def spawn_runner(self, extra_env: Mapping[str, str] | None = None, **overrides: Any) -> RunnerProcess:
        """A runner process (``python -m services.executor``) wired like the pipeline's own.

        Returns at once (:meth:`RunnerProcess.wait_serving` or ``wait_stage`` waits);
        ``overrides`` are runner settings by field name (``snapshot_addr`` picks a replica).
        """
        address = f"127.0.0.1:{free_port()}"
        runner_id = str(overrides.pop("runner_id", "") or f"runner-{uuid.uuid4().hex[:6]}")
        if self.supervisor is not None:
            addresses = {**self.addresses, "executor": address}
            addresses["snapshot"] = overrides.pop("snapshot_addr", addresses["snapshot"])
            env = self.supervisor.service_env("executor", addresses, self.service_token)
            env.update(settings_env(ExecutorSettings, {"runner_id": runner_id, **overrides}))
            log_path = self.tmp / "logs" / f"{runner_id}.log"
        else:
            s = self.runner_settings(executor_listen=address, runner_id=runner_id, **overrides)
            env = {**self._base_env(), **settings_env(ExecutorSettings, s.model_dump())}
            log_path = self.tmp / f"{runner_id}.log"
        env.update(extra_env or {})
        proc = RunnerProcess(
            "executor",
            address,
            env,
            log_path,
            die_with_parent=True,
            runner_id=runner_id,
            token=self.service_token,
        )
        self.children.append(proc.spawn())
        return proc

    async def start_runners(
        self, runner_ids: list[str], concurrency: int, snapshot_addresses: list[str] | None = None
    ) -> list[RunnerProcess]:
        """Runner processes started together, then waited for until each is serving."""
        procs = []
        for i, runner_id in enumerate(runner_ids):
            options: dict[str, Any] = {"runner_id": runner_id, "runner_concurrency": concurrency}
            if snapshot_addresses:
                options["snapshot_addr"] = snapshot_addresses[i]
            procs.append(self.spawn_runner(**options))
        for proc in procs:
            await asyncio.to_thread(proc.wait_serving)
        return procs

    def stop_default_runner(self) -> None:
        """Process mode: stop the stack's own executor (benchmarks that must be the only claimers)."""
        assert self.supervisor is not None
        svc = self.supervisor.services.get("executor")
        if svc is not None:
            svc.process.stop(grace=30)

    def stop_children(self, grace: float = 30.0) -> None:
        """Stop the runner and snapshot processes started beside the pipeline (SIGTERM, then SIGKILL)."""
        for child in reversed(self.children):
            child.stop(grace)
        self.children.clear()

    async def start_snapshot_replica(self, log_name: str = "snapshot-replica") -> ServiceChild:
        """Another snapshot service process on the pipeline's database, on a port of its own.

        It serves gRPC only (the stack's replica keeps the HTTP event stream) and competes
        for the outbox relay's leader lease.
        """
        address = f"127.0.0.1:{free_port()}"
        if self.supervisor is not None:
            addresses = {**self.addresses, "snapshot": address, "events": ""}
            env = self.supervisor.service_env("snapshot", addresses, self.service_token)
            child = ServiceChild("snapshot", address, env, self.tmp / "logs" / f"{log_name}.log", True)
            self.children.append(child)
        else:
            child = self._child("snapshot", self._snapshot_values(address), self.tmp / f"{log_name}.log")
        return await child.start()

    # ------------------------------------------------------------------ identities and specs

    async def create_identity(self, provider: str = "aws", **overrides: Any) -> str:
        """A cloud identity (a credentials reference, never credentials); returns its id."""
        return str((await create_identity(self.spec_stub, provider, **overrides)).id)

    async def create_spec(
        self,
        spec: str | Mapping[str, Any],
        *,
        full: bool = False,
        repos: bool = False,
        repo_url: str = REPO_URL,
        **overrides: Any,
    ) -> specs_pb2.Spec:
        """CreateSpec of a document, or of a Spec in its own workspace ``zone-acme/<project>-...``.

        Given a project name: the minimal AWS Spec (``full``: the full example), with the
        apps repository ``repo_url`` when ``repos`` (a minimal Spec has none otherwise).
        """
        if isinstance(spec, str):
            make = full_spec_dict if full else minimal_spec_dict
            data = make("aws", project_name=spec, cloud_identity_id=self.identity_id, **overrides)
            if repos:
                data["repositories"] = [{"url": repo_url, "branch": "main", "path": f"clusters/{spec}"}]
            elif not full:
                data.pop("repositories", None)
        else:
            data = dict(spec)
        return await self.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))

    async def tfvars(self, spec_id: str) -> tuple[str, str]:
        """(template, tfvars JSON) of a Spec as the runner will get them."""
        snap = await self.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec_id))
        resp = await self.mapper_api.RenderTfvars(
            mapper_pb2.RenderTfvarsRequest(snapshot_json=snap.snapshot_json)
        )
        return resp.template or resp.provider, resp.tfvars_json

    # ------------------------------------------------------------------ jobs

    async def queue(
        self,
        spec_id: str,
        jtype: int,
        plan_job_id: str = "",
        key: str = "",
        attempts: int = 20,
        lock_id: str = "",
    ) -> snapshot_pb2.Job:
        """QueueJob with an idempotency key, retried on UNAVAILABLE as a careful client does."""
        req = snapshot_pb2.QueueJobRequest(
            spec_id=spec_id,
            type=jtype,  # type: ignore[arg-type]
            plan_job_id=plan_job_id,
            idempotency_key=key or uuid.uuid4().hex,
            requested_by="harness",
            lock_id=lock_id,
        )
        for attempt in range(attempts):
            try:
                return await self.jobs.QueueJob(req, timeout=20)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    async def get(self, job_id: str, retry_for: float = 30.0) -> snapshot_pb2.Job:
        """GetJob, retried on UNAVAILABLE for ``retry_for`` seconds (a service may be restarting)."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                return await self.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job_id), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def wait(
        self, job_id: str, statuses: Iterable[int] = TERMINAL, within: float = 120.0
    ) -> snapshot_pb2.Job:
        """The job once its status is one of ``statuses``, or an AssertionError naming where it is.

        With ``watch_events`` a terminal wait sleeps on the job's terminal event (GetJob
        once a second as a safety net); otherwise GetJob is polled.
        """
        want = set(statuses)
        watch = self._events is not None and want <= TERMINAL
        finished = self._events.finished(job_id) if self._events is not None and watch else None
        deadline = time.monotonic() + within
        try:
            while True:
                if finished is not None:
                    try:
                        await asyncio.wait_for(finished.wait(), 1.0)
                    except TimeoutError:
                        pass
                job = await self.get(job_id)
                if job.status in want:
                    return job
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"job {job_id} still {status_name(job.status)} after {within:.0f}s: {job.error}"
                    )
                if finished is None:
                    await asyncio.sleep(0.05)
        finally:
            if self._events is not None:
                self._events.forget(job_id)

    async def wait_terminal(
        self, job_ids: Iterable[str], within: float = 120.0
    ) -> dict[str, snapshot_pb2.Job]:
        """Every job in a terminal state, or an AssertionError naming the stuck ones."""
        pending = list(dict.fromkeys(job_ids))
        done: dict[str, snapshot_pb2.Job] = {}
        deadline = time.monotonic() + within
        while pending:
            still = []
            for jid in pending:
                job = await self.get(jid)
                if job.status in TERMINAL:
                    done[jid] = job
                else:
                    still.append(jid)
            pending = still
            if pending and time.monotonic() > deadline:
                stuck = {j: status_name((await self.get(j)).status) for j in pending[:10]}
                raise AssertionError(f"{len(pending)} jobs not terminal after {within}s: {stuck}")
            if pending:
                await asyncio.sleep(0.2)
        return done

    async def run(self, spec_id: str, jtype: int, plan_job_id: str = "") -> snapshot_pb2.Job:
        """Queue a job and wait until it is terminal."""
        job = await self.queue(spec_id, jtype, plan_job_id)
        return await self.wait(job.id, within=300.0)

    async def run_timed(
        self, spec_id: str, jtype: int, plan_job_id: str = ""
    ) -> tuple[float, snapshot_pb2.Job]:
        """:meth:`run` that must succeed: (seconds from QueueJob sent to the job's end time, the job).

        Timings come from the row (``start_time``/``end_time``), not from when the wait
        returned. ``self.phases`` collects where the time went: the QueueJob call, the
        pickup (call returned -> claimed) and the run (claimed -> completed), in seconds.
        """
        t0 = time.time()
        job = await self.queue(spec_id, jtype, plan_job_id)
        returned = time.time()
        done = await self.wait(job.id, within=300.0)
        if done.status != SUCCEEDED:
            raise RuntimeError(
                f"{events_pb2.JobType.Name(jtype)} job {job.id} ended {status_name(done.status)}: {done.error}"
            )
        start, end = ts_seconds(done.start_time), ts_seconds(done.end_time)
        self.phases.setdefault(jtype, []).append((returned - t0, start - returned, end - start))
        return end - t0, done

    async def events(self, job_id: str) -> list[events_pb2.JobEvent]:
        """Every event of a job on JetStream (log lines included), in stream order."""
        return [ev for _, _, ev in await job_events(self.nats_url, job_id)]

    # ------------------------------------------------------------------ S3

    def s3(self, endpoint: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.s3_endpoint,
            aws_access_key_id=self.s3_runner.access_key,
            aws_secret_access_key=self.s3_runner.secret_key,
            region_name="us-east-1",
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.s3()
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def get_object(self, bucket: str, key: str) -> bytes:
        """An object as stored (artifacts are encrypted: see :meth:`artifact`)."""
        return bytes(self.s3().get_object(Bucket=bucket, Key=key)["Body"].read())

    def artifact(self, key: str) -> bytes:
        """An artifact of the artifact bucket, decrypted with the runners' key ring."""
        return open_artifact(key, self.get_object("alethia-artifacts", key))

    def state_doc(self, key: str) -> dict[str, Any]:
        """A Terraform state file of the state bucket, parsed."""
        return dict(json.loads(self.get_object("alethia-state", key)))
