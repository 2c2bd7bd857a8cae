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
from alethia.messaging import display_url
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
from alethia.stack.infra import ManagedProcess, NatsServer, SeaweedS3
from alethia.stack.ports import PortReservations, address_in_use, default_lock_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
# The git host of the example Specs: its URLs are rewritten to local bare repositories.
DEMO_GIT_PREFIX = "https://git.example.com/"
# For an external S3 store given without credentials (the embedded one gets generated keys).
DEFAULT_S3_ACCESS_KEY = "alethia"
DEFAULT_S3_SECRET_KEY = "alethia-local-secret"
# The apps repository token for the demo git host only (a file:// push needs none); any
# other host gets "no token configured" from the snapshot service, which is the truth.
LOCAL_GIT_TOKEN = "local-demo-token"
DEMO_GIT_HOST = "git.example.com"

# The executor drains first (running jobs finish or are cancelled cleanly within
# ALETHIA_RUNNER_DRAIN_GRACE_SECONDS, then Terraform gets its SIGINT grace): never SIGKILL
# it before that, or a running apply would end ERRORED with its state lock held.
LOCAL_DRAIN_GRACE_SECONDS = 20.0
STOP_GRACE = {"executor": LOCAL_DRAIN_GRACE_SECONDS + 20.0 + 20.0}
# Starts of a part whose port was taken between reservation and bind (by a non-Alethia process).
START_ATTEMPTS = 3
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


