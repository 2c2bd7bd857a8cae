"""End to end: specs + snapshot + mapper + runner in-process, real Postgres, NATS, S3, Terraform."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil

import grpc
import pytest

from alethia.crypto import MAGIC
from alethia.events.v1 import events_pb2
from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from alethia.rpc.client import connect
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2
from tests.fixtures.s3 import TEST_KEYRING
from tests.harness import (
    DEPLOY,
    DESTROY,
    GIT_TOKEN,
    OTHER_GIT_HOST,
    PLAN,
    S3_SECRET,
    Pipeline,
    database_text,
    git_out,
)


def _artifacts(job: snapshot_pb2.Job) -> dict[str, events_pb2.Artifact]:
    return {a.name: a for a in job.artifacts}


def _state_key(project: str) -> str:
    return f"zone-acme/{project}-prod-us-east-1/terraform.tfstate"


async def test_plan_deploy_destroy(stack: Pipeline) -> None:
    spec = await stack.create_spec("cycle", full=True, repos=True)
    key = _state_key("cycle")

    plan = await stack.run(spec.id, PLAN)
    assert plan.status == events_pb2.SUCCEEDED, plan.error
    assert plan.changes.add > 5 and plan.changes.destroy == 0
    addresses = [r.address for r in plan.changes.resources]
    assert "terraform_data.cluster" in addresses and addresses == sorted(addresses)
    assert plan.cost.status == "skipped" and "infracost" in plan.cost.reason.lower()
    # Artifacts: present, checksums right, manifest lists them with this job's config hash.
    arts = _artifacts(plan)
    assert set(arts) == {"plan.tfplan", "plan.json", "terraform.log", "manifest.json"}
    for a in arts.values():
        data = stack.artifact(a.key)
        assert a.key == f"jobs/{plan.id}/{a.name}"
        assert hashlib.sha256(data).hexdigest() == a.sha256 and len(data) == a.size
    manifest = json.loads(stack.artifact(arts["manifest.json"].key))
    assert manifest["config_hash"] == plan.config_hash and manifest["job_id"] == plan.id
    for name in ("plan.tfplan", "plan.json", "terraform.log"):
        assert manifest["artifacts"][name]["sha256"] == arts[name].sha256
    # A plan changes no state.
    assert stack.keys("alethia-state", key) == []
    # Live log: Terraform's -json messages reached NATS as "log" events, in order.
    plan_events = await stack.events(plan.id)
    logs = [e for e in plan_events if e.type == "log"]
    assert {e.log.stage for e in logs} >= {"init", "plan"}
    assert any(e.log.type == "planned_change" for e in logs)
    assert [e.event_id for e in logs] == [f"{plan.id}:{plan.attempt}:{i + 1}" for i in range(len(logs))]
    # ... and WatchJob serves them with the job's own events, ending after the terminal one.
    watched = [
        e async for e in stack.jobs.WatchJob(snapshot_pb2.WatchJobRequest(id=plan.id, include_logs=True))
    ]
    assert sum(1 for e in watched if e.type == "log") == len(logs)
    assert watched[-1].type == "succeeded" and watched[0].type == "queued"

    deploy = await stack.run(spec.id, DEPLOY, plan_job_id=plan.id)
    assert deploy.status == events_pb2.SUCCEEDED, deploy.error
    # The deploy reports the changes of the plan it applied.
    assert (deploy.changes.add, deploy.changes.change, deploy.changes.destroy) == (
        plan.changes.add,
        plan.changes.change,
        plan.changes.destroy,
    )
    assert [r.address for r in deploy.changes.resources] == addresses
    # The stored plan was applied: the deploy's manifest names its checksum, and no plan ran.
    dmanifest = json.loads(stack.artifact(f"jobs/{deploy.id}/manifest.json"))
    assert dmanifest["applied_plan"] == {
        "job_id": plan.id,
        "sha256": arts["plan.tfplan"].sha256,
        "key": arts["plan.tfplan"].key,
    }
    deploy_logs = [e for e in await stack.events(deploy.id) if e.type == "log"]
    assert "plan" not in {e.log.stage for e in deploy_logs}
    assert any(e.log.type == "apply_complete" for e in deploy_logs)
    assert "plan.tfplan" not in _artifacts(deploy)
    # State at exactly the workspace key, lock released.
    assert stack.keys("alethia-state", key.rsplit("/", 1)[0]) == [key]
    state = stack.state_doc(key)
    assert any(r["name"] == "cluster" for r in state["resources"])
    # Terraform wrote it with server-side encryption (the backend's encrypt=true).
    assert stack.s3().head_object(Bucket="alethia-state", Key=key)["ServerSideEncryption"] == "AES256"
    # Outputs: sensitive ones redacted.
    outputs = {o.name: o for o in deploy.outputs}
    assert json.loads(outputs["cluster_name"].value_json) == "payments-prod-eks".replace("payments", "cycle")
    pw = outputs["database_admin_password"]
    assert pw.sensitive and pw.value_json == '"(sensitive)"'
    secret = state["outputs"]["database_admin_password"]["value"]
    # Post-apply steps, in order.
    steps = [(s.name, s.status) for s in deploy.post_apply_steps]
    assert steps == [("outputs", "done"), ("kubeconfig", "done"), ("gitops", "done"), ("argocd", "skipped")]
    assert "not reachable" in deploy.post_apply_steps[3].detail
    kubeconfig = stack.artifact(f"jobs/{deploy.id}/kubeconfig.yaml").decode()
    assert "get-token" in kubeconfig and "cycle-prod-eks" in kubeconfig
    assert "token:" not in kubeconfig and "password" not in kubeconfig
    # The apps repository received the rendered manifests.
    files = (await git_out(stack.bare_repo, "ls-tree", "-r", "--name-only", "main")).decode().split()
    assert "clusters/cycle/argocd/root.yaml" in files and "clusters/cycle/apps/platform.yaml" in files
    root = (await git_out(stack.bare_repo, "show", "main:clusters/cycle/argocd/root.yaml")).decode()
    assert "https://git.example.com/platform/apps.git" in root and "clusters/cycle/apps" in root

    # Nothing secret anywhere: artifacts, events (log lines included), the apps repository.
    secrets = [GIT_TOKEN, S3_SECRET, secret]
    blobs = [stack.get_object("alethia-artifacts", k) for k in stack.keys("alethia-artifacts", "jobs/")]
    blobs.append(await git_out(stack.bare_repo, "log", "-p", "--all"))
    for job_id in (plan.id, deploy.id):
        blobs += [e.SerializeToString() for e in await stack.events(job_id)]
    rows = await database_text(stack.snapshot_db) + await database_text(stack.specs_db)
    assert plan.id in rows and deploy.id in rows  # the dump does see the job rows
    blobs.append(rows.encode())
    for s in secrets:
        assert not any(s.encode() in b for b in blobs), "a secret leaked"

    destroy = await stack.run(spec.id, DESTROY)
    assert destroy.status == events_pb2.SUCCEEDED, destroy.error
    assert destroy.changes.destroy == plan.changes.add and destroy.changes.add == 0
    assert stack.state_doc(key)["resources"] == []
    assert list(destroy.outputs) == []


async def test_deploy_without_a_plan_plans_and_applies_and_post_apply_reruns_safely(stack: Pipeline) -> None:
    spec = await stack.create_spec("direct", full=True, repos=True)
    first = await stack.run(spec.id, DEPLOY)
    assert first.status == events_pb2.SUCCEEDED, first.error
    assert first.changes.add > 5
    stages = {e.log.stage for e in await stack.events(first.id) if e.type == "log"}
    assert {"plan", "apply"} <= stages
    manifest = json.loads(stack.artifact(f"jobs/{first.id}/manifest.json"))
    assert "applied_plan" not in manifest and "plan.tfplan" in manifest["artifacts"]
    head = await git_out(stack.bare_repo, "rev-parse", "main")
    # Again: nothing to change, and every post-apply step is safe to run a second time.
    second = await stack.run(spec.id, DEPLOY)
    assert second.status == events_pb2.SUCCEEDED, second.error
    assert (second.changes.add, second.changes.change, second.changes.destroy) == (0, 0, 0)
    gitops = {s.name: s for s in second.post_apply_steps}["gitops"]
    assert gitops.status == "done" and "already up to date" in gitops.detail
    assert await git_out(stack.bare_repo, "rev-parse", "main") == head
    assert [o.name for o in second.outputs] == [o.name for o in first.outputs]


async def test_tampered_or_swapped_plan_never_reaches_apply(stack: Pipeline) -> None:
    """Artifacts are encrypted and bound to their job; a DEPLOY checks the digests its plan's row recorded."""
    spec = await stack.create_spec("tamper", full=True, repos=True)
    plan = await stack.run(spec.id, PLAN)
    other = await stack.run(spec.id, PLAN)  # another job's valid plan of the same Spec
    assert plan.status == other.status == events_pb2.SUCCEEDED, (plan.error, other.error)
    # About the stored artifacts: the plans' kept working directories (which a DEPLOY on this
    # runner checks against the same recorded digests instead of downloading) are dropped.
    shutil.rmtree(stack.tmp / "work" / "kept-plans", ignore_errors=True)
    s3 = stack.s3()
    plan_key, other_key = f"jobs/{plan.id}/plan.tfplan", f"jobs/{other.id}/plan.tfplan"
    original = stack.get_object("alethia-artifacts", plan_key)
    original_manifest = stack.get_object("alethia-artifacts", f"jobs/{plan.id}/manifest.json")
    assert original.startswith(MAGIC) and b"terraform" not in original.lower(), "stored encrypted"

    async def refused(label: str) -> str:
        d = await stack.run(spec.id, DEPLOY, plan_job_id=plan.id)
        assert d.status == events_pb2.FAILED, label
        assert "the plan artifact was altered" in d.error, (label, d.error)
        terraform_lines = [e for e in await stack.events(d.id) if e.type == "log" and e.log.type != "alethia"]
        assert terraform_lines == [], f"Terraform ran for a {label} plan"
        assert stack.keys("alethia-state", _state_key("tamper")) == []
        return d.error

    # 1. A flipped byte: the object no longer authenticates.
    s3.put_object(Bucket="alethia-artifacts", Key=plan_key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    assert "plan.tfplan" in await refused("altered")
    # 2. Another job's valid, encrypted plan copied over this one: sealed for that job, it does not open.
    s3.put_object(
        Bucket="alethia-artifacts", Key=plan_key, Body=stack.get_object("alethia-artifacts", other_key)
    )
    assert "moved from another job" in await refused("swapped")
    # 3. An insider holding the artifact key re-seals the other plan for this job, and a manifest
    #    that vouches for it: the digests recorded in the plan job's database row still refuse it.
    other_plan = stack.artifact(other_key)
    manifest = json.loads(stack.artifact(f"jobs/{plan.id}/manifest.json"))
    manifest["artifacts"]["plan.tfplan"].update(
        sha256=hashlib.sha256(other_plan).hexdigest(), size=len(other_plan)
    )
    s3.put_object(
        Bucket="alethia-artifacts", Key=plan_key, Body=TEST_KEYRING.seal(plan.id, "plan.tfplan", other_plan)
    )
    mkey = f"jobs/{plan.id}/manifest.json"
    forged = json.dumps(manifest).encode()
    s3.put_object(
        Bucket="alethia-artifacts", Key=mkey, Body=TEST_KEYRING.seal(plan.id, "manifest.json", forged)
    )
    error = await refused("re-sealed")
    assert "recorded in the plan job's record" in error and "plan.tfplan" in error
    # The untouched objects put back: the plan applies.
    s3.put_object(Bucket="alethia-artifacts", Key=plan_key, Body=original)
    s3.put_object(Bucket="alethia-artifacts", Key=mkey, Body=original_manifest)
    ok = await stack.run(spec.id, DEPLOY, plan_job_id=plan.id)
    assert ok.status == events_pb2.SUCCEEDED, ok.error


async def test_a_repository_on_another_host_gets_no_token(stack: Pipeline) -> None:
    """The token was issued for git.example.com; a Spec pointing at another (allowed) host gets none."""
    spec = await stack.create_spec(
        "elsewhere", full=True, repos=True, repo_url=f"https://{OTHER_GIT_HOST}/platform/apps.git"
    )
    deploy = await stack.run(spec.id, DEPLOY)
    steps = {s.name: s for s in deploy.post_apply_steps}
    assert steps["gitops"].status == "failed", steps["gitops"]
    assert f"no git token is configured for host {OTHER_GIT_HOST}" in steps["gitops"].detail
    assert GIT_TOKEN not in deploy.error and GIT_TOKEN not in steps["gitops"].detail
    # The Spec service refuses a host off the platform's list outright, naming the field.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stack.create_spec(
            "attacker", full=True, repos=True, repo_url="https://git.attacker.example.net/platform/apps.git"
        )
    err = from_rpc_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["repositories[0].url"]


