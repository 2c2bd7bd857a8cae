"""Ports for the embedded stack that no other ``alethia up`` can pick at the same moment.

Asking the kernel for a free port (bind to port 0, close) leaves a window between the
check and the child's own bind, and two stacks starting together used to pick the same
ports (the default 50051-50054 first of all). A reservation closes that window among
Alethia processes on the machine: a port is held by an ``fcntl`` lock on
``<lock dir>/<port>.lock`` for as long as the supervisor runs (the kernel drops the lock
when the process dies, so a crash leaves nothing stale), and it is only taken when it is
also bindable right now. Candidates come from below the kernel's ephemeral range, where
outgoing connections never land. Anything else that grabs a port in the remaining
window makes the part fail to bind; the supervisor then starts it again on new ports
(see :func:`address_in_use`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path
from typing import IO

LOCK_DIR_ENV = "ALETHIA_PORT_LOCK_DIR"
# Below the usual ephemeral range (32768-60999): no outgoing connection takes these.
FALLBACK_RANGE = (20000, 32000)
BIND_ERRORS = ("address already in use", "failed to bind", "bind: address", "errno 98")


def default_lock_dir(env: dict[str, str] | None = None) -> Path:
    """``$ALETHIA_PORT_LOCK_DIR``, else ``<tmp>/alethia-ports`` (shared by every stack of the machine)."""
    value = (env or {}).get(LOCK_DIR_ENV, "")
    return Path(value) if value else Path(tempfile.gettempdir()) / "alethia-ports"


def candidate_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range (``ip_local_port_range``), at least 1024 wide."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_RANGE
    if low - 1 - 10000 < 1024:
        return FALLBACK_RANGE
    return (10000, low - 1)


def bindable(host: str, port: int) -> bool:
    """Whether a TCP listener could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def address_in_use(log_text: str) -> bool:
    """Whether a part's log says it could not bind its port (then it is retried on new ports)."""
    low = log_text.lower()
    return any(marker in low for marker in BIND_ERRORS)


class PortReservations:
    """Ports held for the children this process starts; :meth:`release_all` at stop."""

    def __init__(self, host: str = "127.0.0.1", lock_dir: Path | None = None) -> None:
        self.host = host
        self.lock_dir = lock_dir or default_lock_dir(dict(os.environ))
        self._held: dict[int, IO[str]] = {}
        self._rng = random.Random()

    @property
    def held(self) -> list[int]:
        """The ports reserved right now."""
        return sorted(self._held)

    def reserve(self, preferred: int = 0, attempts: int = 500) -> int:
        """A port reserved for this process: ``preferred`` when it is free, else one from the range."""
        if preferred and self._take(preferred):
            return preferred
        low, high = candidate_range()
        for _ in range(attempts):
            port = self._rng.randrange(low, high)
            if self._take(port):
                return port
        raise RuntimeError(f"no free port for the stack after {attempts} tries in {low}-{high}")

    def release(self, port: int) -> None:
        """Give a port back (its part is gone, or moved to another port)."""
        fh = self._held.pop(port, None)
        if fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def release_all(self) -> None:
        for port in list(self._held):
            self.release(port)

    def _take(self, port: int) -> bool:
        if port in self._held:
            return False
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                self.lock_dir.chmod(0o1777)  # one directory for every user's stacks, like /tmp
            fh = open(self.lock_dir / f"{port}.lock", "a+")  # noqa: SIM115 - held until release()
        except OSError:
            return False
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False  # another stack holds it
        if not bindable(self.host, port):
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
            return False
        self._held[port] = fh
        return True
