"""``alethia up``: the whole pipeline on one machine, every service in its own process.

Invariants:

- Everything a restart must keep lives under the data directory (see
  :mod:`alethia.stack.datadir`): SQLite files, the JetStream store, SeaweedFS data, the
  local git repositories, the service token. Stopping and starting loses nothing.
- One supervisor per data directory (an fcntl lock); a second one is refused.
- Parts start in dependency order (NATS and S3; specs, mapper and snapshot, which reach
  each other only per request; then the executor, which uses all of them) and stop in
  the reverse order, each with SIGTERM and a grace period.
- Children are started in their own session (a terminal's Ctrl-C reaches only the
  supervisor, which then stops them in order) and die with the supervisor even when it
  is killed with SIGKILL (``PR_SET_PDEATHSIG``), so no orphan holds a port or a file.
- The gateway (Envoy) starts once the specs and snapshot services are healthy, in front of
  them: ``stack.json`` records it as ``gateway`` (``http://HOST:PORT``) with the local admin
  user's token file as ``gateway_token_file``. Users are signed by a local issuer whose key
  lives in the data directory; runners get their own token (``runner-token``).
- Real Postgres, NATS and S3 are settings: when ``ALETHIA_NATS_URL`` or
  ``ALETHIA_S3_ENDPOINT`` is set, that server is used and none is started; database URLs
  and the template set given in the environment pass through unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alethia.gateway.envoy import EnvoyGateway, GatewayConfig
from alethia.rpc.auth import LocalIssuer, write_private
from alethia.stack.datadir import (
    DEFAULT_PORTS,
    EVENTS_DEFAULT_PORT,
    GATEWAY_DEFAULT_PORT,
    SERVICES,
    DataDir,
    StackInfo,
    StackLock,
)
from alethia.stack.infra import ManagedProcess, NatsServer, SeaweedS3, free_port, port_open

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
# The git host of the example Specs: its URLs are rewritten to local bare repositories.
DEMO_GIT_PREFIX = "https://git.example.com/"
DEFAULT_S3_ACCESS_KEY = "alethia"
DEFAULT_S3_SECRET_KEY = "alethia-local-secret"  # a local SeaweedFS without auth ignores it
# The apps repository token for the demo git host only (a file:// push needs none); any
# other host gets "no token configured" from the snapshot service, which is the truth.
LOCAL_GIT_TOKEN = "local-demo-token"
DEMO_GIT_HOST = "git.example.com"

# The executor drains first (running jobs finish or are cancelled cleanly within
# ALETHIA_RUNNER_DRAIN_GRACE_SECONDS, then Terraform gets its SIGINT grace): never SIGKILL
# it before that, or a running apply would end ERRORED with its state lock held.
LOCAL_DRAIN_GRACE_SECONDS = 20.0
STOP_GRACE = {"executor": LOCAL_DRAIN_GRACE_SECONDS + 20.0 + 20.0}
# The local admin user: every zone. Its token is rewritten at each start (30 days).
LOCAL_ADMIN = "admin"


class StackStartError(RuntimeError):
    """A part of the stack could not start; the message names it and its log."""


def _last_line(path: Path) -> str:
    """The last non-empty line of a log: for a crashed Python service, the exception itself."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def health_status(address: str, timeout: float = 1.0) -> int | None:
    """The gRPC health status of the server at ``address`` (None when it does not answer)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return None
        return int(resp.status)


@dataclass
class StackConfig:
    """What ``alethia up`` starts; ``env`` is the environment the settings come from."""

    data_dir: Path
    free_ports: bool = False
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    start_timeout: float = 120.0


@dataclass
class ServiceProcess:
    name: str
    address: str
    process: ManagedProcess


@dataclass
class Stack:
    """The supervisor: starts, watches and stops the embedded stack's processes."""

    config: StackConfig
    say: Callable[[str], None] = lambda _msg: None
    data: DataDir = field(init=False)
    nats: NatsServer | None = field(default=None, init=False)
    s3: SeaweedS3 | None = field(default=None, init=False)
    services: dict[str, ServiceProcess] = field(default_factory=dict, init=False)
    gateway: EnvoyGateway | None = field(default=None, init=False)
    # Runner token and user issuer of this start (set by start(), passed to every service).
    _auth_env: dict[str, str] = field(default_factory=dict, init=False)
    info: StackInfo | None = field(default=None, init=False)
    _lock: StackLock | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data = DataDir(self.config.data_dir)

    # ----------------------------------------------------------------- settings
    @property
    def nats_url(self) -> str:
        external = self.config.env.get("ALETHIA_NATS_URL")
        if external:
            return external
        return self.nats.url if self.nats else ""

    @property
    def s3_endpoint(self) -> str:
        external = self.config.env.get("ALETHIA_S3_ENDPOINT")
        if external:
            return external
        return self.s3.endpoint if self.s3 else ""

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for name in SERVICES:
            port = DEFAULT_PORTS[name]
            if self.config.free_ports or port_open(self.config.host, port):
                port = free_port()
            ports[name] = port
        return ports

    def service_token(self) -> str:
        return self.config.env.get("ALETHIA_SERVICE_TOKEN") or self.data.service_token()

    def runner_token(self) -> str:
        return self.config.env.get("ALETHIA_RUNNER_TOKEN") or self.data.runner_token()

    def _port(self, default: int) -> int:
        if self.config.free_ports or port_open(self.config.host, default):
            return free_port()
        return default

    def issuer(self) -> LocalIssuer:
        """The local user issuer; its JWKS file is (re)written for the services to read."""
        issuer = LocalIssuer.load_or_create(self.data.issuer_key_file)
        write_private(self.data.jwks_file, json.dumps(issuer.jwks()))
        return issuer

    def service_env(self, name: str, addresses: Mapping[str, str], token: str) -> dict[str, str]:
        """The environment of one service: the caller's, plus the stack's wiring.

        Values the stack owns (listen address, peers' addresses, the NATS and S3 it
        started, the token) are set; defaults that a user may override (database URLs,
        template set, S3 credentials, git rewrite) are only filled in when absent.
        """
        env = dict(self.config.env)
        env["PYTHONUNBUFFERED"] = "1"
        forced = {
            "ALETHIA_SERVICE_TOKEN": token,
            **self._auth_env,
            "ALETHIA_SNAPSHOT_EVENTS_LISTEN": addresses.get("events", ""),
            f"ALETHIA_{name.upper()}_LISTEN": addresses[name],
            "ALETHIA_SPECS_ADDR": addresses["specs"],
            "ALETHIA_SNAPSHOT_ADDR": addresses["snapshot"],
            "ALETHIA_MAPPER_ADDR": addresses["mapper"],
            "ALETHIA_EXECUTOR_ADDR": addresses["executor"],
            "ALETHIA_NATS_URL": self.nats_url,
            "ALETHIA_S3_ENDPOINT": self.s3_endpoint,
        }
        defaults = {
            "ALETHIA_SPECS_DATABASE_URL": self.data.sqlite_url("specs"),
            "ALETHIA_SNAPSHOT_DATABASE_URL": self.data.sqlite_url("snapshot"),
            "ALETHIA_S3_ACCESS_KEY": DEFAULT_S3_ACCESS_KEY,
            "ALETHIA_S3_SECRET_KEY": DEFAULT_S3_SECRET_KEY,
            "ALETHIA_S3_STATE_BUCKET": "alethia-state",
            "ALETHIA_S3_ARTIFACT_BUCKET": "alethia-artifacts",
            "ALETHIA_TEMPLATE_SET": "sandbox",
            "ALETHIA_GIT_URL_REWRITE": f"{DEMO_GIT_PREFIX}=file://{self.data.git}/",
            "ALETHIA_GIT_TOKENS_FILE": str(self.data.git_tokens_file),
            "ALETHIA_WORK_DIR": str(self.data.work),
            "ALETHIA_RUNNER_DRAIN_GRACE_SECONDS": str(LOCAL_DRAIN_GRACE_SECONDS),
        }
        env.update(forced)
        for key, value in defaults.items():
            env.setdefault(key, value)
        return env

    # ----------------------------------------------------------------- start
    def start(self) -> StackInfo:
        """Take the lock, start every part, wait until all are healthy, write ``stack.json``.

        On any failure everything already started is stopped again before raising.
        """
        self.data.create()
        self._lock = StackLock(self.data.lock_file)
        self._lock.acquire()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackInfo:
        deadline = time.monotonic() + self.config.start_timeout
        token = self.service_token()
        self.data.write_git_tokens({DEMO_GIT_HOST: LOCAL_GIT_TOKEN})
        ports = self._ports()
        addresses = {name: f"{self.config.host}:{port}" for name, port in ports.items()}
        addresses["events"] = f"{self.config.host}:{self._port(EVENTS_DEFAULT_PORT)}"
        gateway_listen = f"{self.config.host}:{self._port(GATEWAY_DEFAULT_PORT)}"
        issuer = self.issuer()
        self._auth_env = {
            "ALETHIA_RUNNER_TOKEN": self.runner_token(),
            "ALETHIA_AUTH_JWKS_FILE": str(self.data.jwks_file),
            "ALETHIA_AUTH_ISSUER": issuer.issuer,
        }
        write_private(self.data.gateway_token_file, issuer.mint(LOCAL_ADMIN, ["*"]) + "\n")
        for url in example_repository_urls():
            ensure_local_repository(self.data.git, url)

        # NATS first (a fraction of a second; the snapshot service connects at start), then
        # SeaweedFS without waiting for it, the three services that need no S3 meanwhile
        # (they reach each other only per request), and last the executor, which uses all.
        if not self.config.env.get("ALETHIA_NATS_URL"):
            self.say("starting nats-server (JetStream)")
            self.nats = NatsServer(self.data.root / "nats", die_with_parent=True).start()
        if not self.config.env.get("ALETHIA_S3_ENDPOINT"):
            self.say("starting SeaweedFS S3")
            self.s3 = SeaweedS3(self.data.root / "s3", die_with_parent=True).start(wait=False)
        first = ("specs", "mapper", "snapshot")
        for name in first:
            self._spawn(name, addresses, token)
        self._write_info("starting", addresses)
        self._wait_healthy(first, deadline)
        self.say(f"starting the gateway (Envoy) on {gateway_listen}")
        self.gateway = EnvoyGateway(
            GatewayConfig(
                listen=gateway_listen,
                specs_addr=addresses["specs"],
                snapshot_addr=addresses["snapshot"],
                events_addr=addresses["events"],
                jwks=issuer.jwks(),
                issuer=issuer.issuer,
                admin_port=free_port(),
                cors_origins=[
                    o.strip()
                    for o in self.config.env.get("ALETHIA_GATEWAY_CORS_ORIGINS", "").split(",")
                    if o.strip()
                ]
                or ["http://localhost:*", "http://127.0.0.1:*"],
            ),
            self.data.gateway,
            die_with_parent=True,
        ).start(wait=False)
        self.gateway.wait_ready(max(1.0, deadline - time.monotonic()))
        if self.s3 is not None:
            self.s3.wait_ready(max(1.0, deadline - time.monotonic()))
        self._spawn("executor", addresses, token)
        self._wait_healthy(("executor",), deadline)
        return self._write_info("running", addresses)

    def _spawn(self, name: str, addresses: Mapping[str, str], token: str) -> None:
        self.say(f"starting {name} service on {addresses[name]}")
        proc = ManagedProcess(
            [sys.executable, "-m", f"services.{name}"],
            self.data.logs / f"{name}.log",
            env=self.service_env(name, addresses, token),
            die_with_parent=True,
        )
        proc.start()
        self.services[name] = ServiceProcess(name, addresses[name], proc)

    def _wait_healthy(self, names: tuple[str, ...], deadline: float) -> None:
        pending = set(names)
        while pending:
            for name in sorted(pending):
                svc = self.services[name]
                if not svc.process.running():
                    code = svc.process.proc.returncode if svc.process.proc else None
                    last = _last_line(svc.process.log_path)
                    raise StackStartError(
                        f"the {name} service exited with code {code} while starting"
                        + (f": {last}" if last else "")
                        + f" (log: {svc.process.log_path})"
                    )
                if health_status(svc.address, timeout=0.5) == health_pb2.HealthCheckResponse.SERVING:
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise StackStartError(
                    f"not healthy after {self.config.start_timeout:.0f}s: {', '.join(sorted(pending))} "
                    f"(logs in {self.data.logs})"
                )
            if pending:
                time.sleep(0.1)

    def _write_info(self, status: str, addresses: Mapping[str, str]) -> StackInfo:
        logs = {name: str(svc.process.log_path) for name, svc in self.services.items()}
        if self.nats and self.nats.process:
            logs["nats"] = str(self.nats.process.log_path)
        if self.s3 and self.s3.process:
            logs["s3"] = str(self.s3.process.log_path)
        if self.gateway and self.gateway.process:
            logs["gateway"] = str(self.gateway.process.log_path)
        self.info = StackInfo(
            data_dir=str(self.data.root),
            pid=os.getpid(),
            status=status,
            services={k: v for k, v in addresses.items() if k in SERVICES},
            nats_url=self.nats_url,
            s3_endpoint=self.s3_endpoint,
            token_file=str(self.data.token_file),
            logs=logs,
            gateway=self.gateway.url if self.gateway else "",
            gateway_token_file=str(self.data.gateway_token_file) if self.gateway else "",
        )
        self.info.write(self.data.stack_file)
        return self.info

    # ----------------------------------------------------------------- run / stop
    def dead_part(self) -> str | None:
        """The name of a part that exited on its own, if any (the supervisor then stops all)."""
        for name, svc in self.services.items():
            if not svc.process.running():
                return name
        if self.nats and self.nats.process and not self.nats.process.running():
            return "nats"
        if self.s3 and self.s3.process and not self.s3.process.running():
            return "s3"
        if self.gateway and self.gateway.process and not self.gateway.process.running():
            return "gateway"
        return None

    def pids(self) -> dict[str, int]:
        """Process id of each part (for ``alethia up --json`` and the memory report)."""
        out = {name: svc.process.pid for name, svc in self.services.items() if svc.process.pid}
        if self.nats and self.nats.process and self.nats.process.pid:
            out["nats"] = self.nats.process.pid
        if self.s3 and self.s3.process and self.s3.process.pid:
            out["s3"] = self.s3.process.pid
        if self.gateway and self.gateway.process and self.gateway.process.pid:
            out["gateway"] = self.gateway.process.pid
        return out

    def stop(self) -> None:
        """Stop the gateway, services in reverse start order, then S3 and NATS; release the lock."""
        if self.gateway is not None and self.gateway.process is not None and self.gateway.process.running():
            self.say("stopping the gateway")
            self.gateway.stop()
        for name in reversed(SERVICES):
            svc = self.services.get(name)
            if svc is not None and svc.process.running():
                self.say(f"stopping {name} service")
                svc.process.stop(grace=STOP_GRACE.get(name, 10.0))
        if self.s3 is not None and self.s3.process is not None and self.s3.process.running():
            self.say("stopping SeaweedFS S3")
            self.s3.stop()
        if self.nats is not None and self.nats.process is not None and self.nats.process.running():
            self.say("stopping nats-server")
            self.nats.stop()
        if self.info is not None:
            self.info.status = "stopped"
            with contextlib.suppress(OSError):
                self.info.write(self.data.stack_file)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def example_repository_urls() -> list[str]:
    """Apps repository URLs of the example Specs that live on the demo git host."""
    import yaml

    urls: list[str] = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        try:
            doc: Any = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        for repo in (doc or {}).get("repositories") or []:
            url = str((repo or {}).get("url", ""))
            if url.startswith(DEMO_GIT_PREFIX):
                urls.append(url)
    return urls