async def test_one_workspace_runs_in_order_different_workspaces_in_parallel(stack: Pipeline) -> None:
    a = await stack.create_spec("order-a", full=True, repos=True)
    b = await stack.create_spec("order-b", full=True, repos=True)
    a1 = await stack.queue(a.id, PLAN)
    b1 = await stack.queue(b.id, PLAN)
    a2 = await stack.queue(a.id, PLAN)
    jobs = [await stack.wait(j.id) for j in (a1, a2, b1)]
    assert all(j.status == events_pb2.SUCCEEDED for j in jobs), [j.error for j in jobs]
    ja1, ja2, jb1 = jobs

    def span(j: snapshot_pb2.Job) -> tuple[float, float]:
        return j.start_time.ToNanoseconds() / 1e9, j.end_time.ToNanoseconds() / 1e9

    # Same workspace: the second starts only after the first ended.
    assert span(ja2)[0] >= span(ja1)[1]
    # Different workspaces: b1 ran while a1 was running (concurrency 2).
    assert span(jb1)[0] < span(ja1)[1] and span(ja1)[0] < span(jb1)[1]


async def test_the_runner_gives_terraform_its_go_runtime_settings(stack: Pipeline) -> None:
    env = stack.executor.runner.ctx.child_env.terraform
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("400", "1GiB")


