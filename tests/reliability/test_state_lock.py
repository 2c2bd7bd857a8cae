"""Scenario 5: the Terraform state lock under contention (the stale-lock half is in test_runner_crash).

- Two real ``terraform apply`` processes race on one state key in SeaweedFS (the S3 lock
  file, ``use_lockfile``): exactly one holds the lock, the other fails with Terraform's
  "Error acquiring the state lock" naming the holder; afterwards the lock is gone and the
  state has the winner's resource once.
- Through the pipeline: DEPLOY and DESTROY jobs queued on one workspace with two runners
  (four slots) are sampled every 50 ms: at most one of them runs at a time, they start in
  queue order, none fails on the lock, and no lock file is left.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.executor.terraform import (
    ApplyOptions,
    InitOptions,
    Terraform,
    TerraformError,
    resolve_binary,
    terraform_env,
)
from services.executor.workspace import S3Backend, backend_config, backend_env
from tests.harness import DEPLOY, DESTROY, S3_ACCESS, S3_SECRET, SUCCEEDED, Pipeline

SLOW_FIXTURE = Path(__file__).resolve().parents[1] / "executor" / "fixtures" / "slow"


async def _race(tmp: Path, s3_endpoint: str, key: str) -> tuple[int, list[str]]:
    backend = S3Backend(
        bucket="alethia-state", endpoint=s3_endpoint, access_key=S3_ACCESS, secret_key=S3_SECRET
    )
    binary = resolve_binary("")
    tfs = []
    for name in ("a", "b"):
        wd = tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(shutil.copytree, SLOW_FIXTURE, wd)
        env = terraform_env(os.environ, {**backend_env(backend), "TF_VAR_delay_seconds": "4"})
        tf = Terraform(wd, binary, env=env)
        await tf.init(InitOptions(backend_config=backend_config(backend, key), json=False))
        tfs.append(tf)

    async def apply(tf: Terraform, wait: float) -> str:
        await asyncio.sleep(wait)
        try:
            await tf.apply(ApplyOptions())
            return "applied"
        except TerraformError as exc:
            return str(exc)

    results = await asyncio.gather(apply(tfs[0], 0.0), apply(tfs[1], 1.5))
    return sum(r == "applied" for r in results), [r for r in results if r != "applied"]


async def lock_race(p: Pipeline, rounds: int) -> dict[str, Any]:
    winners = []
    for i in range(rounds):
        key = f"zone-race/race{i}-{uuid.uuid4().hex[:6]}/terraform.tfstate"
        won, errors = await _race(p.tmp / "race", p.s3_endpoint, key)
        winners.append(won)
        assert won == 1, f"round {i}: {won} applies held the lock at once"
        assert len(errors) == 1 and "Error acquiring the state lock" in errors[0], errors
        assert "Lock Info" in errors[0] or "ID:" in errors[0], errors[0][-500:]
        assert p.keys("alethia-state", f"{key}.tflock") == [], "lock released after the apply"
        state = json.loads(p.get_object("alethia-state", key))
        assert [r["name"] for r in state["resources"]] == ["slow"]
    return {"rounds": rounds, "both_held": sum(w > 1 for w in winners), "refused_second": rounds}


async def serial_workspace(p: Pipeline, jobs: int) -> dict[str, Any]:
    runners = [await p.start_runner(runner_concurrency=2) for _ in range(2)]
    project = f"lockq{uuid.uuid4().hex[:4]}"
    spec = await p.create_spec(project)
    ids = []
    for i in range(jobs):
        ids.append((await p.queue(spec.id, DEPLOY if i % 2 == 0 else DESTROY)).id)
    max_running = 0
    samples = 0

    async def sample() -> None:
        nonlocal max_running, samples
        while True:
            n = sum(1 for r in runners for rj in r.runner.running.values() if rj.job.workspace == spec_ws)
            max_running = max(max_running, n)
            samples += 1
            await asyncio.sleep(0.05)

    spec_ws = f"zone-acme/{project}-dev-us-east-1"
    sampler = asyncio.create_task(sample())
    try:
        done = await p.wait_terminal(ids, within=60 * jobs)
    finally:
        sampler.cancel()
    bad = {j: done[j].error for j in ids if done[j].status != SUCCEEDED}
    assert bad == {}, bad
    assert all("lock" not in done[j].error.lower() for j in ids)
    spans = [(done[j].start_time.ToNanoseconds(), done[j].end_time.ToNanoseconds()) for j in ids]
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), "overlap or out of order"
    assert max_running == 1
    assert p.keys("alethia-state", f"{spec_ws}/terraform.tfstate.tflock") == []
    return {"jobs": jobs, "samples": samples, "max_running_in_workspace": max_running}


async def test_state_lock_contention(make_pipeline: Any) -> None:
    p: Pipeline = await make_pipeline(lease_seconds=10)
    race = await lock_race(p, rounds=1)
    serial = await serial_workspace(p, jobs=2)
    print("RELIABILITY state-lock", json.dumps({"race": race, "queue": serial}))


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_state_lock_contention_heavy(make_pipeline: Any) -> None:
    p: Pipeline = await make_pipeline(lease_seconds=10)
    race = await lock_race(p, rounds=5)
    serial = await serial_workspace(p, jobs=6)
    print("RELIABILITY state-lock", json.dumps({"race": race, "queue": serial}))
