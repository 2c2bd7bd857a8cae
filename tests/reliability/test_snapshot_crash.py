"""Scenario 1b: the snapshot service itself SIGKILLed while runners are mid-apply, then restarted.

The snapshot service runs as its own process (``python -m services.snapshot``) on a fixed
port. While a DEPLOY sits inside ``terraform apply`` (the sandbox's delay) and PLANs run, it is
killed with SIGKILL and started again on the same port and database. Runners keep running
Terraform, their heartbeats and completions fail meanwhile and are retried. Counted:
lost jobs 0, every job SUCCEEDED (an applied DEPLOY is never reported ERRORED because the
service was away for less than its lease), every job has exactly one ``queued``,
``started`` and ``succeeded`` event after the restart (the outbox survived the crash),
duplicates 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.harness import DEPLOY, PLAN, SUCCEEDED, Pipeline, job_events


async def snapshot_crash(make_pipeline: Any, down_s: float, lease: int) -> dict[str, Any]:
    p: Pipeline = await make_pipeline(snapshot_process=True, lease_seconds=lease)
    tag = uuid.uuid4().hex[:4]  # fresh workspaces: no state from an earlier run
    specs = [await p.create_spec(f"svccrash{tag}-{i}") for i in range(4)]
    runner = await p.start_runner(runner_concurrency=4)
    jobs = {}
    for i, spec in enumerate(specs):
        job = await p.queue(spec.id, DEPLOY if i < 2 else PLAN)
        jobs[job.id] = job.type
    deploys = [j for j, t in jobs.items() if t == DEPLOY]
    deadline = time.monotonic() + 60
    while not any(rj.execution.stage == "apply" for j, rj in runner.runner.running.items() if j in deploys):
        assert time.monotonic() < deadline, "no DEPLOY reached apply"
        await asyncio.sleep(0.05)
    killed = p.snapshot.kill()
    await asyncio.sleep(down_s)
    await p.snapshot.start()
    restarted = time.monotonic()
    done = await p.wait_terminal(list(jobs), within=lease * 3 + 120)
    settled_s = time.monotonic() - restarted
    failed = {j.id: (j.status, j.error) for j in done.values() if j.status != SUCCEEDED}
    assert failed == {}, failed
    await asyncio.sleep(1.0)
    per_job: dict[str, Counter[str]] = {j: Counter() for j in jobs}
    ids: Counter[str] = Counter()
    for msg_id, _, ev in await job_events(p.nats_url):
        if ev.type != "log" and ev.job_id in per_job:
            per_job[ev.job_id][ev.type] += 1
            ids[msg_id] += 1
    wrong = {
        j: dict(c) for j, c in per_job.items() if (c["queued"], c["started"], c["succeeded"]) != (1, 1, 1)
    }
    assert wrong == {}, wrong
    assert all(n == 1 for n in ids.values())
    summary = {
        "killed_processes": killed,
        "down_s": down_s,
        "lease_s": lease,
        "jobs": len(jobs),
        "lost": 0,
        "errored": 0,
        "duplicates": 0,
        "attempts": sorted(j.attempt for j in done.values()),
        "all_terminal_after_restart_s": round(settled_s, 1),
    }
    print("RELIABILITY snapshot-crash", json.dumps(summary))
    return summary


async def test_snapshot_service_killed_mid_apply(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TF_VAR_sandbox_delay_seconds", "4")
    caplog.set_level(logging.WARNING, logger="services.executor.runner")
    await snapshot_crash(make_pipeline, down_s=2.0, lease=10)
    # Runners back off while the service is away: a few heartbeats per job, not a busy loop
    # (without the backoff one outage of 2 s logged some 10,000 failed heartbeats).
    failed_heartbeats = [r for r in caplog.records if r.getMessage().startswith("heartbeat for")]
    assert 0 < len(failed_heartbeats) <= 100, len(failed_heartbeats)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_snapshot_service_down_longer_than_the_completion_retries(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Down 16 s: past the ~12 s the runner used to retry CompleteJob, well within its 45 s
    # lease (which counts from the last heartbeat, up to 15 s before the kill).
    monkeypatch.setenv("TF_VAR_sandbox_delay_seconds", "5")
    await snapshot_crash(make_pipeline, down_s=16.0, lease=45)