def ensure_local_repository(git_root: Path, url: str) -> Path | None:
    """A bare repository under ``git_root`` for a URL on the demo git host (idempotent).

    The executor pushes rendered manifests to the Spec's apps repository; with
    ``ALETHIA_GIT_URL_REWRITE`` pointing the demo host at ``git_root`` that push lands
    here, so the demo needs no git server. Returns None for other hosts or without git.
    """
    if not url.startswith(DEMO_GIT_PREFIX):
        return None
    path = git_root / url[len(DEMO_GIT_PREFIX) :]
    if (path / "HEAD").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(path)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return path


class _Interrupted(Exception):
    """SIGTERM/SIGINT arrived while the stack was still starting."""


def run_until_signal(stack: Stack, on_ready: Callable[[StackInfo], None]) -> int:
    """``alethia up``: start, report, then wait for Ctrl-C/SIGTERM and stop in reverse order.

    Returns the exit code: 0 after a requested stop, 1 when a part died on its own (the
    others are stopped too, and the message names the part and its log).
    """
    import signal
    import threading

    stopping = threading.Event()
    started = False

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()
        if not started:
            raise _Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            info = stack.start()
        except _Interrupted:
            return 130
        started = True
        on_ready(info)
        while not stopping.wait(0.5):
            dead = stack.dead_part()
            if dead:
                log = stack.info.logs.get(dead, "") if stack.info else ""
                stack.say(f"{dead} exited unexpectedly (log: {log}); stopping the stack")
                return 1
        return 0
    finally:
        # Stopping must not be cut short by a second Ctrl-C.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
