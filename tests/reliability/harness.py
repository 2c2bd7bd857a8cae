"""The pipeline in one process for fault-injection tests, plus runner subprocesses to kill.

:class:`Pipeline` starts the real spec service, mapper and snapshot service (job queue,
outbox relay, rescuer) on port 0 against the given databases, NATS and S3, with short
leases and rescue intervals so a lost runner is noticed within seconds. Runners run either
in-process (:meth:`Pipeline.start_runner`) or as real ``python -m services.executor``
processes (:meth:`Pipeline.spawn_runner`) that a test can SIGKILL together with their
Terraform children (:func:`kill_tree`).

Every helper counts instead of sleeping blindly: ``wait_terminal`` polls jobs until each
reached a terminal state and fails naming the stuck ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import grpc
import nats
import psutil

from alethia.events.v1 import events_pb2
from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from alethia.messaging import DISPATCH_STREAM, EVENTS_STREAM
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import free_port
from services.executor.settings import ExecutorSettings
from tests.fixtures.s3 import TEST_S3_RUNNER, TEST_S3_TERRAFORM, keyring_reference, open_artifact
from tests.fixtures.specs import create_identity, full_spec_dict, minimal_spec_dict, start_specs

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_TEMPLATES = REPO_ROOT / "templates"
# A sandbox-shaped template set with one resource: the same variables, a fraction of the work.
CHEAP_TEMPLATES = Path(__file__).resolve().parent / "templates"

GIT_TOKEN = "ghp_ReliabilitySecretToken0123456789ab"
S3_ACCESS = TEST_S3_RUNNER.access_key
S3_SECRET = TEST_S3_RUNNER.secret_key
REPO_URL = "https://git.example.com/platform/apps.git"

PLAN, DEPLOY, DESTROY = events_pb2.PLAN, events_pb2.DEPLOY, events_pb2.DESTROY
UNLOCK = events_pb2.UNLOCK
QUEUED, RUNNING = events_pb2.QUEUED, events_pb2.RUNNING
SUCCEEDED, FAILED = events_pb2.SUCCEEDED, events_pb2.FAILED
CANCELLED, ERRORED = events_pb2.CANCELLED, events_pb2.ERRORED
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, ERRORED})
# Answers a client may retry; anything else from a service is a verdict.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def status_name(status: int) -> str:
    return str(events_pb2.JobStatus.Name(status))


class LogCapture(logging.Handler):
    """Every log record of this process, formatted with its traceback (for secret scans)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted still must not break the service
            self.lines.append(repr(record.__dict__))

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._old_level)


