"""The embedded stack's data directory: one place for everything a restart must keep.

Layout (all under ``DIR``, default ``./.alethia``)::

    up.lock            pid of the running ``alethia up``, held with an fcntl lock
    stack.json         where each part listens (the CLI reads it to find the stack)
    service-token      the shared service token (mode 0600)
    runner-token       the runners' own credential (mode 0600)
    gateway-token      the local admin user's bearer token for the gateway and the CLI (0600)
    gateway/           the local user issuer's signing key (0600), its JWKS, Envoy's config and log
    git-tokens.json    git token per host for the local demo git host (mode 0600)
    s3-credentials.json         SeaweedFS admin key pair, for operators (``aws s3``, boto3)
    s3-runner-credentials.json  the runner's key pair, scoped to the two buckets
    s3-terraform-credentials.json  Terraform's key pair, scoped to the state bucket
    s3-identities.json          SeaweedFS's ``-s3.config`` holding both
    artifact-keyring.json       the key ring that encrypts job artifacts (AES-256-GCM)
    nats-credentials.json       NATS password per user (snapshot, runner, cli, admin)
    nats-auth.conf              nats-server's users and subject permissions
    specs.db           SQLite of the specs service
    snapshot.db        SQLite of the snapshot service (jobs, outbox)
    nats/              JetStream store
    s3/                SeaweedFS data (Terraform state and job artifacts)
    git/               local bare git repositories (the demo's apps repository)
    work/              the executor's job directories and plugin cache
    logs/              one log file per process

Every directory is 0700 and every file 0600 (``alethia up`` runs with umask 077 and
tightens a data directory made by an older version): the tree holds state and secrets.

The lock is what tells a second ``alethia up`` that one is already running: it is
released by the kernel when the process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported where used: the CLI reads stack files and never needs a cipher, nor the process
# and HTTP machinery of alethia.stack.infra (urllib, ssl: about a tenth of a CLI call).
if TYPE_CHECKING:
    from alethia.crypto import KeyRing
    from alethia.stack.infra import S3Credentials

STACK_FILE = "stack.json"
LOCK_FILE = "up.lock"
TOKEN_FILE = "service-token"
RUNNER_TOKEN_FILE = "runner-token"
GATEWAY_TOKEN_FILE = "gateway-token"
GATEWAY_DEFAULT_PORT = 8080
EVENTS_DEFAULT_PORT = 50062
DEFAULT_DATA_DIR = ".alethia"

# The four services, in start order (stop order is the reverse).
SERVICES = ("specs", "mapper", "snapshot", "executor")
DEFAULT_PORTS = {"specs": 50051, "snapshot": 50052, "mapper": 50053, "executor": 50054}
SERVICE_NAMES = {
    "specs": "alethia.specs.v1.SpecService",
    "snapshot": "alethia.snapshot.v1.SnapshotService",
    "mapper": "alethia.mapper.v1.MapperService",
    "executor": "alethia.executor.v1.ExecutorService",
}


class StackAlreadyRunning(RuntimeError):
    """Another ``alethia up`` holds the lock of this data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"an Alethia stack is already running on {data_dir}{who}")
        self.pid = pid


class StackNotFound(RuntimeError):
    """No running stack where the CLI looked."""


