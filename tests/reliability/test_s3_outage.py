"""Scenario 4: object storage unavailable while a runner stores artifacts.

The runner's artifact store reaches S3 through a proxy the test cuts (every connection
reset, counted). Counted and asserted:

- a PLAN whose plan file cannot be stored ends FAILED with a clear error naming the object
  and the attempts, after a bounded number of connection attempts and seconds;
- nothing of it is in the bucket (no manifest), so it can never be applied: a DEPLOY of it
  is refused at QueueJob;
- a DEPLOY (plan + apply) whose plan cannot be stored never applies: state has 0 resources;
- a plan whose manifest is missing or half-written (truncated) is refused by the runner
  before Terraform runs: 0 Terraform log lines, 0 resources in state;
- when S3 is back, the next PLAN succeeds with its manifest.
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc

from services.executor.artifacts import ArtifactStore
from tests.harness import (
    CHEAP_TEMPLATES,
    DEPLOY,
    FAILED,
    PLAN,
    S3_ACCESS,
    S3_SECRET,
    SUCCEEDED,
    Link,
    Pipeline,
    job_events,
)


async def _terraform_lines(p: Pipeline, job_id: str) -> int:
    return sum(
        1
        for _, _, ev in await job_events(p.nats_url)
        if ev.job_id == job_id and ev.type == "log" and ev.log.type != "alethia"
    )


def _resources(p: Pipeline, project: str) -> int:
    key = f"zone-acme/{project}-dev-us-east-1/terraform.tfstate"
    if key not in p.keys("alethia-state", key):
        return 0
    return len(json.loads(p.get_object("alethia-state", key))["resources"])


async def test_s3_down_during_artifact_upload(make_pipeline: Any, s3_server: Any) -> None:
    p: Pipeline = await make_pipeline(templates_dir=CHEAP_TEMPLATES, lease_seconds=10)
    host, port = s3_server.endpoint.rsplit("//", 1)[1].split(":")
    link = await Link(host, int(port)).start()
    # About the stored artifacts: no kept plan directory (a DEPLOY on its planning runner
    # checks the kept copy against the same recorded digests instead of downloading).
    runner = await p.start_runner(runner_concurrency=1, kept_plans=0)
    # The runner's own retry policy (4 attempts), with a short backoff to keep the test quick.
    store = ArtifactStore(
        "alethia-artifacts",
        endpoint=link.endpoint,
        access_key=S3_ACCESS,
        secret_key=S3_SECRET,
        backoff_seconds=0.05,
        keyring=runner.runner.ctx.artifacts.keyring,
    )
    # The runner keeps its state backend on S3 directly; only artifacts go through the link.
    runner.runner.ctx.artifacts = store
    try:
        plan_spec = await p.create_spec("s3-plan")
        deploy_spec = await p.create_spec("s3-deploy")

        link.down()
        t0 = time.monotonic()
        plan = await p.queue(plan_spec.id, PLAN)
        plan = (await p.wait_terminal([plan.id], within=90))[plan.id]
        plan_s = time.monotonic() - t0
        refused_plan = link.refused
        assert plan.status == FAILED
        # plan.tfplan and plan.json go up concurrently: either may be the one reported.
        assert f"upload jobs/{plan.id}/plan." in plan.error
        assert f"failed after {store.attempts} attempts" in plan.error
        # Bounded: the store's attempts x (botocore's 2 tries + one reconnect of a pooled
        # connection), for the plan file, its JSON and then the log; and in seconds.
        assert 0 < refused_plan <= 3 * store.attempts * 3, refused_plan
        assert plan_s < 60, plan_s
        assert p.keys("alethia-artifacts", f"jobs/{plan.id}/") == []
        try:
            await p.queue(deploy_spec.id, DEPLOY, plan_job_id=plan.id)
            raise AssertionError("a DEPLOY of a FAILED plan was queued")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)

        deploy = await p.queue(deploy_spec.id, DEPLOY)
        deploy = (await p.wait_terminal([deploy.id], within=90))[deploy.id]
        assert deploy.status == FAILED and "object storage failed" in deploy.error
        assert _resources(p, "s3-deploy") == 0, "applied although the plan could not be stored"
        assert p.keys("alethia-state", "zone-acme/s3-deploy-dev-us-east-1/terraform.tfstate.tflock") == []

        # S3 back: the next PLAN of the same workspace succeeds and carries its manifest.
        link.up()
        good = await p.queue(plan_spec.id, PLAN)
        good = (await p.wait_terminal([good.id], within=90))[good.id]
        assert good.status == SUCCEEDED, good.error
        assert f"jobs/{good.id}/manifest.json" in p.keys("alethia-artifacts", f"jobs/{good.id}/")

        # A plan whose manifest never arrived, or arrived cut in half, is never applied.
        mkey = f"jobs/{good.id}/manifest.json"
        manifest = p.get_object("alethia-artifacts", mkey)
        refusals = []
        for label, mutate in (
            ("missing", lambda s3: s3.delete_object(Bucket="alethia-artifacts", Key=mkey)),
            (
                "truncated",
                lambda s3: s3.put_object(
                    Bucket="alethia-artifacts", Key=mkey, Body=manifest[: len(manifest) // 2]
                ),
            ),
        ):
            mutate(p.s3())
            d = await p.queue(plan_spec.id, DEPLOY, plan_job_id=good.id)
            d = (await p.wait_terminal([d.id], within=90))[d.id]
            assert d.status == FAILED, (label, d.error)
            assert ("manifest" in d.error and "re-plan" in d.error) or "unreadable" in d.error, (
                label,
                d.error,
            )
            assert await _terraform_lines(p, d.id) == 0, f"Terraform ran for a {label} manifest"
            refusals.append(label)
        assert _resources(p, "s3-plan") == 0
    finally:
        await link.close()
    print(
        "RELIABILITY s3-outage",
        json.dumps(
            {
                "connections_reset_for_failed_plan": refused_plan,
                "failed_plan_s": round(plan_s, 1),
                "half_written_manifests_refused": len(refusals),
                "applies_from_bad_artifacts": 0,
            }
        ),
    )