@dataclass
class Pipeline:
    """Specs + mapper + snapshot in this process; runners in-process or as subprocesses."""

    tmp: Path
    nats_url: str
    s3_endpoint: str
    specs_db: str
    snapshot_db: str
    lease_seconds: int = 4
    rescue_interval: float = 0.5
    max_attempts: int = 3
    service_token: str = ""
    git_token: str = GIT_TOKEN
    templates_dir: Path = REAL_TEMPLATES
    # Run the snapshot service as its own process (``python -m services.snapshot``) so a test
    # can SIGKILL it; its port stays the same across restarts.
    snapshot_process: bool = False
    services: list[RunningService] = field(default_factory=list)
    runners: list[Any] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    identity_id: str = ""
    bare_repo: Path = Path()
    snapshot_port: int = 0

    async def start(self) -> Pipeline:
        from services.mapper.app import start as start_mapper
        from services.mapper.settings import MapperSettings

        self.bare_repo = self.tmp / "git" / "platform" / "apps.git"
        self.bare_repo.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            subprocess.run, ["git", "init", "-q", "--bare", str(self.bare_repo)], check=True
        )
        token = self.service_token
        # The snapshot service's port is chosen first: the specs service asks it before deletes.
        self.snapshot_port = free_port()
        self.specs = await start_specs(
            self.specs_db, service_token=token, snapshot_addr=f"127.0.0.1:{self.snapshot_port}"
        )
        self.services.append(self.specs)
        self.mapper = await start_mapper(MapperSettings(listen="127.0.0.1:0", service_token=token))
        self.services.append(self.mapper)
        await self.start_snapshot()
        ch = self.channel(self.specs.address)
        self.spec_stub = specs_pb2_grpc.SpecServiceStub(ch)
        self.identity_id = (await create_identity(self.spec_stub, "aws")).id
        return self

    async def start_snapshot(self) -> Any:
        if self.snapshot_process:
            self.snapshot = SnapshotProcess(self)
            await self.snapshot.start()
            ch = self.channel(self.snapshot.address)
            self.jobs = snapshot_pb2_grpc.SnapshotServiceStub(ch)
            self.runner_api = snapshot_pb2_grpc.RunnerServiceStub(ch)
            return self.snapshot
        from services.snapshot.app import start as start_snapshot
        from services.snapshot.settings import SnapshotSettings

        self.snapshot = await start_snapshot(
            SnapshotSettings(
                database_url=self.snapshot_db,
                listen=f"127.0.0.1:{self.snapshot_port}",
                specs_addr=self.specs.address,
                nats_url=self.nats_url,
                lease_seconds=float(self.lease_seconds),
                rescue_interval_seconds=self.rescue_interval,
                relay_poll_seconds=0.2,
                max_attempts=self.max_attempts,
                git_token=self.git_token,
                git_token_host="git.example.com",
                service_token=self.service_token,
            )
        )
        self.services.append(self.snapshot)
        ch = self.channel(self.snapshot.address)
        self.jobs = snapshot_pb2_grpc.SnapshotServiceStub(ch)
        self.runner_api = snapshot_pb2_grpc.RunnerServiceStub(ch)
        return self.snapshot

    def channel(self, address: str, token: str | None = None) -> grpc.aio.Channel:
        ch = connect(address, self.service_token if token is None else token)
        self.channels.append(ch)
        return ch

    # ------------------------------------------------------------------ runners

    def runner_settings(self, **overrides: Any) -> ExecutorSettings:
        values: dict[str, Any] = {
            "executor_listen": "127.0.0.1:0",
            "snapshot_addr": self.snapshot.address,
            "mapper_addr": self.mapper.address,
            "nats_url": self.nats_url,
            "service_token": self.service_token,
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": S3_ACCESS,
            "s3_secret_key": S3_SECRET,
            "runner_concurrency": 2,
            "runner_lease_seconds": self.lease_seconds,
            "runner_poll_seconds": 1.0,
            "runner_drain_grace_seconds": 2.0,
            "terraform_grace_seconds": 5.0,
            "templates_dir": str(self.templates_dir),
            "work_dir": str(self.tmp / "work"),
            "plugin_cache_dir": str(self.tmp / "plugin-cache"),
            "git_url_rewrite": f"https://git.example.com/=file://{self.tmp / 'git'}/",
            "artifact_key": keyring_reference(self.tmp / "keys"),
            "s3_state_access_key": TEST_S3_TERRAFORM.access_key,
            "s3_state_secret_key": TEST_S3_TERRAFORM.secret_key,
            "runner_id": f"runner-{uuid.uuid4().hex[:6]}",
        }
        values.update(overrides)
        return ExecutorSettings(**values)

    async def start_runner(self, **overrides: Any) -> Any:
        """An in-process runner (the real ExecutorService and runner loop)."""
        from services.executor.app import start as start_executor

        runner = await start_executor(self.runner_settings(**overrides))
        self.runners.append(runner)
        return runner

    async def stop_runner(self, runner: Any, grace: float = 1.0) -> None:
        if runner in self.runners:
            self.runners.remove(runner)
            await runner.stop(grace)

    def spawn_runner(self, extra_env: dict[str, str] | None = None, **overrides: Any) -> RunnerProcess:
        """A real runner process (``python -m services.executor``) with its own log file."""
        port = free_port()
        s = self.runner_settings(executor_listen=f"127.0.0.1:{port}", **overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALETHIA_", "TF_VAR_"))}
        for name, value in s.model_dump().items():
            env[f"ALETHIA_{name.upper()}"] = str(value)
        env.update(extra_env or {})
        log_path = self.tmp / f"{s.runner_id}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.executor"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT),
                start_new_session=True,
            )
        self.procs.append(proc)
        return RunnerProcess(proc, s.runner_id, f"127.0.0.1:{port}", log_path, self.service_token)

    # ------------------------------------------------------------------ specs and jobs

    async def create_spec(
        self, project: str, *, full: bool = False, repos: bool = False, **overrides: Any
    ) -> specs_pb2.Spec:
        """A Spec in its own workspace ``zone-acme/<project>-<env>-<region>``."""
        make = full_spec_dict if full else minimal_spec_dict
        data = make("aws", project_name=project, cloud_identity_id=self.identity_id, **overrides)
        if repos:
            data["repositories"] = [{"url": REPO_URL, "branch": "main", "path": f"clusters/{project}"}]
        elif not full:
            data.pop("repositories", None)
        return await self.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))

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
        key = key or uuid.uuid4().hex
        req = snapshot_pb2.QueueJobRequest(
            spec_id=spec_id,
            type=jtype,  # type: ignore[arg-type]
            plan_job_id=plan_job_id,
            idempotency_key=key,
            requested_by="reliability",
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

    async def wait_status(
        self, job_id: str, statuses: Iterable[int], within: float = 60.0, interval: float = 0.05
    ) -> snapshot_pb2.Job:
        want = set(statuses)
        deadline = time.monotonic() + within
        while True:
            job = await self.get(job_id)
            if job.status in want:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {status_name(job.status)} after {within}s: {job.error}"
                )
            await asyncio.sleep(interval)

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

    # ------------------------------------------------------------------ S3 and NATS

    def s3(self, endpoint: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.s3_endpoint,
            aws_access_key_id=S3_ACCESS,
            aws_secret_access_key=S3_SECRET,
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

    async def stop(self) -> None:
        if isinstance(getattr(self, "snapshot", None), SnapshotProcess):
            self.snapshot.kill()
        for proc in self.procs:
            kill_tree(proc.pid)
        for runner in list(self.runners):
            await self.stop_runner(runner)
        for svc in reversed(self.services):
            await svc.stop(0.5)
        for ch in self.channels:
            await ch.close()


class SnapshotProcess:
    """The snapshot service as a real process on a fixed port: killed and restarted by tests."""

    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.port = p.snapshot_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = p.tmp / "snapshot.log"
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        p = self.p
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
        env.update(
            {
                "ALETHIA_SNAPSHOT_DATABASE_URL": p.snapshot_db,
                "ALETHIA_SNAPSHOT_LISTEN": self.address,
                "ALETHIA_SPECS_ADDR": p.specs.address,
                "ALETHIA_NATS_URL": p.nats_url,
                "ALETHIA_SNAPSHOT_LEASE_SECONDS": str(p.lease_seconds),
                "ALETHIA_SNAPSHOT_RESCUE_INTERVAL_SECONDS": str(p.rescue_interval),
                "ALETHIA_SNAPSHOT_RELAY_POLL_SECONDS": "0.2",
                "ALETHIA_SNAPSHOT_MAX_ATTEMPTS": str(p.max_attempts),
                "ALETHIA_GIT_TOKEN": p.git_token,
                "ALETHIA_GIT_TOKEN_HOST": "git.example.com",
                "ALETHIA_SERVICE_TOKEN": p.service_token,
            }
        )
        return env

    async def start(self, within: float = 60.0) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        self.proc = await asyncio.to_thread(self._spawn)
        self.starts += 1
        deadline = time.monotonic() + within
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"snapshot service exited: {self.log_path.read_text()[-2000:]}")
            try:
                async with grpc.aio.insecure_channel(self.address) as ch:
                    resp = await health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.aio.AioRpcError:
                pass
            assert time.monotonic() < deadline, "snapshot service did not start"
            await asyncio.sleep(0.1)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "services.snapshot"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT),
                start_new_session=True,
            )

    def kill(self) -> int:
        return kill_tree(self.proc.pid) if self.proc is not None else 0


