"""Scenario 1 (and 5b): runners SIGKILLed mid-PLAN and mid-DEPLOY, again and again.

Each round spawns a real runner process (``python -m services.executor``), lets it claim a
DEPLOY whose apply is slowed down (the sandbox's ``sandbox_delay_seconds``) and a PLAN,
and kills the runner with all its Terraform children (SIGKILL, no clean-up possible) while
the DEPLOY is inside ``terraform apply`` and the PLAN inside init/plan. Counted:

- lost jobs: jobs not in a terminal state at the end -> 0;
- PLANs finish on another runner (the survivor) -> all SUCCEEDED there;
- DEPLOYs end ERRORED with the state key and lock instructions, after exactly one attempt
  (never applied twice, never at the same time);
- time from kill to rescue <= lease + rescue interval (+ a little for a loaded machine);
- the stale lock file the killed apply left is never force-unlocked by itself: the ERRORED
  DEPLOY names its lock ID and ``alethia unlock SPEC --lock-id ID``; the next DEPLOY and
  PLAN of that workspace fail at once (no plan runs) naming the lock and the job; an
  UNLOCK of another ID releases nothing; the CLI command releases it and a PLAN succeeds;
  an UNLOCK is refused while a job of the workspace runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import grpc
import pytest

from tests.harness import (
    DEPLOY,
    ERRORED,
    FAILED,
    PLAN,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    UNLOCK,
    Pipeline,
    job_events,
)

LEASE = 4
RESCUE_INTERVAL = 0.5
SLACK = 2.0  # scheduling on a shared 2-core machine


def _lock_key(project: str) -> str:
    return f"zone-acme/{project}-dev-us-east-1/terraform.tfstate.tflock"


async def _rescued_after(p: Pipeline, job_id: str, killed_at: float, statuses: set[int]) -> float:
    job = await p.wait(job_id, statuses, within=LEASE + RESCUE_INTERVAL + 30)
    assert job.status in statuses
    return time.monotonic() - killed_at


async def _lock_reported(p: Pipeline, job_id: str, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while not (job := await p.get(job_id)).state_lock_id:
        assert time.monotonic() < deadline, f"{job_id}: the apply's lock was never reported"
        await asyncio.sleep(0.05)
    return job.state_lock_id


async def _terraform_ran(p: Pipeline, job_id: str) -> set[str]:
    """The Terraform stages a job's log shows (its own lines, not the runner's notes)."""
    return {
        ev.log.stage
        for _, _, ev in await job_events(p.nats_url)
        if ev.job_id == job_id and ev.type == "log" and ev.log.type != "alethia"
    }


def _cli(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``alethia`` CLI against this pipeline's services (as a person would run it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
    env.update(
        {
            "ALETHIA_SPECS_ADDR": p.specs.address,
            "ALETHIA_SNAPSHOT_ADDR": p.snapshot.address,
            "ALETHIA_MAPPER_ADDR": p.mapper.address,
            "ALETHIA_SERVICE_TOKEN": p.service_token,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "alethia.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


async def _wait_lock(p: Pipeline, project: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not p.keys("alethia-state", _lock_key(project)):
        assert time.monotonic() < deadline, f"{project}: the apply never took the lock"
        await asyncio.sleep(0.05)


async def crash_rounds(make_pipeline: Any, rounds: int) -> dict[str, Any]:
    p: Pipeline = await make_pipeline(
        lease_seconds=LEASE, rescue_interval=RESCUE_INTERVAL, max_attempts=rounds + 3
    )
    plans: list[str] = []
    deploys: list[tuple[str, str, str]] = []
    rescue_delays: list[float] = []
    kills = {"plan": 0, "deploy": 0, "processes": 0}
    # Workspaces of this run only: the stale locks a run leaves (on purpose) must not meet the next.
    tag = uuid.uuid4().hex[:4]
    for i in range(rounds):
        deploy_spec = await p.create_spec(f"crash{tag}-deploy-{i}")
        plan_spec = await p.create_spec(f"crash{tag}-plan-{i}")
        victim = p.spawn_runner(
            extra_env={"TF_VAR_sandbox_delay_seconds": "300"}, runner_concurrency=rounds + 4
        )
        deploy = await p.queue(deploy_spec.id, DEPLOY)
        await victim.wait_stage(deploy.id, {"apply"})
        # Inside the apply for real: Terraform holds the state lock (the stage flips just before).
        await _wait_lock(p, f"crash{tag}-deploy-{i}")
        await _lock_reported(p, deploy.id)
        if i == 0:
            # No unlock while a job of the workspace runs: its Terraform holds the lock now.
            try:
                await p.queue(deploy_spec.id, UNLOCK, lock_id=(await p.get(deploy.id)).state_lock_id)
                raise AssertionError("an UNLOCK was queued while the DEPLOY runs")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert deploy.id in (exc.details() or "") and "RUNNING" in (exc.details() or "")
        # The PLAN goes last and the kill follows at once: a sandbox plan takes about a second, so
        # anything awaited in between could let it finish before the runner dies.
        plan = await p.queue(plan_spec.id, PLAN)
        await victim.wait_stage(plan.id, {"init", "plan", "show"})
        # Both claimed by the victim, in flight right now.
        for jid in (deploy.id, plan.id):
            job = await p.get(jid)
            assert job.status == RUNNING and job.runner_id == victim.runner_id
        kills["processes"] += victim.kill()
        killed_at = time.monotonic()
        kills["plan"] += 1
        kills["deploy"] += 1
        plans.append(plan.id)
        deploys.append((deploy.id, f"crash{tag}-deploy-{i}", deploy_spec.id))
        # The rescuer notices within lease + sweep interval: PLAN queued again, DEPLOY ERRORED.
        rescue_delays.append(await _rescued_after(p, plan.id, killed_at, {QUEUED}))
        rescue_delays.append(await _rescued_after(p, deploy.id, killed_at, {ERRORED}))

    survivor = await p.start_runner(runner_concurrency=2)
    finished_on: set[str] = set()
    done = await p.wait_terminal(plans + [d for d, _, _ in deploys], within=60 + 10 * rounds)
    lost = [j for j in done.values() if j.status not in TERMINAL]

    for jid in plans:
        job = done[jid]
        assert job.status == SUCCEEDED, job.error
        killed_on = {e.runner_id for e in job.attempt_errors}
        assert job.runner_id and job.runner_id not in killed_on, "a rescued PLAN finished on another runner"
        finished_on.add(job.runner_id)
        assert job.attempt >= 2 and len(job.attempt_errors) == job.attempt - 1
        assert all("stopped sending heartbeats" in e.error for e in job.attempt_errors)
        names = {a.name for a in job.artifacts}
        assert {"plan.tfplan", "manifest.json"} <= names

    for jid, project, deploy_spec_id in deploys:
        job = done[jid]
        assert job.status == ERRORED
        assert job.attempt == 1, "a DEPLOY whose runner vanished is never run again"
        key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate"
        assert key in job.error and "may still be locked" in job.error and "force-unlock" in job.error
        # The killed apply's lock file is still there: nothing force-unlocked it. The ERRORED
        # job names that lock and the exact command that releases it.
        lock_info = json.loads(p.get_object("alethia-state", _lock_key(project)))
        assert job.state_lock_id == lock_info["ID"]
        assert f"alethia unlock {deploy_spec_id} --lock-id {lock_info['ID']}" in job.error, job.error

    # 5b: any job of a workspace whose state a dead apply holds fails at once, naming the
    # lock, the job that took it and how to release it; the lock is left alone.
    stale_deploy, stale_project, spec_id = deploys[0]
    lock_before = p.get_object("alethia-state", _lock_key(stale_project))
    lock_info = json.loads(lock_before)
    unlock_cmd = f"alethia unlock {spec_id} --lock-id {lock_info['ID']}"
    refused = {}
    for jtype in (DEPLOY, PLAN):
        again = await p.queue(spec_id, jtype)
        again = (await p.wait_terminal([again.id], within=90))[again.id]
        assert again.status == FAILED
        assert "is locked by job " + stale_deploy in again.error and unlock_cmd in again.error, again.error
        assert await _terraform_ran(p, again.id) == {"init"}, "a locked workspace ran plan/apply"
        refused[jtype] = again.error
    assert p.get_object("alethia-state", _lock_key(stale_project)) == lock_before
    # An UNLOCK of another lock ID releases nothing.
    wrong = await p.queue(spec_id, UNLOCK, lock_id="00000000-0000-0000-0000-000000000000")
    wrong = (await p.wait_terminal([wrong.id], within=90))[wrong.id]
    assert wrong.status == FAILED and lock_info["ID"] in wrong.error
    assert p.get_object("alethia-state", _lock_key(stale_project)) == lock_before
    # The command the job named, as a person runs it.
    cli = await asyncio.to_thread(_cli, p, "unlock", spec_id, "--lock-id", lock_info["ID"], "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "SUCCEEDED"
    assert p.keys("alethia-state", _lock_key(stale_project)) == []
    replan = await p.queue(spec_id, PLAN)
    replan = (await p.wait_terminal([replan.id], within=90))[replan.id]
    assert replan.status == SUCCEEDED, replan.error

    bound = LEASE + RESCUE_INTERVAL + SLACK
    assert max(rescue_delays) <= bound, f"rescue took {max(rescue_delays):.2f}s > {bound}s"
    assert lost == []
    summary = {
        "rounds": rounds,
        "plans_killed": kills["plan"],
        "deploys_killed": kills["deploy"],
        "processes_killed": kills["processes"],
        "lost": len(lost),
        "plans_finished_on": len(finished_on),
        "survivor_finished": survivor.runner.runner_id in finished_on,
        "plan_attempts": sorted(done[j].attempt for j in plans),
        "rescue_max_s": round(max(rescue_delays), 2),
        "rescue_bound_s": bound,
    }
    print("RELIABILITY runner-crash", json.dumps(summary))
    return summary


async def test_runner_killed_mid_plan_and_mid_deploy(make_pipeline: Any) -> None:
    summary = await crash_rounds(make_pipeline, rounds=2)
    assert summary["plans_killed"] == 2 and summary["deploys_killed"] == 2


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_runner_killed_ten_times_each(make_pipeline: Any) -> None:
    summary = await crash_rounds(make_pipeline, rounds=10)
    assert summary["plans_killed"] == 10 and summary["deploys_killed"] == 10
