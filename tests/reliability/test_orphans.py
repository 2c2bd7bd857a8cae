"""Scenario 11.5: no orphaned Terraform, no orphaned service.

- A runner process (``python -m services.executor``) is SIGKILLed, alone (not its process
  tree), while its ``terraform apply`` runs. The runner's watchdog (told of the death by
  its closed socket and its parent-death signal) interrupts Terraform once, keeps its
  output pipes drained, and would SIGKILL it after the grace period: every process that
  was under the runner is gone within the grace period plus slack, Terraform stopped
  cleanly (lock released), and the rescuer marks the DEPLOY ERRORED as it does for any
  dead runner. Counted: Terraform processes left 0, locks left 0.
- The watchdog fed by a plain pipe (what it falls back to without ``SCM_RIGHTS`` and
  ``prctl``) stops a registered process group when the pipe closes: SIGINT, the grace
  period, then SIGKILL for one that ignores SIGINT.
- ``alethia up`` is SIGKILLed: every service, NATS and SeaweedFS it started exits (they
  get SIGTERM from the kernel): orphans 0 (slow).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from services.executor.guard import parent_death_signal_available
from tests.harness import DEPLOY, ERRORED, REPO_ROOT, Pipeline

GRACE = 5.0  # the harness's ALETHIA_TERRAFORM_GRACE_SECONDS
SLACK = 10.0  # a loaded 2-core machine


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


async def _gone(procs: list[psutil.Process], within: float) -> tuple[float, list[psutil.Process]]:
    started = time.monotonic()
    left = _alive(procs)
    for _ in range(int(within / 0.1)):
        if not left:
            break
        await asyncio.sleep(0.1)
        left = _alive(procs)
    return time.monotonic() - started, left


def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **kwargs)


def _spawn_up(data: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "alethia.cli.main", "up", "--data-dir", str(data), "--free-ports"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
        )


async def test_sigkilled_runner_leaves_no_terraform(make_pipeline: Any) -> None:
    assert parent_death_signal_available(), "setpriv --pdeathsig (util-linux) is on this machine"
    p: Pipeline = await make_pipeline(lease_seconds=4, rescue_interval=0.5)
    victim = p.spawn_runner(extra_env={"TF_VAR_sandbox_delay_seconds": "300"})
    project = "orphan"
    spec = await p.create_spec(project)
    deploy = await p.queue(spec.id, DEPLOY)
    await victim.wait_stage(deploy.id, {"apply"})
    lock_key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate.tflock"
    deadline = time.monotonic() + 30
    while not p.keys("alethia-state", lock_key):
        assert time.monotonic() < deadline, "the apply never took the lock"
        await asyncio.sleep(0.05)

    under = _tree(victim.proc.pid)
    terraform = [proc for proc in under if "terraform" in " ".join(proc.cmdline())]
    assert terraform, [q.cmdline() for q in under]
    os.kill(victim.proc.pid, signal.SIGKILL)  # the runner alone: its children are not touched
    victim.proc.wait(10)
    took, left = await _gone(under, GRACE + SLACK)
    assert left == [], f"left running after the runner died: {[q.cmdline() for q in left]}"

    job = await p.wait(deploy.id, {ERRORED}, within=60)
    assert "stopped sending heartbeats" in job.error
    # SIGINT is Terraform's clean stop: it released the lock on its way out.
    lock_left = bool(p.keys("alethia-state", lock_key))
    assert not lock_left, "Terraform was not stopped cleanly (one SIGINT, output drained): it left the lock"
    print(
        "RELIABILITY orphans-runner",
        json.dumps(
            {
                "processes_under_runner": len(under),
                "terraform_processes": len(terraform),
                "left_after_kill": len(left),
                "gone_after_s": round(took, 1),
                "lock_left": lock_left,
            }
        ),
    )


async def test_watchdog_stops_a_group_when_its_pipe_closes(tmp_path: Path) -> None:
    # Stand-ins for Terraform in their own groups: one stops on SIGINT, one ignores it.
    child = await asyncio.to_thread(_spawn, ["sleep", "300"], start_new_session=True)
    ignore_int = (
        "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(300)"
    )
    stubborn = await asyncio.to_thread(
        _spawn, [sys.executable, "-c", ignore_int], start_new_session=True, stdout=subprocess.PIPE
    )
    assert stubborn.stdout is not None
    assert await asyncio.to_thread(stubborn.stdout.readline) == b"ready\n"
    guard = await asyncio.to_thread(
        _spawn,
        [sys.executable, "-m", "services.executor.guard", "--grace", "1", "--interrupt"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert guard.stdin is not None
    guard.stdin.write(f"+{child.pid}\n+{stubborn.pid}\n+999999\n-999999\n".encode())
    guard.stdin.flush()
    guard.stdin.close()  # what the kernel does when the runner dies
    assert await asyncio.to_thread(guard.wait, 30) == 0
    assert await asyncio.to_thread(child.wait, 5) == -signal.SIGINT  # the clean stop
    assert await asyncio.to_thread(stubborn.wait, 5) == -signal.SIGKILL  # after the grace period
    assert guard.stderr is not None
    report = guard.stderr.read().decode()
    assert "killed Terraform process groups" in report and str(stubborn.pid) in report


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sigkilled_supervisor_leaves_no_service(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = await asyncio.to_thread(_spawn_up, data, tmp_path / "up.log")
    under: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-2000:]
            info = {}
            if (data / "stack.json").exists():
                try:
                    info = json.loads((data / "stack.json").read_text())
                except ValueError:
                    info = {}
            if info.get("status") == "running":
                break
            assert time.monotonic() < deadline, "alethia up did not start"
            await asyncio.sleep(0.2)
        under = _tree(up.pid)
        names = sorted({" ".join(q.cmdline()[1:3]) if "python" in q.name() else q.name() for q in under})
        assert len(under) >= 6, names  # nats, weed, four services
        up.send_signal(signal.SIGKILL)
        up.wait(10)
        # Each part gets SIGTERM from the kernel; the executor drains (no job runs: at once).
        took, left = await _gone(under, 60)
        assert left == [], f"left running after alethia up died: {[q.cmdline() for q in left]}"
    finally:
        if up.poll() is None:
            up.kill()
        for q in _alive(under):
            q.kill()
    print(
        "RELIABILITY orphans-supervisor",
        json.dumps(
            {
                "processes_under_supervisor": len(under),
                "left_after_kill": len(left),
                "gone_after_s": round(took, 1),
            }
        ),
    )
