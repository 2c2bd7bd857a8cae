"""A real ``alethia up`` for end-to-end tests, driven through the CLI as a person would.

One stack per module keeps the time down: the services, NATS, SeaweedFS and Terraform
are the real ones, started by the real supervisor as a subprocess in a temporary data
directory (free ports). Every CLI call is a subprocess too (``python -m
alethia.cli.main``), with ``ALETHIA_STACK_DIR`` pointing at that directory and no other
``ALETHIA_*`` variable, so the CLI finds the stack exactly as it would for a user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
    env.update(extra)
    return env


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_lines(self) -> list[str]:
        assert "Traceback" not in self.err, self.err
        lines = self.err.strip().splitlines()
        assert all(line.startswith("error: ") for line in lines), self.err
        return lines


@dataclass
class UpStack:
    """The ``alethia up`` subprocess and a CLI bound to its data directory."""

    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)
    _launched: float = 0.0

    def start(self, timeout: float = 90.0, free_ports: bool = True) -> None:
        self.launch(free_ports)
        self.wait_running(timeout)

    def launch(self, free_ports: bool = True) -> None:
        """Start ``alethia up`` (``free_ports=False``: it tries 50051-50054 first, as a user's does)."""
        self._launched = time.monotonic()
        log = open(self.data_dir.parent / "up.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alethia.cli.main",
                "up",
                "--data-dir",
                str(self.data_dir),
                *(["--free-ports"] if free_ports else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
            cwd=ROOT,
        )
        log.close()

    def wait_running(self, timeout: float = 90.0) -> None:
        assert self.proc is not None
        started = self._launched
        stack_file = self.data_dir / "stack.json"
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"alethia up exited {self.proc.returncode}:\n{self.log()}")
            if stack_file.exists():
                try:
                    info = json.loads(stack_file.read_text())
                except ValueError:
                    info = {}
                if info.get("status") == "running" and info.get("pid") == self.proc.pid:
                    self.starts.append(time.monotonic() - started)
                    return
            time.sleep(0.1)
        raise AssertionError(f"alethia up not running after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self) -> str:
        path = self.data_dir.parent / "up.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cli(self, *args: str, timeout: float = 120.0) -> CliResult:
        done = subprocess.run(
            [sys.executable, "-m", "alethia.cli.main", *args],
            capture_output=True,
            text=True,
            env=clean_env(ALETHIA_STACK_DIR=str(self.data_dir)),
            cwd=ROOT,
            timeout=timeout,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> Any:
        """Run a ``--json`` command that must succeed; its parsed output."""
        result = self.cli(*args, "--json")
        assert result.code == 0, f"alethia {' '.join(args)} -> {result.code}\n{result.err}"
        return result.json()


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    stack = UpStack(tmp_path_factory.mktemp("alethia-up") / "data")
    stack.start()
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stack.stop()
