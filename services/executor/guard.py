"""No orphaned Terraform: a watchdog per runner that stops its Terraform when the runner dies.

A runner killed with SIGKILL cannot stop its Terraform children. Each runner has one small
watchdog process (``python -m services.executor.guard``), told over a socket the process
group of every Terraform it runs (and, on Linux, given a copy of the read ends of
Terraform's stdout/stderr pipes). The watchdog learns that the runner died in two ways:
the socket closes (the kernel closes it whatever killed the runner: works everywhere), and
a parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, set by util-linux
``setpriv --pdeathsig`` between fork and exec). It then, once:

1. keeps draining Terraform's output pipes, so Terraform (a Go program) does not die of
   SIGPIPE on its next log line;
2. sends SIGINT to each group, Terraform's clean stop: it finishes the operations in
   flight, writes state (or ``errored.tfstate``) and releases the lock;
3. waits the Terraform grace period, then SIGKILLs what is left; what Terraform leaves in
   its group when it exits (a provisioner's command) is killed at once.

Why Terraform itself gets no parent-death signal: measured, a runner killed with its gRPC
and executor threads delivered it *twice* (Linux re-sends it each time the child is
re-parented from a dying thread to another), and a second interrupt makes Terraform "exit
immediately", leaving the lock and losing state. The watchdog is single-threaded until it
acts and acts once. (Nor a Python ``preexec_fn``: running Python in the forked child of a
process with gRPC threads crashed it with SIGSEGV now and then.)

The runner side is :class:`ProcessGuard`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def parent_death_prefix() -> tuple[str, ...]:
    """The argv prefix that gives a child a parent-death SIGTERM, or ``()`` where there is none."""
    if not sys.platform.startswith("linux"):
        return ()
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return ()
    try:
        helptext = subprocess.run(
            [setpriv, "--help"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return (setpriv, "--pdeathsig", "TERM", "--") if "--pdeathsig" in helptext else ()


def parent_death_signal_available() -> bool:
    """Whether the watchdog gets a parent-death signal here (Linux with util-linux ``setpriv``)."""
    return bool(parent_death_prefix())


def _seqpacket_available() -> bool:
    return hasattr(socket, "SOCK_SEQPACKET") and sys.platform.startswith("linux")


class ProcessGuard:
    """The runner's end of the watchdog: register each Terraform process group while it runs.

    On Linux the watchdog also gets a copy of the read ends of Terraform's stdout and stderr
    pipes (``SCM_RIGHTS`` over a ``SOCK_SEQPACKET`` socket). When the runner dies the pipes
    stay open and the watchdog drains them: Terraform, a Go program, would otherwise die of
    SIGPIPE on its next log line, in the middle of its clean stop, without writing state or
    releasing the lock.
    """

    def __init__(self, grace_seconds: float = 20.0, path: str = "") -> None:
        self.grace_seconds = grace_seconds
        self.path = path  # the watchdog's PATH (given by the runner's wiring, read at the edge)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._groups: dict[int, tuple[int, ...]] = {}

    def _ensure(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None and self._proc.poll() is None and self._sock is not None:
            return self._proc
        argv = [
            *parent_death_prefix(),
            sys.executable,
            "-m",
            "services.executor.guard",
            "--grace",
            str(self.grace_seconds),
        ]
        kind = socket.SOCK_SEQPACKET if _seqpacket_available() else socket.SOCK_STREAM
        ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
        try:
            # Its own session: a signal to the runner's group must not reach the watchdog.
            self._proc = subprocess.Popen(
                argv,
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(_REPO_ROOT),
                # Nothing of the runner's environment (credentials) is needed here.
                env={"PYTHONPATH": str(_REPO_ROOT), "PATH": self.path},
            )
        except OSError:
            ours.close()
            self._proc = self._sock = None
            return None
        finally:
            theirs.close()
        self._sock = ours
        # A new watchdog knows nothing yet: tell it every group still running.
        for pgid, fds in sorted(self._groups.items()):
            self._send(f"+{pgid}", fds)
        return self._proc

    def _send(self, line: str, fds: tuple[int, ...] = ()) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            if sock.type == socket.SOCK_SEQPACKET:
                socket.send_fds(sock, [line.encode()], list(fds))
            else:
                sock.sendall(f"{line}\n".encode())
        except OSError:
            with contextlib.suppress(OSError):
                sock.close()
            self._sock = None

    def register(self, pgid: int, fds: tuple[int, ...] = ()) -> None:
        """Watch the process group ``pgid`` (and keep ``fds``, its output pipes) until :meth:`unregister`."""
        with self._lock:
            if self._ensure() is not None:
                self._send(f"+{pgid}", fds)
            self._groups[pgid] = fds

    def unregister(self, pgid: int) -> None:
        with self._lock:
            self._groups.pop(pgid, None)
            self._send(f"-{pgid}")

    def _close_current(self) -> subprocess.Popen[bytes] | None:
        proc, sock = self._proc, self._sock
        self._proc = self._sock = None
        if sock is not None:
            for pgid in self._groups:  # handed over: the old watchdog must not stop them
                with contextlib.suppress(OSError):
                    if sock.type == socket.SOCK_SEQPACKET:
                        sock.send(f"-{pgid}".encode())
                    else:
                        sock.sendall(f"-{pgid}\n".encode())
            with contextlib.suppress(OSError):
                sock.close()
        return proc

    def reconfigure(self, grace_seconds: float) -> None:
        """A new grace period: the watchdog is restarted with it (and told every live group)."""
        with self._lock:
            self.grace_seconds = grace_seconds
            self._close_current()
            if self._groups:
                self._ensure()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        """Stop the watchdog (a clean runner exit: nothing is registered any more)."""
        with self._lock:
            proc = self._close_current()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.grace_seconds + 5)


_GUARD: ProcessGuard | None = None


def shared_guard(grace_seconds: float | None = None, path: str | None = None) -> ProcessGuard:
    """The watchdog of this process (one per runner process); ``grace_seconds`` and ``path``
    (its PATH) configure it."""
    global _GUARD
    if _GUARD is None:
        _GUARD = ProcessGuard(20.0 if grace_seconds is None else grace_seconds, path or "")
        return _GUARD
    if path is not None:
        _GUARD.path = path  # the next (re)start of the watchdog uses it
    if grace_seconds is not None and grace_seconds != _GUARD.grace_seconds:
        _GUARD.reconfigure(grace_seconds)
    return _GUARD


# --------------------------------------------------------------------------- watchdog process


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _leader_alive(pgid: int) -> bool:
    """Whether the group's leader (the Terraform process itself, pid == pgid) still runs."""
    try:
        os.kill(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _drain(fd: int) -> None:
    """Read a dead runner's end of a Terraform pipe until Terraform closes it.

    The descriptor shares its open file (and so O_NONBLOCK) with the runner's asyncio reader:
    made blocking again, or the first empty read would end the drain and Terraform would die
    of SIGPIPE on its next line.
    """
    with contextlib.suppress(OSError):
        os.set_blocking(fd, True)
        while os.read(fd, 65536):
            pass
    with contextlib.suppress(OSError):
        os.close(fd)


Event = tuple[str, list[int]]


def events_from(stdin_fd: int = 0) -> Iterator[Event]:
    """``(line, fds)`` messages from the runner: a SEQPACKET socket (with fds) or a plain pipe."""
    try:
        sock = socket.socket(fileno=os.dup(stdin_fd))
    except OSError:
        sock = None
    if sock is not None and sock.type == socket.SOCK_SEQPACKET:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, 256, 8)
            except OSError:
                return
            if not data:
                return
            yield data.decode(errors="replace"), list(fds)
        return
    stream = sock.makefile("rb") if sock is not None else os.fdopen(os.dup(stdin_fd), "rb")
    for raw in stream:
        yield raw.decode(errors="replace"), []


