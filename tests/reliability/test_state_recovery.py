"""Scenario 11.3: object storage cut in the middle of ``terraform apply``; no applied resource lost.

The runner reaches S3 (state backend, lock, artifacts) through a proxy the test cuts once
the apply has taken its lock and created its quick resources, while a slow one still runs.
Terraform then cannot write the state and leaves ``errored.tfstate``. Counted and asserted:

- the job ends ERRORED with the number of resource changes applied (Terraform's
  ``apply_complete``) and where the kept state is (local copy 0600 in a 0700 directory:
  the artifact store is down too); the working directory is kept;
- the snapshot service records the pending recovery: a new job on the workspace is refused
  at QueueJob with that explanation, and the rescue-proof record names the apply's lock;
- the runner is restarted while S3 is still down (the kept state survives it), then S3
  comes back: the new runner releases the failed apply's own lock and pushes the state
  (``terraform state push``) within seconds, resolves the record, deletes its copies;
- the next PLAN shows no change at all: lost resources 0.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from alethia.snapshot.v1 import snapshot_pb2
from tests.harness import DEPLOY, ERRORED, PLAN, SUCCEEDED, Link, Pipeline

DELAY = "6"


async def _until(what: str, check: Any, within: float = 60.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not within {within}s"
        await asyncio.sleep(interval)


async def _pending(p: Pipeline) -> list[snapshot_pb2.StateRecovery]:
    resp = await p.runner_api.ListStateRecoveries(snapshot_pb2.ListStateRecoveriesRequest(), timeout=10)
    return list(resp.recoveries)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_s3_cut_mid_apply_keeps_and_pushes_the_state(
    make_pipeline: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_VAR_sandbox_delay_seconds", DELAY)
    p: Pipeline = await make_pipeline(lease_seconds=10)
    host, port = s3_server.endpoint.rsplit("//", 1)[1].split(":")
    link = await Link(host, int(port)).start()
    settings = {
        "s3_endpoint": link.endpoint,
        "runner_concurrency": 1,
        "recovery_retry_seconds": 0.5,
        "runner_id": "runner-cut",
    }
    runner = await p.start_runner(**settings)
    project = "recover"
    key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate"
    try:
        spec = await p.create_spec(project)
        deploy = await p.queue(spec.id, DEPLOY)

        # Inside the apply: the lock is taken (and reported), every quick resource is created.
        async def lock_reported() -> str:
            return (await p.get(deploy.id)).state_lock_id

        lock_id = await _until("the apply's lock reported", lock_reported)

        async def quick_ones_done() -> int:
            rj = runner.runner.running.get(deploy.id)
            ex = rj.execution if rj else None
            if ex is None or ex.outcome.changes is None:
                return 0
            return ex.applied if ex.applied >= ex.outcome.changes.add - 1 else 0

        await _until("the quick resources applied", quick_ones_done)
        planned_add = runner.runner.running[deploy.id].execution.outcome.changes.add
        link.down()
        cut_at = time.monotonic()

        job = (await p.wait_terminal([deploy.id], within=180))[deploy.id]
        errored_after = time.monotonic() - cut_at
        assert job.status == ERRORED, job.error
        # The sleeper finished after the cut: every planned change was applied.
        assert job.resources_applied == planned_add > 1
        assert f"{planned_add} resource change(s) were applied" in job.error
        assert "errored.tfstate" in job.error and "terraform state push" in job.error
        local = Path(p.tmp / "work" / "recovered-state" / deploy.id / "errored.tfstate")
        assert "file://" in job.error and str(local) in job.error
        modes, kept = _inspect(local)
        assert modes == (0o600, 0o700, 0o700)
        kept_instances = sum(len(r["instances"]) for r in kept["resources"] if r["mode"] == "managed")
        assert kept_instances == planned_add
        workdirs = [d for d in (p.tmp / "work").glob("job-*") if (d / "errored.tfstate").exists()]
        assert len(workdirs) == 1, "the working directory holding errored.tfstate was deleted"

        (rec,) = await _pending(p)
        assert (rec.job_id, rec.lock_id, rec.resources_applied) == (deploy.id, lock_id, planned_add)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await p.queue(spec.id, PLAN)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not in the backend yet" in (refused.value.details() or "")
        assert str(local) in (refused.value.details() or "")

        # The runner restarts while S3 is still down: nothing is lost, the new one takes over.
        await p.stop_runner(runner)
        assert _inspect(local)[1] == kept
        runner = await p.start_runner(**{**settings, "runner_id": "runner-after"})
        link.up()
        back_at = time.monotonic()
        await _until("the kept state pushed back", lambda: _nothing_pending(p), within=120)
        pushed_after = time.monotonic() - back_at

        assert p.keys("alethia-state", f"{key}.tflock") == [], "the failed apply's lock is still there"
        state = json.loads(p.get_object("alethia-state", key))
        in_state = sum(len(r["instances"]) for r in state["resources"] if r["mode"] == "managed")
        assert in_state == planned_add
        assert not local.parent.exists()
        assert not any((d / "errored.tfstate").exists() for d in (p.tmp / "work").glob("job-*"))
        resolved = await p.runner_api.ListStateRecoveries(
            snapshot_pb2.ListStateRecoveriesRequest(include_resolved=True), timeout=10
        )
        assert [r.resolved for r in resolved.recoveries] == [True]
        assert "pushed the kept state" in resolved.recoveries[0].resolution
        assert f"released the failed apply's lock {lock_id}" in resolved.recoveries[0].resolution

        # The next plan sees everything that was applied: no change at all.
        plan = await p.queue(spec.id, PLAN)
        plan = (await p.wait_terminal([plan.id], within=120))[plan.id]
        assert plan.status == SUCCEEDED, plan.error
        assert (plan.changes.add, plan.changes.change, plan.changes.destroy) == (0, 0, 0)
    finally:
        await link.close()
    print(
        "RELIABILITY state-recovery",
        json.dumps(
            {
                "resources_applied": planned_add,
                "resources_in_state_after_push": in_state,
                "lost_resources": planned_add - in_state,
                "errored_after_cut_s": round(errored_after, 1),
                "pushed_after_s3_back_s": round(pushed_after, 1),
                "jobs_refused_while_pending": 1,
                "next_plan_changes": 0,
            }
        ),
    )


def _inspect(local: Path) -> tuple[tuple[int, int, int], dict[str, Any]]:
    """Modes of the kept state, its directory and the recovery root; and the state itself."""
    modes = tuple(stat.S_IMODE(x.stat().st_mode) for x in (local, local.parent, local.parent.parent))
    return (modes[0], modes[1], modes[2]), json.loads(local.read_bytes())


async def _nothing_pending(p: Pipeline) -> bool:
    return await _pending(p) == []
