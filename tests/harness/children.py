"""Service processes a harness starts beside the pipeline: runners and snapshot replicas.

A child is ``python -m services.<name>`` with its own log file, started in its own
session (a test SIGKILLs it together with its Terraform children through
:func:`kill_tree`, the way a lost node loses them) and, with ``die_with_parent``, dying
with the process that started it (benchmarks: a killed run leaves no orphan).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from alethia.rpc.client import connect
from alethia.stack.infra import ManagedProcess
from alethia.stack.supervisor import health_status

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING = 1  # grpc.health.v1 HealthCheckResponse.SERVING


def env_name(settings: type[BaseSettings], field_name: str) -> str:
    """The environment variable a settings field is read from (its alias, else prefix + name)."""
    info = settings.model_fields[field_name]
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"{settings.model_config.get('env_prefix', '')}{field_name}".upper()


def settings_env(settings: type[BaseSettings], values: Mapping[str, Any]) -> dict[str, str]:
    """``values`` (settings field names) as the environment a service process reads them from."""
    return {env_name(settings, k): str(v) for k, v in values.items() if v is not None}


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


@dataclass(eq=False)
class ServiceChild:
    """One service process on a fixed address: started, waited for, killed, restarted."""

    name: str  # "executor" | "snapshot"
    address: str
    env: dict[str, str]
    log_path: Path
    die_with_parent: bool = False
    starts: int = 0
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def proc(self) -> Any:
        """The ``subprocess.Popen`` of the current start (None before the first)."""
        return self.process.proc if self.process is not None else None

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def spawn(self) -> ServiceChild:
        """Start the process and return at once (:meth:`wait_serving` waits for it)."""
        self.process = ManagedProcess(
            [sys.executable, "-m", f"services.{self.name}"],
            self.log_path,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            die_with_parent=self.die_with_parent,
        )
        self.process.start()
        self.starts += 1
        return self

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def wait_serving(self, within: float = 90.0) -> None:
        """Block until the health check answers SERVING (fails naming the log when it exits)."""
        deadline = time.monotonic() + within
        while health_status(self.address, 0.5) != SERVING:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"the {self.name} process exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the {self.name} process is not serving after {within:.0f}s ({self.log_path})"
                )
            time.sleep(0.1)

    async def start(self, within: float = 90.0) -> ServiceChild:
        """Spawn and wait until serving, without holding up the event loop."""
        self.spawn()
        await asyncio.to_thread(self.wait_serving, within)
        return self

    def kill(self) -> int:
        """SIGKILL the process and every process under it (Terraform included), like a lost node."""
        return kill_tree(self.proc.pid) if self.proc is not None else 0

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (after SIGCONT: a paused process sees SIGTERM only once continued), then SIGKILL."""
        if self.process is not None:
            self.resume()
            self.process.stop(grace)

    def pause(self) -> None:
        """SIGSTOP: a runner takes no work until :meth:`resume` (it holds no job while idle)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)


@dataclass(eq=False)
class RunnerProcess(ServiceChild):
    """A runner process (``python -m services.executor``) and how to ask its ExecutorService."""

    runner_id: str = ""
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
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"runner {self.runner_id} exited: {self.log_tail()}")
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
            f"runner log: {self.log_tail(1500)}"
        )


__all__ = ["REPO_ROOT", "RunnerProcess", "ServiceChild", "env_name", "kill_tree", "settings_env"]
