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
- the stale lock file the killed apply left is reported by the next DEPLOY of that
  workspace and is still there afterwards: never force-unlocked.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from .harness import DEPLOY, ERRORED, FAILED, PLAN, QUEUED, RUNNING, SUCCEEDED, TERMINAL, Pipeline

LEASE = 4
RESCUE_INTERVAL = 0.5
SLACK = 2.0  # scheduling on a shared 2-core machine


def _lock_key(project: str) -> str:
    return f"zone-acme/{project}-dev-us-east-1/terraform.tfstate.tflock"


async def _rescued_after(p: Pipeline, job_id: str, killed_at: float, statuses: set[int]) -> float:
    job = await p.wait_status(job_id, statuses, within=LEASE + RESCUE_INTERVAL + 30, interval=0.05)
    assert job.status in statuses
    return time.monotonic() - killed_at


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

    s3 = p.s3()
    for jid, project, _ in deploys:
        job = done[jid]
        assert job.status == ERRORED
        assert job.attempt == 1, "a DEPLOY whose runner vanished is never run again"
        key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate"
        assert key in job.error and "may still be locked" in job.error and "force-unlock" in job.error
        # The killed apply's lock file is still there: nothing force-unlocked it.
        s3.head_object(Bucket="alethia-state", Key=_lock_key(project))

    # 5b: the next DEPLOY of a workspace with a stale lock reports the lock and leaves it alone.
    _, stale_project, spec_id = deploys[0]
    lock_before = p.get_object("alethia-state", _lock_key(stale_project))
    lock_info = json.loads(lock_before)
    again = await p.queue(spec_id, DEPLOY)
    again = (await p.wait_terminal([again.id], within=90))[again.id]
    assert again.status == FAILED
    assert "lock" in again.error.lower() and lock_info["ID"] in again.error, again.error
    assert p.get_object("alethia-state", _lock_key(stale_project)) == lock_before
    # A PLAN of the same workspace still works: it reads state without taking the lock.
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
