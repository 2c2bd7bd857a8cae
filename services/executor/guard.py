"""No orphaned Terraform: a parent-death signal on every Terraform process, and a watchdog.

A runner killed with SIGKILL cannot stop its Terraform children. Two mechanisms make sure
they do not run on unsupervised:

- **Parent-death signal** (Linux): each Terraform process is started through util-linux
  ``setpriv --pdeathsig INT`` (``prctl(PR_SET_PDEATHSIG, SIGINT)`` between fork and exec),
  so the kernel interrupts it the moment the runner dies. SIGINT is Terraform's clean stop:
  it finishes the resource operations in flight, writes state (or ``errored.tfstate``) and
  releases the lock. A second interrupt would make it exit at once and lose state, so
  nothing sends another. (Not a Python ``preexec_fn``: running Python in the forked child
  of a runner with gRPC threads crashed it with SIGSEGV now and then.)
- **Watchdog** (every platform): one small ``python -m services.executor.guard`` process per
  runner, fed the process group of every running Terraform on a pipe. When the pipe closes
  (the runner died, however), it interrupts those groups itself where no parent-death
  signal exists, waits the Terraform grace period, then SIGKILLs whatever is left.

The runner side is :class:`ProcessGuard`; :func:`parent_death_prefix` is the argv prefix.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def parent_death_prefix() -> tuple[str, ...]:
    """The argv prefix that gives a child a parent-death SIGINT, or ``()`` where there is none."""
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
    return (setpriv, "--pdeathsig", "INT", "--") if "--pdeathsig" in helptext else ()


def parent_death_signal_available() -> bool:
    """Whether children get a parent-death signal here (Linux with util-linux ``setpriv``)."""
    return bool(parent_death_prefix())


class ProcessGuard:
    """The runner's end of the watchdog: register each Terraform process group while it runs."""

    def __init__(self, grace_seconds: float = 20.0) -> None:
        self.grace_seconds = grace_seconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._groups: set[int] = set()

    def _ensure(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        argv = [sys.executable, "-m", "services.executor.guard", "--grace", str(self.grace_seconds)]
        if not parent_death_signal_available():
            argv.append("--interrupt")
        try:
            # Its own session: a signal to the runner's group must not reach the watchdog.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(_REPO_ROOT),
                # Nothing of the runner's environment (credentials) is needed here.
                env={"PYTHONPATH": str(_REPO_ROOT), "PATH": os.environ.get("PATH", "")},
            )
        except OSError:
            self._proc = None
            return None
        # A new watchdog knows nothing yet: tell it every group still running.
        for pgid in sorted(self._groups):
            self._send(f"+{pgid}")
        return self._proc

    def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(f"{line}\n".encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._proc = None

    def register(self, pgid: int) -> None:
        """Watch the process group ``pgid`` until :meth:`unregister`."""
        with self._lock:
            self._groups.add(pgid)
            if self._ensure() is not None:
                self._send(f"+{pgid}")

    def unregister(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
            if self._proc is not None:
                self._send(f"-{pgid}")

    def reconfigure(self, grace_seconds: float) -> None:
        """A new grace period: the watchdog is restarted with it (and told every live group)."""
        with self._lock:
            self.grace_seconds = grace_seconds
            old, self._proc = self._proc, None
            if old is not None:
                with contextlib.suppress(OSError):
                    if old.stdin is not None:
                        old.stdin.close()  # exits at once: the new one knows the groups
            if self._groups:
                self._ensure()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        """Stop the watchdog (a clean runner exit: nothing is registered any more)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.grace_seconds + 5)


_GUARD: ProcessGuard | None = None


def shared_guard(grace_seconds: float | None = None) -> ProcessGuard:
    """The watchdog of this process (one per runner process); ``grace_seconds`` configures it."""
    global _GUARD
    if _GUARD is None:
        _GUARD = ProcessGuard(20.0 if grace_seconds is None else grace_seconds)
    elif grace_seconds is not None and grace_seconds != _GUARD.grace_seconds:
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


def watch(lines: Any, grace_seconds: float, interrupt: bool) -> list[int]:
    """Read ``+pgid``/``-pgid`` lines until EOF, then stop the groups still registered.

    Returns the groups that had to be SIGKILLed after the grace period.
    """
    groups: set[int] = set()
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else str(raw)
        line = line.strip()
        if len(line) > 1 and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    alive = {g for g in groups if _group_alive(g)}
    if not alive:
        return []
    if interrupt:  # no parent-death signal on this platform: the clean stop comes from here
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
    """``python -m services.executor.guard --grace SECONDS [--interrupt]`` (stdin: the pipe)."""
    grace, interrupt = 20.0, False
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--grace" and args:
            grace = float(args.pop(0))
        elif arg == "--interrupt":
            interrupt = True
    # Signals aimed at the runner's terminal or group are not for the watchdog.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    killed = watch(sys.stdin.buffer, grace, interrupt)
    if killed:
        print(f"alethia guard: killed Terraform process groups {killed} after {grace}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
