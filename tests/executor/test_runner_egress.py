"""The runner's egress CIDRs (``ALETHIA_RUNNER_EGRESS_CIDRS``) reach the cluster's authorised
networks through ``runner.auto.tfvars.json``, next to the mapper's untouched tfvars."""

from __future__ import annotations

import copy
import json

import pytest

from alethia.errors import InvalidArgument
from alethia.events.v1 import events_pb2
from alethia.runner_vars import RUNNER_TFVARS_FILE, parse_egress_cidrs, runner_tfvars_json
from services.executor.workspace import TFVARS_FILE, prepare
from tests.executor.conftest import e2e_pipeline
from tests.fixtures.specs import full_spec_dict

SETTING = "ALETHIA_RUNNER_EGRESS_CIDRS"


def test_egress_cidrs_are_validated_and_name_the_entry() -> None:
    assert parse_egress_cidrs("") == ()
    assert parse_egress_cidrs(" 198.51.100.7/32 ,203.0.113.0/28;198.51.100.7/32, ") == (
        "198.51.100.7/32",
        "203.0.113.0/28",
    )
    with pytest.raises(InvalidArgument) as err:
        parse_egress_cidrs("198.51.100.7/32, 0.0.0.0/0, 10.0.0.1/8, 198.51.100.9, nonsense/7, ::/0")
    fields = {v.field: v.description for v in err.value.violations}
    assert set(fields) == {f"{SETTING}[{i}]" for i in (1, 2, 3, 4, 5)}
    assert "ALETHIA_RUNNER_EGRESS_ALLOW_ANY" in fields[f"{SETTING}[1]"]
    assert "198.51.100.9/32" in fields[f"{SETTING}[3]"]
    # Explicitly allowed, the world is accepted (and only then).
    assert parse_egress_cidrs("0.0.0.0/0", allow_any=True) == ("0.0.0.0/0",)
    with pytest.raises(InvalidArgument) as err:
        parse_egress_cidrs(",".join(f"198.51.100.{i}/32" for i in range(6)))
    assert [v.field for v in err.value.violations] == [SETTING]


def test_prepare_writes_the_runner_file_beside_the_mappers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "tpl"
    source.mkdir()
    (source / "main.tf").write_text("")
    mapper = '{"project_name":"x"}'
    wd = prepare(tmp_path / "work", "job", source, mapper, runner_tfvars_json(["198.51.100.7/32"]))
    assert (wd / TFVARS_FILE).read_text() == mapper  # byte for byte: the config hash is the mapper's
    assert json.loads((wd / RUNNER_TFVARS_FILE).read_text()) == {"runner_egress_cidrs": ["198.51.100.7/32"]}
    assert not (prepare(tmp_path / "work", "job", source, mapper) / RUNNER_TFVARS_FILE).exists()


async def test_a_sandbox_run_merges_the_runner_cidrs_into_the_authorised_networks(
    tmp_path,  # type: ignore[no-untyped-def]
    databases: tuple[str, str],
    nats_server,  # type: ignore[no-untyped-def]
    s3_server,  # type: ignore[no-untyped-def]
) -> None:
    async with e2e_pipeline(tmp_path, databases, nats_server, s3_server, 6, in_process_runner=False) as stack:
        # Misconfiguration stops the runner at start, naming the entry.
        with pytest.raises(InvalidArgument, match=rf"{SETTING}\[0\]"):
            await stack.start_runner(runner_egress_cidrs="0.0.0.0/0")
        await stack.start_runner(runner_egress_cidrs="198.51.100.7/32, 203.0.113.0/28")

        cluster = copy.deepcopy(full_spec_dict("aws")["cluster"])
        cluster["provider_config"]["api_authorized_cidrs"] = ["203.0.113.0/28", "192.0.2.0/24"]
        spec = await stack.create_spec("egress", full=True, repos=True, cluster=cluster)
        plan = await stack.run(spec.id, events_pb2.PLAN)
        assert plan.status == events_pb2.SUCCEEDED, plan.error
        # The saved plan (made with the runner file) applies as it is.
        deploy = await stack.run(spec.id, events_pb2.DEPLOY, plan_job_id=plan.id)
        assert deploy.status == events_pb2.SUCCEEDED, deploy.error
        assert deploy.config_hash == plan.config_hash

        state = stack.state_doc("zone-acme/egress-prod-us-east-1/terraform.tfstate")
        (cluster_res,) = [
            r for r in state["resources"] if r["type"] == "terraform_data" and r["name"] == "cluster"
        ]
        cidrs = cluster_res["instances"][0]["attributes"]["input"]["value"]["api_authorized_cidrs"]
        # The Spec's first, then the runner's, once each.
        assert cidrs == ["203.0.113.0/28", "192.0.2.0/24", "198.51.100.7/32"]