@dataclass
class DataDir:
    """Paths inside one stack data directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    @property
    def stack_file(self) -> Path:
        return self.root / STACK_FILE

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def token_file(self) -> Path:
        return self.root / TOKEN_FILE

    @property
    def runner_token_file(self) -> Path:
        return self.root / RUNNER_TOKEN_FILE

    @property
    def gateway_token_file(self) -> Path:
        return self.root / GATEWAY_TOKEN_FILE

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def issuer_key_file(self) -> Path:
        return self.gateway / "issuer-key.pem"

    @property
    def jwks_file(self) -> Path:
        return self.gateway / "jwks.json"

    @property
    def git_tokens_file(self) -> Path:
        return self.root / "git-tokens.json"

    @property
    def s3_credentials_file(self) -> Path:
        return self.root / "s3-credentials.json"

    @property
    def s3_runner_credentials_file(self) -> Path:
        return self.root / "s3-runner-credentials.json"

    @property
    def nats_credentials_file(self) -> Path:
        return self.root / "nats-credentials.json"

    def nats_passwords(self) -> dict[str, str]:
        """NATS password per user, generated (0600) on first use."""
        from alethia.stack.infra import NATS_USERS, generate_nats_passwords, write_private

        path = self.nats_credentials_file
        if path.exists():
            with contextlib.suppress(ValueError, OSError):
                stored = json.loads(path.read_text())
                if isinstance(stored, dict) and set(NATS_USERS) <= set(stored):
                    return {str(k): str(v) for k, v in stored.items()}
        passwords = generate_nats_passwords()
        write_private(path, json.dumps(passwords, indent=2) + "\n")
        return passwords

    @property
    def artifact_keyring_file(self) -> Path:
        return self.root / "artifact-keyring.json"

    def artifact_keyring(self) -> KeyRing:
        """The artifact key ring, generated (0600) on first use; kept so old artifacts still open."""
        from alethia.crypto import KeyRing
        from alethia.stack.infra import write_private

        path = self.artifact_keyring_file
        if path.exists():
            return KeyRing.from_json(path.read_text(), str(path))
        ring = KeyRing.generate()
        write_private(path, ring.to_json())
        return ring

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def git(self) -> Path:
        return self.root / "git"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def sqlite_url(self, service: str) -> str:
        return f"sqlite+aiosqlite:///{self.root / f'{service}.db'}"

    def create(self) -> None:
        """Make the directory tree (idempotent), owner-only: 0700 dirs, 0600 files."""
        for path in (self.root, self.logs, self.git, self.work):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.gateway.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.gateway.chmod(0o700)  # holds the issuer's signing key
        self.restrict()

    def restrict(self, under: Path | None = None) -> None:
        """Remove group and other permissions from everything under the data directory
        (or only under ``under``, a directory inside it).

        A data directory made by an older version (or under a lax umask) is tightened on
        the next start; executable bits of the owner are kept (git hooks, plugins).
        """
        for dirpath, dirnames, filenames in os.walk(under or self.root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    st = path.lstat()
                    if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                        path.chmod(stat.S_IMODE(st.st_mode) & 0o700)
        self.root.chmod(0o700)

    def s3_credentials(self, who: str) -> S3Credentials:
        """The stored S3 key pair of ``who`` (``admin``, ``runner``, ``terraform``), generated (0600) once."""
        from alethia.stack.infra import S3Credentials, write_private

        path = self.s3_credentials_file if who == "admin" else self.root / f"s3-{who}-credentials.json"
        if path.exists():
            with contextlib.suppress(ValueError, OSError):
                return S3Credentials.from_json(json.loads(path.read_text()))
        creds = S3Credentials.generate(f"alethia-{who}")
        write_private(path, json.dumps(creds.to_json(), indent=2) + "\n")
        return creds

    def write_git_tokens(self, tokens: dict[str, str]) -> None:
        """The snapshot service's per-host git tokens (mode 0600), for the local git host."""
        fd = os.open(self.git_tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(tokens, f)
        self.git_tokens_file.chmod(0o600)

    def service_token(self) -> str:
        """The stored service token, generated (mode 0600) on first use."""
        return _stored_token(self.token_file)

    def runner_token(self) -> str:
        """The stored runner token, generated (mode 0600) on first use."""
        return _stored_token(self.runner_token_file)


def _stored_token(path: Path) -> str:
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    import secrets  # here: the CLI reads stack files and never makes a token

    token = secrets.token_urlsafe(32)
    # O_EXCL-free but created 0600 from the start: the token is never world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    path.chmod(0o600)
    return token


@dataclass
class StackLock:
    """An exclusive, non-blocking fcntl lock on ``up.lock`` that records our pid."""

    path: Path
    _fd: int | None = field(default=None, init=False)

    def acquire(self) -> None:
        """Take the lock or raise :class:`StackAlreadyRunning` naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StackAlreadyRunning(self.path.parent, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def lock_held(data_dir: Path) -> bool:
    """True when some process holds the ``up`` lock of ``data_dir`` (a stack is running)."""
    path = Path(data_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our shared lock if we got it
    return False


@dataclass
class StackInfo:
    """What ``stack.json`` records: where a running stack's parts listen."""

    data_dir: str
    pid: int
    status: str  # starting | running | stopped
    services: dict[str, str]  # name -> host:port
    nats_url: str
    s3_endpoint: str
    token_file: str
    logs: dict[str, str] = field(default_factory=dict)
    gateway: str = ""  # http://host:port of Envoy
    gateway_token_file: str = ""  # the local admin user's token (for the gateway and the CLI)
    # JSON {"access_key", "secret_key"} of the S3 admin ("" when the S3 store is external)
    s3_credentials_file: str = ""
    # JSON {user: password} of the NATS users ("" when NATS is external)
    nats_credentials_file: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "nats_credentials_file": self.nats_credentials_file,
            "s3_credentials_file": self.s3_credentials_file,
            "data_dir": self.data_dir,
            "pid": self.pid,
            "status": self.status,
            "services": self.services,
            "nats_url": self.nats_url,
            "s3_endpoint": self.s3_endpoint,
            "token_file": self.token_file,
            "gateway": self.gateway,
            "gateway_token_file": self.gateway_token_file,
            "logs": self.logs,
        }

    def write(self, path: Path) -> None:
        """Write atomically so a reader never sees half a file."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> StackInfo:
        data = json.loads(path.read_text())
        return cls(
            data_dir=str(data["data_dir"]),
            pid=int(data["pid"]),
            status=str(data.get("status", "running")),
            services={str(k): str(v) for k, v in dict(data["services"]).items()},
            nats_url=str(data.get("nats_url", "")),
            s3_endpoint=str(data.get("s3_endpoint", "")),
            token_file=str(data.get("token_file", "")),
            logs={str(k): str(v) for k, v in dict(data.get("logs", {})).items()},
            gateway=str(data.get("gateway", "")),
            gateway_token_file=str(data.get("gateway_token_file", "")),
            s3_credentials_file=str(data.get("s3_credentials_file", "")),
            nats_credentials_file=str(data.get("nats_credentials_file", "")),
        )