async def test_cancel_during_apply_is_not_a_plain_cancel_and_releases_the_lock(
    stack: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner builds its children's environment once at start: slow this one runner's Terraform.
    monkeypatch.setitem(stack.executor.runner.ctx.child_env.terraform, "TF_VAR_sandbox_delay_seconds", "120")
    spec = await stack.create_spec("cancel", full=True, repos=True)
    key = _state_key("cancel")
    job = await stack.queue(spec.id, DEPLOY)
    channel = connect(stack.executor.address)
    status_stub = executor_pb2_grpc.ExecutorServiceStub(channel)
    try:
        for _ in range(300):
            st = await status_stub.GetStatus(executor_pb2.GetStatusRequest())
            if any(r.job_id == job.id and r.stage == "apply" for r in st.running):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the apply never started")
        await asyncio.sleep(1.0)  # Terraform is inside the sleeping provisioner now
        assert f"{key}.tflock" in stack.keys("alethia-state", key)
        await stack.jobs.CancelJob(snapshot_pb2.CancelJobRequest(id=job.id))
        done = await stack.wait(job.id, within=40)
    finally:
        await channel.close()
    # Resources were created before the cancel took effect: never reported as plain CANCELLED.
    assert done.status == events_pb2.FAILED, done.error
    assert done.resources_applied > 0
    assert f"{done.resources_applied} resource change(s) were applied" in done.error
    assert "not a clean cancel" in done.error and "state lock released" in done.error
    assert stack.keys("alethia-state", f"{key}.tflock") == []
    # The count is Terraform's apply_complete messages: exactly the completed resources the
    # saved state holds (the interrupted sleeper is there too, tainted).
    state = json.loads(stack.get_object("alethia-state", key))
    instances = [i for r in state["resources"] if r["mode"] == "managed" for i in r["instances"]]
    assert sum(1 for i in instances if i.get("status") != "tainted") == done.resources_applied
    assert [i.get("status") for i in instances].count("tainted") == 1


async def test_unsatisfiable_terraform_version_fails_clearly(stack: Pipeline) -> None:
    spec = await stack.create_spec("tfversion", full=True, repos=True, terraform_version=">= 9.0, < 10.0")
    job = await stack.run(spec.id, PLAN)
    assert job.status == events_pb2.FAILED
    assert "'>= 9.0, < 10.0'" in job.error and "cannot be satisfied" in job.error
    version = stack.executor.runner.ctx.terraform_version
    assert version in job.error
    assert "plan.tfplan" not in _artifacts(job)


async def test_executor_status_and_health(stack: Pipeline) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # A job of its own, so the count does not depend on which tests ran before.
    spec = await stack.create_spec("status", full=True, repos=True)
    job = await stack.wait((await stack.queue(spec.id, PLAN)).id)
    assert job.status == events_pb2.SUCCEEDED, job.error
    channel = connect(stack.executor.address)
    try:
        st = await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(executor_pb2.GetStatusRequest())
        assert st.runner_id == "runner-inproc" and st.concurrency == 2 and not st.draining
        assert st.terraform_version.startswith("1.") and st.jobs_completed >= 1
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="alethia.executor.v1.ExecutorService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()


async def test_drain_rpc_stops_taking_work(stack: Pipeline) -> None:
    """The in-process runner stops claiming after Drain (a fresh runner replaces it afterwards,
    so the tests that run later, in whatever order, still have one)."""
    channel = connect(stack.executor.address)
    job = None
    try:
        st = await executor_pb2_grpc.ExecutorServiceStub(channel).Drain(executor_pb2.DrainRequest())
        assert st.draining
        spec = await stack.create_spec("drained", full=True, repos=True)
        job = await stack.queue(spec.id, PLAN)
        await asyncio.sleep(2.5)  # > the runner's poll interval, and the dispatch went out
        still = await stack.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
        assert still.status == events_pb2.QUEUED and still.runner_id == ""
    finally:
        await channel.close()
        if job is not None:
            await stack.jobs.CancelJob(snapshot_pb2.CancelJobRequest(id=job.id))
        await stack.stop_runner(stack.executor)
        await stack.start_runner(runner_id="runner-inproc")  # as the fixture started it