@dataclass
class RunnerProcess:
    """A runner subprocess and how to reach its ExecutorService."""

    proc: subprocess.Popen[bytes]
    runner_id: str
    address: str
    log_path: Path
    token: str = ""

    async def status(self) -> executor_pb2.RunnerStatus | None:
        """GetStatus, or None while the process is not serving yet."""
        ch = connect(self.address, self.token or None)
        try:
            stub = executor_pb2_grpc.ExecutorServiceStub(ch)
            return await stub.GetStatus(executor_pb2.GetStatusRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return None
        finally:
            await ch.close()

    async def wait_stage(self, job_id: str, stages: Iterable[str], within: float = 60.0) -> str:
        """Poll GetStatus until ``job_id`` runs in one of ``stages``; returns the stage seen."""
        want = set(stages)
        deadline = time.monotonic() + within
        seen: list[str] = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runner {self.runner_id} exited: {self.log_path.read_text()[-2000:]}")
            st = await self.status()
            for r in st.running if st else ():
                if r.job_id == job_id:
                    if not seen or seen[-1] != r.stage:
                        seen.append(str(r.stage))
                    if r.stage in want:
                        return str(r.stage)
            await asyncio.sleep(0.03)
        raise AssertionError(
            f"job {job_id} never reached {sorted(want)} on {self.runner_id} (stages seen: {seen}); "
            f"runner log: {self.log_path.read_text()[-1500:]}"
        )

    def kill(self) -> int:
        """SIGKILL the runner and every process under it (Terraform included), like a lost node."""
        return kill_tree(self.proc.pid)


class Link:
    """A TCP proxy to ``target`` that a test can cut: S3 (or anything) becoming unreachable.

    While down, every new connection is accepted and reset at once (what a dead backend
    behind a load balancer looks like) and counted in ``refused``; open connections are cut.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.is_up = True
        self.refused = 0
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Link:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def down(self) -> None:
        self.is_up = False
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()

    def up(self) -> None:
        self.is_up = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if not self.is_up:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort() if not self.is_up else dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open -= {writer, up_writer}

    async def close(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()


class PrivatePostgres:
    """A Postgres server of the test's own (initdb'd under /tmp), so it can be crashed and restarted.

    The shared server at 127.0.0.1:5432 is never touched. Runs as the ``postgres`` user
    (Postgres refuses root); ``crash()`` is ``pg_ctl stop -m immediate``: every backend dies
    at once with no shutdown checkpoint, and the next start runs crash recovery.
    """

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self) -> None:
        import pwd
        import shutil as _shutil
        import tempfile

        bindir = Path(_shutil.which("pg_ctl") or self.BIN / "pg_ctl").resolve().parent
        self.bin = bindir
        self.user = pwd.getpwnam("postgres")
        self.root = Path(tempfile.mkdtemp(prefix="alethia-pg-"))
        os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.starts = 0

    def _run(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            capture_output=True,
            cwd=str(self.root),
        )

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8")  # fmt: skip
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.root / "server.log"), "start")  # fmt: skip
        self.starts += 1
        return self

    def crash(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        import shutil as _shutil

        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        _shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        self._run(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.url(name)


def kill_tree(pid: int) -> int:
    """SIGKILL ``pid`` and all its descendants at once; returns how many processes were killed."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    # Stop first so no child can react (Terraform releases its lock on SIGINT, not on SIGKILL).
    for p in procs:
        try:
            p.send_signal(signal.SIGSTOP)
        except psutil.NoSuchProcess:
            pass
    killed = 0
    for p in procs:
        try:
            p.kill()
            killed += 1
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)
    return killed


async def stream_messages(nats_url: str, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message still stored in ``stream``: (subject, headers, data), by sequence."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream, seq)
                except Exception:  # deleted (work queue) or purged
                    continue
                out.append((str(msg.subject), dict(msg.headers or {}), bytes(msg.data or b"")))
        return out
    finally:
        await nc.close()


async def job_events(nats_url: str) -> list[tuple[str, str, events_pb2.JobEvent]]:
    """(msg id, subject, event) for every event in the events stream."""
    out = []
    for subject, headers, data in await stream_messages(nats_url, EVENTS_STREAM):
        ev = events_pb2.JobEvent()
        ev.ParseFromString(data)
        out.append((headers.get("Nats-Msg-Id", ""), subject, ev))
    return out


__all__ = [
    "DISPATCH_STREAM",
    "EVENTS_STREAM",
    "Link",
    "LogCapture",
    "Pipeline",
    "PrivatePostgres",
    "RunnerProcess",
    "job_events",
    "kill_tree",
    "stream_messages",
]