class RunnerGone(Exception):
    """The parent-death signal arrived: the runner died."""


def _runner_gone(_signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # act once, however many arrive
    raise RunnerGone


def watch(events: Iterable[Event], grace_seconds: float, interrupt: bool = True) -> list[int]:
    """Follow ``+pgid``/``-pgid`` messages until they end, then stop the groups still registered.

    Their output pipes are drained from then on (Terraform must not die of SIGPIPE while it
    stops cleanly). Returns the groups that had to be SIGKILLed after the grace period.
    """
    groups: dict[int, list[int]] = {}
    try:
        for raw, fds in events:
            line = raw.strip()
            if len(line) > 1 and line[1:].isdigit() and line[0] in "+-":
                pgid = int(line[1:])
                if line[0] == "+":
                    groups[pgid] = fds
                    continue
                fds = fds + groups.pop(pgid, [])
            for fd in fds:  # pipes of a finished Terraform (or sent with anything else): not kept
                with contextlib.suppress(OSError):
                    os.close(fd)
    except RunnerGone:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for fds in groups.values():
        for fd in fds:
            threading.Thread(target=_drain, args=(fd,), daemon=True).start()
    alive = {g for g in groups if _group_alive(g)}
    if not alive:
        return []
    if interrupt:  # exactly one SIGINT: Terraform's clean stop (a second one aborts it)
        for g in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGINT)
    deadline = time.monotonic() + grace_seconds
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        # Terraform gone but its group not: what is left (a provisioner's command) is an
        # orphan of it, stopped at once.
        for g in [g for g in alive if not _leader_alive(g)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGKILL)
        alive = {g for g in alive if _group_alive(g)}
    for g in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)
    return sorted(alive)


def main(argv: list[str]) -> int:
    """``python -m services.executor.guard --grace SECONDS`` (stdin: the socket or a pipe)."""
    grace, interrupt = 20.0, True
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--grace" and args:
            grace = float(args.pop(0))
        elif arg == "--interrupt":
            interrupt = True
    # Signals aimed at the runner's terminal or group are not for the watchdog.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _runner_gone)
    killed = watch(events_from(0), grace, interrupt)
    if killed:
        print(f"alethia guard: killed Terraform process groups {killed} after {grace}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
