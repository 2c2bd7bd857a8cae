"""A DEPLOY on the runner that made the plan reuses the plan's initialised working directory.

End to end on the executor harness (real Postgres, NATS, S3, Terraform): what the runner
did is read from the job's own log events (``init`` lines, the runner's notes).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
from pathlib import Path

from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from services.executor.terraform import InitOptions, Terraform, resolve_binary, terraform_env
from services.executor.workspace import S3Backend, backend_config, backend_env, backend_only_dir
from tests.fixtures.s3 import TEST_S3_TERRAFORM
from tests.harness import DEPLOY, PLAN, Pipeline


def _kept(stack: Pipeline) -> Path:
    return stack.tmp / "work" / "kept-plans"


async def _logs(stack: Pipeline, job: snapshot_pb2.Job) -> list[events_pb2.JobEvent]:
    return [e for e in await stack.events(job.id) if e.type == "log"]


async def _plan_then_deploy(stack: Pipeline, project: str, between: object = None) -> snapshot_pb2.Job:
    spec = await stack.create_spec(project, full=True, repos=True)
    plan = await stack.run(spec.id, PLAN)
    assert plan.status == events_pb2.SUCCEEDED, plan.error
    assert (_kept(stack) / plan.id / "plan.tfplan").is_file(), "the plan's directory is kept"
    if callable(between):
        await between(plan)
    deploy = await stack.run(spec.id, DEPLOY, plan_job_id=plan.id)
    assert deploy.status == events_pb2.SUCCEEDED, deploy.error
    # Taken by this deploy and gone with it: a kept directory serves one DEPLOY at most.
    assert not (_kept(stack) / plan.id).exists()
    return deploy


async def _raw_outputs(stack: Pipeline, key: str) -> dict[str, object]:
    """``terraform output -json`` of the workspace's state, run by hand."""
    backend = S3Backend(
        bucket="alethia-state",
        endpoint=stack.s3_endpoint,
        access_key=TEST_S3_TERRAFORM.access_key,
        secret_key=TEST_S3_TERRAFORM.secret_key,
        encrypt=True,
    )
    wd = backend_only_dir(stack.tmp / "raw", "outputs")
    tf = Terraform(wd, resolve_binary(""), env=terraform_env({}, backend_env(backend)))
    await tf.init(InitOptions(backend_config=backend_config(backend, key), json=False))
    return await tf.output()


async def test_deploy_on_the_planning_runner_reuses_the_directory_and_reads_streamed_outputs(
    stack: Pipeline,
) -> None:
    deploy = await _plan_then_deploy(stack, "reuse")
    logs = await _logs(stack, deploy)
    assert not [e for e in logs if e.log.stage == "init" and e.log.type != "alethia"], "init ran"
    assert any("reusing the initialised working directory" in e.log.message for e in logs)
    assert any(e.log.type == "apply_complete" for e in logs)
    # Outputs as `terraform output -json` gives them (read from apply's stream), sensitive redacted.
    raw = await _raw_outputs(stack, "zone-acme/reuse-prod-us-east-1/terraform.tfstate")
    got = {o.name: o for o in deploy.outputs}
    assert sorted(got) == sorted(raw) and len(got) > 5
    for name, entry in raw.items():
        assert isinstance(entry, dict)
        if entry["sensitive"]:
            assert got[name].sensitive and got[name].value_json == '"(sensitive)"'
            assert str(entry["value"]) not in got[name].value_json
        else:
            assert not got[name].sensitive
            assert json.loads(got[name].value_json) == entry["value"], name
    assert any(v["sensitive"] for v in raw.values() if isinstance(v, dict))


async def test_a_changed_byte_in_the_kept_directory_means_a_fresh_init(stack: Pipeline) -> None:
    async def tamper(plan: snapshot_pb2.Job) -> None:
        tfvars = _kept(stack) / plan.id / "terraform.tfvars.json"
        data = tfvars.read_bytes()
        tfvars.write_bytes(data.replace(b'"prod"', b'"prot"', 1))
        assert tfvars.read_bytes() != data

    deploy = await _plan_then_deploy(stack, "tampered", tamper)
    logs = await _logs(stack, deploy)
    assert [e for e in logs if e.log.stage == "init" and e.log.type != "alethia"], "no fresh init"
    refused = [e.log.message for e in logs if "not reusing the working directory" in e.log.message]
    assert refused and "terraform.tfvars.json" in refused[0], refused
    # The plan applied is still the recorded one (downloaded and verified), in a fresh copy.
    assert {o.name for o in deploy.outputs} >= {"cluster_name", "database_admin_password"}


async def test_a_deploy_on_another_runner_initialises_afresh(stack: Pipeline) -> None:
    spec = await stack.create_spec("elsewhere", full=True, repos=True)
    plan = await stack.run(spec.id, PLAN)
    assert plan.status == events_pb2.SUCCEEDED, plan.error
    assert (_kept(stack) / plan.id).is_dir()
    # Another runner on the same host and work directory: the record names the runner.
    await stack.stop_runner(stack.executor)
    await stack.start_runner(runner_id="runner-other")
    try:
        deploy = await stack.run(spec.id, DEPLOY, plan_job_id=plan.id)
        assert deploy.status == events_pb2.SUCCEEDED, deploy.error
        assert deploy.runner_id == "runner-other"
        logs = await _logs(stack, deploy)
        assert [e for e in logs if e.log.stage == "init" and e.log.type != "alethia"], "no fresh init"
        refused = [e.log.message for e in logs if "not reusing the working directory" in e.log.message]
        assert refused and "runner id differs" in refused[0], refused
    finally:
        await stack.stop_runner(stack.executor)
        await stack.start_runner(runner_id="runner-inproc")


async def test_a_plan_of_a_template_without_providers_does_not_queue_on_the_cache_lock(
    stack: Pipeline,
) -> None:
    """Runners sharing a plugin cache serialize inits that may write to it; the sandbox
    template needs no provider, so once known its inits go on while another holds the lock."""
    spec = await stack.create_spec("unlocked", full=True, repos=True)
    first = await stack.run(spec.id, PLAN)  # the first init is locked and records the template
    assert first.status == events_pb2.SUCCEEDED, first.error
    holder = await asyncio.to_thread(open, stack.tmp / "plugin-cache" / ".alethia-init.lock", "a+")
    try:
        await asyncio.to_thread(fcntl.flock, holder, fcntl.LOCK_EX)  # another runner's init
        second = await stack.run(spec.id, PLAN)
        assert second.status == events_pb2.SUCCEEDED, second.error
        logs = await _logs(stack, second)
        assert [e for e in logs if e.log.stage == "init" and e.log.type != "alethia"], "init ran"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        holder.close()
