"""CLI footguns: an unreviewed deploy or a destroy needs --auto-approve; Ctrl-C while waiting leaves the job running.

The CLI runs as a real subprocess against real gRPC servers on port 0 whose servicers
answer canned jobs (as in ``test_cli_output``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from alethia.cli.render import EXIT_USAGE
from alethia.events.v1 import events_pb2
from alethia.rpc.server import create_server
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from tests.cli.test_cli_output import ROOT, TOKEN, FakeJobs, _job, alethia


class EndlessJobs(FakeJobs):
    """A job that stays RUNNING for as long as anyone follows it; records what was queued."""

    def __init__(self) -> None:
        super().__init__()
        self.final = events_pb2.RUNNING
        self.queued: list[snapshot_pb2.QueueJobRequest] = []
        self.cancelled: list[str] = []

    async def QueueJob(self, request: snapshot_pb2.QueueJobRequest, context: Any) -> snapshot_pb2.Job:
        self.queued.append(request)
        return _job(events_pb2.QUEUED, queue_position=1)

    async def CancelJob(self, request: snapshot_pb2.CancelJobRequest, context: Any) -> snapshot_pb2.Job:
        self.cancelled.append(request.id)
        return _job(events_pb2.CANCELLED)


@pytest.fixture
async def endless() -> AsyncIterator[tuple[dict[str, str], EndlessJobs]]:
    jobs = EndlessJobs()
    server, port, _ = await create_server(
        [lambda s: snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(jobs, s)],
        ["alethia.snapshot.v1.SnapshotService"],
        auth_token=TOKEN,
    )
    addr = f"127.0.0.1:{port}"
    env = {f"ALETHIA_{n}_ADDR": addr for n in ("SPECS", "SNAPSHOT", "MAPPER", "EXECUTOR")}
    env["ALETHIA_SERVICE_TOKEN"] = TOKEN
    yield env, jobs
    await server.stop(None)


async def test_deploy_without_a_plan_needs_auto_approve(endless: tuple[dict[str, str], EndlessJobs]) -> None:
    env, jobs = endless
    code, out, err = await alethia("deploy", "spec-1", "--json", env=env)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("error: --plan-job: required (or --auto-approve)")
    assert "alethia plan spec-1 --wait" in err and "alethia deploy spec-1 --auto-approve" in err
    assert jobs.queued == []  # nothing was queued
    code, _, _ = await alethia("deploy", "spec-1", "--auto-approve", "--json", env=env)
    assert code == 0
    assert [(q.type, q.plan_job_id) for q in jobs.queued] == [(events_pb2.DEPLOY, "")]


async def test_destroy_needs_auto_approve(endless: tuple[dict[str, str], EndlessJobs]) -> None:
    env, jobs = endless
    code, out, err = await alethia("destroy", "spec-1", "--json", env=env)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("error: --auto-approve: required")
    assert "alethia destroy spec-1 --auto-approve" in err
    assert jobs.queued == []  # nothing was queued
    code, _, _ = await alethia("destroy", "spec-1", "--auto-approve", "--json", env=env)
    assert code == 0
    assert [(q.type, q.plan_job_id) for q in jobs.queued] == [(events_pb2.DESTROY, "")]


@pytest.mark.parametrize("argv", [["plan", "spec-1", "--wait"], ["jobs", "watch", "job-1"]])
async def test_ctrl_c_while_waiting_says_the_job_goes_on(
    endless: tuple[dict[str, str], EndlessJobs], argv: list[str]
) -> None:
    env, jobs = endless
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
    full_env.update(env, PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alethia.cli.main", *argv,
        env=full_env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        # Following has begun once the first event line is out.
        while b"Creating" not in (line := await asyncio.wait_for(proc.stdout.readline(), 60)):
            assert line, "the CLI ended before following the job"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130
    text = err.decode()
    assert "job job-1 goes on" in text
    assert "alethia jobs watch job-1" in text and "alethia jobs cancel job-1" in text
    assert "Traceback" not in text
    assert jobs.cancelled == []  # Ctrl-C stops following, never the job
