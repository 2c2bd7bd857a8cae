"""A platform engineer's day with the CLI, on a real ``alethia up``.

identity -> spec -> plan -> edit -> the stale plan's deploy refused (naming the changed
field, saying to re-plan) -> plan -> deploy of that plan with outputs -> restart of the
whole stack (specs, jobs and Terraform state survive) -> destroy. Bad input is refused
naming the field and writes nothing. The steps share one stack and one Spec, each needing
what the one before left, so they run in order inside one test (test order cannot matter).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import yaml

from alethia.stack.datadir import DataDir
from tests.e2e.conftest import ROOT, UpStack

EXAMPLE = ROOT / "examples" / "aws.yaml"
NEW_CIDR = "10.42.0.0/16"
state: dict[str, Any] = {}


def _spec_file(tmp_path: Path, name: str, **changes: Any) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    for dotted, value in changes.items():
        target = doc
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _second_up_on_the_same_directory_is_refused(up_stack: UpStack) -> None:
    assert up_stack.proc is not None
    result = up_stack.cli("up", "--data-dir", str(up_stack.data_dir), "--free-ports")
    assert result.code != 0
    assert result.error_lines() == [
        f"error: an Alethia stack is already running on {up_stack.data_dir.resolve()} (pid {up_stack.proc.pid})"
    ]


def _identity_and_bad_spec_refused_naming_the_fields(up_stack: UpStack, tmp_path: Path) -> None:
    identity = up_stack.ok(
        "identity", "create", "--provider", "aws", "--account-id", "123456789012", "--name", "team-a"
    )
    assert identity["id"] and identity["provider"] == "aws"
    state["identity"] = identity["id"]
    assert [i["id"] for i in up_stack.ok("identity", "list")] == [identity["id"]]
    before = up_stack.ok("spec", "list")

    bad = _spec_file(
        tmp_path, "bad.yaml", network__cidr_block="10.20.0.1/16", databases__1__engine="oracle-ish"
    )
    result = up_stack.cli("spec", "create", "-f", str(bad), "--identity", identity["id"], "--json")
    assert result.code == 1 and result.out == ""
    lines = result.error_lines()
    assert any(line.startswith("error: network.cidr_block: ") for line in lines), lines
    assert any(line.startswith("error: databases[1].engine: ") for line in lines), lines
    assert up_stack.ok("spec", "list") == before, "a refused Spec wrote nothing"


def _plan_edit_stale_deploy_refused_replan_deploy(up_stack: UpStack, tmp_path: Path) -> None:
    spec = up_stack.ok("spec", "create", "-f", str(EXAMPLE), "--identity", state["identity"])
    spec_id = spec["id"]
    state["spec"] = spec_id
    assert spec["revision"] == 1 and spec["network"]["cidr_block"] == "10.20.0.0/16"

    plan1 = up_stack.ok("plan", spec_id, "--wait")
    assert plan1["status"] == "SUCCEEDED", plan1["error"]
    assert plan1["type"] == "PLAN" and plan1["spec_id"] == spec_id
    assert plan1["changes"]["add"] > 0 and plan1["changes"]["destroy"] == 0
    state["resources"] = plan1["changes"]["add"]
    assert {a["name"] for a in plan1["artifacts"]} >= {"plan.tfplan", "plan.json"}

    # The engineer edits the CIDR in the file and saves it against the current revision.
    edited = _spec_file(tmp_path, "edited.yaml", network__cidr_block=NEW_CIDR)
    updated = up_stack.ok("spec", "update", spec_id, "-f", str(edited))
    assert updated["revision"] == 2 and updated["network"]["cidr_block"] == NEW_CIDR

    stale = up_stack.cli("deploy", spec_id, "--plan-job", plan1["id"], "--json")
    assert stale.code == 1 and stale.out == ""
    lines = stale.error_lines()
    assert "re-plan" in lines[0], lines
    assert any("network.cidr_block" in line for line in lines), lines
    assert not any(j["type"] == "DEPLOY" for j in up_stack.ok("jobs", "list", "--spec", spec_id))

    snap = up_stack.ok("snapshot", spec_id)
    assert snap["snapshot"]["network"]["cidr_block"] == NEW_CIDR
    assert snap["snapshot"]["git_access_token"] == ""

    plan2 = up_stack.ok("plan", spec_id, "--wait")
    assert plan2["status"] == "SUCCEEDED" and plan2["config_hash"] == snap["config_hash"]
    assert plan2["config_hash"] != plan1["config_hash"]

    deploy = up_stack.ok("deploy", spec_id, "--plan-job", plan2["id"], "--wait")
    assert deploy["status"] == "SUCCEEDED", deploy["error"]
    assert deploy["plan_job_id"] == plan2["id"] and deploy["config_hash"] == plan2["config_hash"]
    outputs = deploy["outputs"]
    assert outputs["cluster_name"] and outputs["cluster_endpoint"].startswith("https://")
    assert outputs["network_id"]
    assert set(outputs["database_endpoints"]) == {"ledger", "sessions"}
    steps = {s["name"]: s["status"] for s in deploy["post_apply_steps"]}
    assert steps.get("kubeconfig") == "done" and steps.get("gitops") == "done", deploy["post_apply_steps"]
    state["jobs"] = {j["id"]: j["status"] for j in up_stack.ok("jobs", "list", "--spec", spec_id)}
    assert set(state["jobs"]) == {plan1["id"], plan2["id"], deploy["id"]}
    state["deploy"] = deploy
    state["plan2"] = plan2


def _drain_runner(up_stack: UpStack) -> None:
    """What an operator does before maintenance: the runner stops taking work (until restart)."""
    from alethia.cli.target import resolve
    from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
    from alethia.rpc.client import connect

    target = resolve(str(up_stack.data_dir), env={})

    async def drain() -> bool:
        channel = connect(target.addresses["executor"], target.token)
        try:
            status = await executor_pb2_grpc.ExecutorServiceStub(channel).Drain(executor_pb2.DrainRequest())
            return bool(status.draining)
        finally:
            await channel.close()

    assert asyncio.run(drain())


def _queue_positions_and_cancel(up_stack: UpStack) -> None:
    """Jobs of one workspace wait in order; a queued one is cancelled at once, and watching it exits 3."""
    _drain_runner(up_stack)
    spec_id = state["spec"]
    first = up_stack.ok("plan", spec_id)
    second = up_stack.ok("plan", spec_id)
    assert (first["status"], first["queue_position"]) == ("QUEUED", 1), first
    assert (second["status"], second["queue_position"]) == ("QUEUED", 2), second
    cancelled = up_stack.ok("jobs", "cancel", second["id"])
    assert cancelled["status"] == "CANCELLED"
    assert up_stack.ok("jobs", "get", first["id"])["queue_position"] == 1
    watched = up_stack.cli("jobs", "watch", second["id"], "--json")
    assert watched.code == 3 and watched.error_lines() == [f"error: job {second['id']} ended CANCELLED"]
    assert json.loads(watched.out.strip().splitlines()[-1])["job"]["status"] == "CANCELLED"
    state["queued"] = first["id"]


def _restart_keeps_specs_jobs_and_state(up_stack: UpStack) -> None:
    spec_id = state["spec"]
    assert up_stack.stop() == 0
    down = up_stack.cli("spec", "get", spec_id, "--json")
    assert down.code == 4 and "not running" in down.error_lines()[0]

    up_stack.start()
    spec = up_stack.ok("spec", "get", spec_id)
    assert spec["revision"] == 2 and spec["network"]["cidr_block"] == NEW_CIDR
    jobs = {j["id"]: j["status"] for j in up_stack.ok("jobs", "list", "--spec", spec_id)}
    assert {k: v for k, v in jobs.items() if k in state["jobs"]} == state["jobs"]
    # The job queued before the restart survived it, and the new runner runs it.
    assert jobs[state["queued"]] in ("QUEUED", "RUNNING", "SUCCEEDED")
    watched = up_stack.cli("jobs", "watch", state["queued"])
    assert watched.code == 0 and "SUCCEEDED" in watched.out, watched.err
    deploy = up_stack.ok("jobs", "get", state["deploy"]["id"])
    assert deploy["outputs"] == state["deploy"]["outputs"]

    # Artifacts survived: the plan's files are still in the stack's S3, byte for byte as recorded.
    info = json.loads((up_stack.data_dir / "stack.json").read_text())
    creds = json.loads(Path(info["s3_credentials_file"]).read_text())
    s3 = boto3.client(
        "s3", endpoint_url=info["s3_endpoint"], aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"], region_name="us-east-1",
    )  # fmt: skip
    ring = DataDir(up_stack.data_dir).artifact_keyring()
    for artifact in state["plan2"]["artifacts"]:
        sealed = s3.get_object(Bucket="alethia-artifacts", Key=artifact["key"])["Body"].read()
        body = ring.open(state["plan2"]["id"], artifact["name"], sealed)  # stored encrypted
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"], artifact["name"]

    # Terraform's state survived in S3: planning the deployed Spec again changes nothing.
    replan = up_stack.ok("plan", spec_id, "--wait")
    assert replan["status"] == "SUCCEEDED"
    assert (replan["changes"]["add"], replan["changes"]["change"], replan["changes"]["destroy"]) == (0, 0, 0)


def _destroy(up_stack: UpStack) -> None:
    # Deleting a Spec that still has infrastructure is refused, naming the workspace and last DEPLOY.
    refused = up_stack.cli("spec", "delete", state["spec"])
    assert refused.code == 1, refused.err
    lines = refused.error_lines()
    assert state["deploy"]["workspace"] in lines[0] and state["deploy"]["id"] in lines[0]
    assert "--abandon" in lines[0] and lines[1].startswith(
        f"error: workspace/{state['deploy']['workspace']}: "
    )
    assert up_stack.ok("spec", "get", state["spec"])["id"] == state["spec"]

    destroyed = up_stack.ok("destroy", state["spec"], "--auto-approve", "--wait")
    assert destroyed["status"] == "SUCCEEDED", destroyed["error"]
    assert destroyed["type"] == "DESTROY"
    # Everything the deploy created (and nothing else) was destroyed.
    assert (destroyed["changes"]["add"], destroyed["changes"]["destroy"]) == (0, state["resources"])
    # Destroyed: now the Spec deletes, and nothing was abandoned.
    deleted = up_stack.ok("spec", "delete", state["spec"])
    assert deleted["deleted"] and not deleted["abandoned"] and deleted["state"] == ""


def test_a_day_with_the_cli(up_stack: UpStack, tmp_path: Path) -> None:
    """The journey, step by step (see the module docstring)."""
    state.clear()
    _second_up_on_the_same_directory_is_refused(up_stack)
    _identity_and_bad_spec_refused_naming_the_fields(up_stack, tmp_path)
    _plan_edit_stale_deploy_refused_replan_deploy(up_stack, tmp_path)
    _queue_positions_and_cancel(up_stack)
    _restart_keeps_specs_jobs_and_state(up_stack)
    _destroy(up_stack)