# Written and deleted once per bucket at start (see Stack._first_volumes).
VOLUME_PROBE = ".alethia/volume-probe"


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
    _umask: int | None = field(default=None, init=False)
    _lock: StackLock | None = field(default=None, init=False)
    ports: PortReservations = field(init=False)
    _s3_log_offset: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.data = DataDir(self.config.data_dir)
        self.ports = PortReservations(self.config.host, default_lock_dir(dict(self.config.env)))

    # ----------------------------------------------------------------- settings
    @property
    def nats_url(self) -> str:
        external = self.config.env.get("ALETHIA_NATS_URL")
        if external:
            return external
        return self.nats.address if self.nats else ""

    @property
    def s3_endpoint(self) -> str:
        external = self.config.env.get("ALETHIA_S3_ENDPOINT")
        if external:
            return external
        return self.s3.endpoint if self.s3 else ""

    def _ports(self, names: tuple[str, ...] = SERVICES) -> dict[str, int]:
        """A reserved port per service: its default one (50051...) when free, unless ``free_ports``."""
        return {name: self._port(DEFAULT_PORTS[name]) for name in names}

    def service_token(self) -> str:
        return self.config.env.get("ALETHIA_SERVICE_TOKEN") or self.data.service_token()

    def runner_token(self) -> str:
        return self.config.env.get("ALETHIA_RUNNER_TOKEN") or self.data.runner_token()

    def _port(self, default: int) -> int:
        """A port reserved machine-wide (:mod:`alethia.stack.ports`): ``default`` when free."""
        return self.ports.reserve(0 if self.config.free_ports else default)

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
        if self.nats is not None and self.nats.passwords:
            # Our NATS: each service connects as its own user (only these two use NATS).
            user = {"snapshot": "snapshot", "executor": "runner"}.get(name)
            if user:
                forced["ALETHIA_NATS_URL"] = self.nats.url_for(user)
        if self.s3 is not None and self.s3.runner is not None and name == "executor":
            # The S3 store is ours: the runner gets the key scoped to its two buckets.
            forced["ALETHIA_S3_ACCESS_KEY"] = self.s3.runner.access_key
            forced["ALETHIA_S3_SECRET_KEY"] = self.s3.runner.secret_key
            if self.s3.terraform is not None:  # Terraform's backend: the state bucket only
                forced["ALETHIA_S3_STATE_ACCESS_KEY"] = self.s3.terraform.access_key
                forced["ALETHIA_S3_STATE_SECRET_KEY"] = self.s3.terraform.secret_key
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
            "ALETHIA_GIT_ALLOWED_HOSTS": DEMO_GIT_HOST,
            "ALETHIA_WORK_DIR": str(self.data.work),
            "ALETHIA_ARTIFACT_KEY": f"file:{self.data.artifact_keyring_file}",
            "ALETHIA_S3_STATE_ENCRYPT": "true",  # SeaweedFS supports SSE-S3
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
        # Everything the stack and its children create is owner-only (state and secrets);
        # the caller's umask comes back at stop (tests and benchmarks run a Stack in-process).
        if self._umask is None:
            self._umask = os.umask(0o077)
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
        self.data.artifact_keyring()  # generated once per data directory, then kept
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
            self._start_nats(deadline)
        if not self.config.env.get("ALETHIA_S3_ENDPOINT"):
            self._start_s3()
        first = ("specs", "mapper", "snapshot")
        addresses = self._start_services(first, addresses, token, deadline)
        self.say(f"starting the gateway (Envoy) on {gateway_listen}")
        self.gateway = EnvoyGateway(
            GatewayConfig(
                listen=gateway_listen,
                specs_addr=addresses["specs"],
                snapshot_addr=addresses["snapshot"],
                events_addr=addresses["events"],
                jwks=issuer.jwks(),
                issuer=issuer.issuer,
                admin_port=self.ports.reserve(),
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
        try:
            self.gateway.wait_ready(max(1.0, deadline - time.monotonic()))
        except (RuntimeError, TimeoutError) as exc:
            raise StackStartError(
                _start_failure("the gateway (Envoy)", exc, self.data.gateway / "envoy.log")
            ) from None
        if self.s3 is not None:
            self._wait_s3(deadline)
        addresses = self._start_services(("executor",), addresses, token, deadline)
        return self._write_info("running", addresses)

    # Each part starts on reserved ports; when something outside Alethia took a port in
    # the moment between the reservation and the part's own bind, it starts again on new
    # ones. Any other failure names the part's log.
    def _start_nats(self, deadline: float) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.say("starting nats-server (JetStream)")
            port = self.ports.reserve()
            log = self.data.root / "nats" / "nats-server.log"
            offset = _size(log)
            nats = NatsServer(
                self.data.root / "nats", port=port, die_with_parent=True, passwords=self.data.nats_passwords()
            )
            try:
                self.nats = nats.start(timeout=max(1.0, deadline - time.monotonic()))
                return
            except (RuntimeError, TimeoutError) as exc:
                nats.stop()
                self.ports.release(port)
                if attempt < START_ATTEMPTS and _bind_failed(log, offset):
                    self.say(f"nats-server could not bind port {port}; trying other ports")
                    continue
                raise StackStartError(_start_failure("nats-server", exc, log)) from None

    def _start_s3(self) -> None:
        self.say("starting SeaweedFS S3")
        self._s3_log_offset = _size(self.data.root / "s3" / "weed.log")
        self.s3 = SeaweedS3(
            self.data.root / "s3",
            s3_port=self.ports.reserve(),
            die_with_parent=True,
            port_source=self.ports.reserve,
            admin=self.data.s3_credentials("admin"),
            runner=self.data.s3_credentials("runner"),
            terraform=self.data.s3_credentials("terraform"),
        ).start(wait=False)

    def _wait_s3(self, deadline: float) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            assert self.s3 is not None and self.s3.process is not None
            log = self.s3.process.log_path
            try:
                self.s3.wait_ready(max(1.0, deadline - time.monotonic()))
                self._first_volumes()
                return
            except (RuntimeError, TimeoutError) as exc:
                self.s3.stop()
                if attempt < START_ATTEMPTS and _bind_failed(log, self._s3_log_offset):
                    self.say("SeaweedFS could not bind one of its ports; trying other ports")
                    self._start_s3()
                    continue
                raise StackStartError(_start_failure("SeaweedFS S3", exc, log)) from None

    def _first_volumes(self) -> None:
        """Have SeaweedFS create each bucket's volumes now, then make its files owner-only.

        SeaweedFS writes a new volume's ``.vif`` file 0644 whatever the umask, and creates a
        bucket's volumes at its first write: one object written and deleted per bucket makes
        that happen at start, where :meth:`tighten` follows (and the supervisor's loop keeps
        tightening, for volumes added later).
        """
        assert self.s3 is not None
        client = self.s3.client()
        for bucket in self.s3.buckets:
            client.put_object(Bucket=bucket, Key=VOLUME_PROBE, Body=b"probe")  # empty: no chunk, no volume
            client.delete_object(Bucket=bucket, Key=VOLUME_PROBE)
        self.tighten()

    def tighten(self) -> None:
        """Remove group and other permissions from SeaweedFS's files (see :meth:`_first_volumes`)."""
        self.data.restrict(self.data.root / "s3")

    def _start_services(
        self, names: tuple[str, ...], addresses: Mapping[str, str], token: str, deadline: float
    ) -> dict[str, str]:
        """Spawn ``names`` and wait until healthy; on a port collision, again on new ports."""
        current = dict(addresses)
        for attempt in range(1, START_ATTEMPTS + 1):
            offsets = {name: _size(self.data.logs / f"{name}.log") for name in names}
            for name in names:
                self._spawn(name, current, token)
            self._write_info("starting", current)
            try:
                self._wait_healthy(names, deadline)
                return current
            except StackStartError:
                lost = [n for n in names if _bind_failed(self.services[n].process.log_path, offsets[n])]
                if attempt == START_ATTEMPTS or not lost:
                    raise
                # Peers learn each other's addresses at start: move the whole group together
                # (the snapshot service's event stream port with it).
                for name in names:
                    self.services[name].process.stop()
                self.say(f"{', '.join(lost)} could not bind its port; trying other ports")
                moved = [*names, "events"] if "snapshot" in names and "events" in current else list(names)
                for name in moved:
                    self.ports.release(int(current[name].rsplit(":", 1)[1]))
                current.update({n: f"{self.config.host}:{p}" for n, p in self._ports(names).items()})
                if "events" in moved:
                    current["events"] = f"{self.config.host}:{self.ports.reserve()}"
        return current

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
            nats_url=display_url(self.nats_url),  # never a password in stack.json
            s3_endpoint=self.s3_endpoint,
            token_file=str(self.data.token_file),
            logs=logs,
            gateway=self.gateway.url if self.gateway else "",
            gateway_token_file=str(self.data.gateway_token_file) if self.gateway else "",
            s3_credentials_file=str(self.data.s3_credentials_file) if self.s3 is not None else "",
            nats_credentials_file=str(self.data.nats_credentials_file) if self.nats is not None else "",
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
        self.ports.release_all()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._umask is not None:
            os.umask(self._umask)
            self._umask = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _bind_failed(log: Path, offset: int) -> bool:
    """Whether what a part wrote to its log since ``offset`` (this start) is a failure to bind its port."""
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            return address_in_use(fh.read().decode(errors="replace")[-8000:])
    except OSError:
        return False


def _start_failure(what: str, exc: BaseException, log: Path) -> str:
    last = _last_line(log)
    return f"{what} could not start: {exc}" + (f": {last}" if last else "") + f" (log: {log})"


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
        ticks = 0
        while not stopping.wait(0.5):
            ticks += 1
            if ticks % 10 == 0:  # every 5 s: a volume SeaweedFS added since is owner-only too
                stack.tighten()
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
