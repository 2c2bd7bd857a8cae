"""Pure parts of the executor: argv builders, constraints, plan summary, redaction, manifests."""

from __future__ import annotations

import json

import pytest

from alethia.errors import FailedPrecondition
from alethia.terraform_versions import check_constraint, satisfies
from services.executor.artifacts import StoredArtifact, build_manifest, sha256_hex, verify_manifest
from services.executor.plan_summary import summarize_plan
from services.executor.redaction import SENSITIVE, Redactor, redact_outputs, redact_plan
from services.executor.terraform import (
    ApplyOptions,
    InitOptions,
    OutputOptions,
    PlanOptions,
    ShowOptions,
    apply_argv,
    error_message,
    init_argv,
    output_argv,
    plan_argv,
    show_argv,
    terraform_env,
)
from services.executor.workspace import S3Backend, backend_config, backend_env, state_key, workspace_name

# Whole argv, in order (as terraform-exec's tests compare them): a flag that moves, repeats or
# appears where it should not is a failure, not something a membership test lets through.


def test_init_argv_defaults_and_backend_config() -> None:
    assert init_argv(InitOptions(backend_config=("bucket=b", "key=k"))) == [
        "init", "-input=false", "-no-color", "-json", "-backend=true", "-get=true", "-lock-timeout=0s",
        "-backend-config=bucket=b", "-backend-config=key=k",
    ]  # fmt: skip
    assert init_argv(InitOptions(json=False, reconfigure=True, upgrade=True, backend=False)) == [
        "init", "-input=false", "-no-color", "-backend=false", "-get=true", "-lock-timeout=0s",
        "-reconfigure", "-upgrade",
    ]  # fmt: skip


def test_plan_argv() -> None:
    assert plan_argv(PlanOptions(out="p.tfplan")) == [
        "plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", "-out=p.tfplan",
        "-lock=true", "-lock-timeout=0s", "-parallelism=10", "-refresh=true",
    ]  # fmt: skip
    destroy = plan_argv(PlanOptions(destroy=True, var_files=("a.tfvars",), targets=("x.y",), refresh=False))
    assert destroy == [
        "plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", "-out=plan.tfplan",
        "-lock=true", "-lock-timeout=0s", "-parallelism=10", "-refresh=false", "-destroy",
        "-var-file=a.tfvars", "-target=x.y",
    ]  # fmt: skip


def test_apply_argv_uses_the_plan_file_and_never_auto_approves_it() -> None:
    assert apply_argv(ApplyOptions(plan_file="plan.tfplan")) == [
        "apply", "-input=false", "-no-color", "-json", "-lock=true", "-lock-timeout=0s",
        "-parallelism=10", "plan.tfplan",
    ]  # fmt: skip
    assert apply_argv(ApplyOptions()) == [
        "apply", "-input=false", "-no-color", "-json", "-lock=true", "-lock-timeout=0s",
        "-parallelism=10", "-auto-approve",
    ]  # fmt: skip


def test_show_and_output_argv() -> None:
    assert show_argv(ShowOptions(plan_file="p")) == ["show", "-json", "-no-color", "p"]
    assert show_argv(ShowOptions()) == ["show", "-json", "-no-color"]
    assert output_argv(OutputOptions()) == ["output", "-json", "-no-color"]
    assert output_argv(OutputOptions(name="x")) == ["output", "-json", "-no-color", "x"]


def test_terraform_env_drops_argv_altering_vars() -> None:
    env = terraform_env({"TF_CLI_ARGS": "-lock=false", "TF_CLI_ARGS_plan": "x", "HOME": "/h"}, {"A": "1"})
    assert "TF_CLI_ARGS" not in env and "TF_CLI_ARGS_plan" not in env
    assert env["HOME"] == "/h" and env["A"] == "1" and env["TF_IN_AUTOMATION"] == "1"


def test_error_message_prefers_diagnostics() -> None:
    msg = error_message(
        ["plan"], 1, [{"severity": "error", "summary": "Bad", "detail": "very", "address": "a.b"}], "noise"
    )
    assert msg == "terraform plan failed (exit 1): a.b: Bad: very"
    assert "boom" in error_message(["init"], 1, [], "│ Error: boom\n")


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("1.11.4", ">= 1.5, < 2.0", True),
        ("1.11.4", "~> 1.9", True),
        ("2.0.0", "~> 1.9", False),
        ("1.9.9", "~> 1.9.3", True),
        ("1.10.0", "~> 1.9.3", False),
        ("1.9.2", "~> 1.9.3", False),
        ("1.15.5", "= 1.15.5", True),
        ("1.15.5", "1.15.4", False),
        ("1.15.5", "!= 1.15.5", False),
        ("1.11.4", "> 1.11.4", False),
        ("1.11.4", "<= 1.11.4", True),
        ("1.11.4", "", True),
        ("1.2.0", "~> 1", True),
        ("2.1.0", "~> 1", False),
    ],
)
def test_constraints(version: str, constraint: str, ok: bool) -> None:
    assert satisfies(version, constraint) is ok


def test_constraint_messages_name_both_sides() -> None:
    assert check_constraint("1.11.4", ">= 1.5") is None
    msg = check_constraint("1.11.4", ">= 9.0")
    assert msg is not None and ">= 9.0" in msg and "1.11.4" in msg
    bad = check_constraint("1.11.4", "banana")
    assert bad is not None and "not a valid version constraint" in bad


def test_state_key_and_backend_config() -> None:
    snap = {"zone_id": "z1", "project_name": "shop", "environment": "dev", "region": "eu-west-1"}
    assert workspace_name(snap) == "z1/shop-dev-eu-west-1"
    assert state_key(snap) == "z1/shop-dev-eu-west-1/terraform.tfstate"
    backend = S3Backend("b", "us-east-1", "http://127.0.0.1:9000", "AK", "SK")
    pairs = backend_config(backend, "k")
    assert "bucket=b" in pairs and "key=k" in pairs and "use_lockfile=true" in pairs
    assert 'endpoints={s3="http://127.0.0.1:9000"}' in pairs and "use_path_style=true" in pairs
    assert not any("SK" in p or "AK" in p for p in pairs)  # credentials never on argv
    assert backend_env(backend)["AWS_SECRET_ACCESS_KEY"] == "SK"
    aws = backend_config(S3Backend("b"), "k")
    assert not any(p.startswith(("endpoints", "use_path_style", "skip_")) for p in aws)
    assert "encrypt=true" not in pairs
    assert "encrypt=true" in backend_config(S3Backend("b", encrypt=True), "k")
    kms = backend_config(S3Backend("b", kms_key_id="arn:aws:kms:us-east-1:1:key/x"), "k")
    assert "encrypt=true" in kms and "kms_key_id=arn:aws:kms:us-east-1:1:key/x" in kms


PLAN = {
    "variables": {"db_password": {"value": "hunter2-secret"}, "name": {"value": "n"}},
    "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}, "name": {}}}},
    "resource_changes": [
        {"address": "b.x", "mode": "managed", "change": {"actions": ["create"], "after": {"a": 1}}},
        {"address": "a.y", "mode": "managed", "change": {"actions": ["delete", "create"]}},
        {"address": "c.z", "mode": "managed", "change": {"actions": ["update"],
         "before": {"pw": "old-secret-1", "k": "v"}, "before_sensitive": {"pw": True},
         "after": {"pw": "new-secret-2", "k": "v"}, "after_sensitive": {"pw": True}}},
        {"address": "d.n", "mode": "managed", "change": {"actions": ["no-op"]}},
        {"address": "data.e.r", "mode": "data", "change": {"actions": ["read"]}},
    ],
    "output_changes": {"pw": {"actions": ["create"], "after": "out-secret-3", "after_sensitive": True}},
    "planned_values": {"outputs": {"pw": {"sensitive": True, "value": "out-secret-3"}}},
}  # fmt: skip


def test_summarize_plan_counts_like_terraform() -> None:
    s = summarize_plan(PLAN)
    assert (s.add, s.change, s.destroy) == (2, 1, 1)
    assert [r.address for r in s.resources] == ["a.y", "b.x", "c.z", "d.n"]
    assert s.resources[0].actions == ("delete", "create")
    assert s.has_changes and not summarize_plan({}).has_changes


def test_redact_plan_removes_every_sensitive_value() -> None:
    redacted, secrets = redact_plan(PLAN)
    assert secrets == {"hunter2-secret", "old-secret-1", "new-secret-2", "out-secret-3"}
    text = json.dumps(redacted)
    for s in secrets:
        assert s not in text
    assert redacted["resource_changes"][2]["change"]["after"] == {"pw": SENSITIVE, "k": "v"}
    assert redacted["variables"]["name"]["value"] == "n"
    assert "hunter2-secret" in json.dumps(PLAN)  # the input is not modified


def test_redact_outputs_and_redactor() -> None:
    outs, secrets = redact_outputs(
        {"b": {"sensitive": True, "value": {"pw": "s3cr3t-value"}}, "a": {"sensitive": False, "value": [1]}}
    )
    assert [(o.name, o.sensitive, o.value_json) for o in outs] == [
        ("a", False, "[1]"),
        ("b", True, '"(sensitive)"'),
    ]
    assert secrets == {"s3cr3t-value"}
    r = Redactor(['tok"en-1234', "", "ab"])
    assert r.redact('x tok"en-1234 y') == "x (redacted) y"
    assert r.redact(json.dumps({"m": 'tok"en-1234'})) == '{"m": "(redacted)"}'
    assert r.redact("ab stays: too short to substitute") == "ab stays: too short to substitute"
    assert r.redact_json({"k": ["ab", "ok"]}) == {"k": ["(redacted)", "ok"]}


def _manifest(files: dict[str, bytes], config_hash: str = "h1") -> bytes:
    arts = [StoredArtifact(n, f"jobs/j/{n}", sha256_hex(d), len(d)) for n, d in files.items()]
    return build_manifest("j", config_hash, "1.11.4", arts)


def test_verify_manifest_accepts_an_intact_set() -> None:
    files = {"plan.tfplan": b"PLAN", "plan.json": b"{}"}
    m = verify_manifest(_manifest(files), files, "h1")
    assert m["job_id"] == "j" and m["artifacts"]["plan.tfplan"]["sha256"] == sha256_hex(b"PLAN")


def test_verify_manifest_rejects_tampering_hash_mismatch_and_missing_files() -> None:
    files = {"plan.tfplan": b"PLAN"}
    with pytest.raises(FailedPrecondition) as e1:
        verify_manifest(_manifest(files), {"plan.tfplan": b"PLAN-tampered"}, "h1")
    assert "CHECKSUM_MISMATCH" in str(e1.value) and e1.value.preconditions[0].subject == "plan.tfplan"
    with pytest.raises(FailedPrecondition) as e2:
        verify_manifest(_manifest(files), files, "h2")
    assert "HASH_MISMATCH" in str(e2.value) and "re-plan" in str(e2.value)
    with pytest.raises(FailedPrecondition, match="ARTIFACT_MISSING"):
        verify_manifest(_manifest({"plan.json": b"{}"}), {"plan.json": b"{}"}, "h1")
    with pytest.raises(FailedPrecondition, match="unreadable"):
        verify_manifest(b"not json", files, "h1")


def test_verify_manifest_refuses_a_plan_from_another_terraform() -> None:
    files = {"plan.tfplan": b"PLAN"}
    assert verify_manifest(_manifest(files), files, "h1", terraform_version="1.11.4")["job_id"] == "j"
    with pytest.raises(FailedPrecondition, match="TERRAFORM_VERSION") as err:
        verify_manifest(_manifest(files), files, "h1", terraform_version="1.15.5")
    assert "1.11.4" in str(err.value) and "1.15.5" in str(err.value)


def test_state_push_and_force_unlock_argv_never_force_the_state() -> None:
    from services.executor.terraform import TerraformError, force_unlock_argv, state_push_argv

    assert state_push_argv("errored.tfstate") == [
        "state", "push", "-no-color", "-lock=true", "-lock-timeout=0s", "errored.tfstate",
    ]  # fmt: skip
    assert "-force" not in state_push_argv("errored.tfstate")  # lineage and serial are checked
    assert force_unlock_argv("06bd575b-bf9f") == ["force-unlock", "-no-color", "-force", "06bd575b-bf9f"]
    for bad in ("", "-lock=false"):
        with pytest.raises(TerraformError):
            force_unlock_argv(bad)


def test_lock_object_parsing_and_messages() -> None:
    from services.executor.statelock import locked_message, parse_lock

    lock = parse_lock(
        b'{"ID":"06bd","Operation":"OperationTypeApply","Info":"","Who":"root@vm",'
        b'"Version":"1.11.4","Created":"2026-12-01T04:19:31Z","Path":"alethia-state/k"}'
    )
    assert lock is not None and (lock.id, lock.operation, lock.who) == (
        "06bd",
        "OperationTypeApply",
        "root@vm",
    )
    assert parse_lock(b"{}") is None and parse_lock(b"[1]") is None and parse_lock(b"\xff") is None
    msg = locked_message("z/p-d-r/terraform.tfstate", lock, "spec-1", "job-9 (DEPLOY, ERRORED)")
    assert "locked by job job-9 (DEPLOY, ERRORED)" in msg
    assert "`alethia unlock spec-1 --lock-id 06bd`" in msg and "apply by root@vm" in msg
    assert "by no job this service knows of" in locked_message("k", lock, "s", "")


def test_outputs_are_taken_from_the_apply_stream_only_in_its_final_shape() -> None:
    from services.executor.jobs import streamed_outputs

    applied = {
        "type": "outputs",
        "outputs": {
            "name": {"sensitive": False, "type": "string", "value": "eks"},
            "password": {"sensitive": True, "type": "string"},  # Terraform leaves the value out
        },
    }
    outputs = streamed_outputs(applied)
    assert outputs is not None
    redacted, secrets = redact_outputs(outputs)
    assert [(o.name, o.sensitive, o.value_json) for o in redacted] == [
        ("name", False, '"eks"'),
        ("password", True, json.dumps(SENSITIVE)),
    ]
    assert secrets == set()  # the value never reached the runner
    # A plan's planned output changes (an action, no value), or a value missing: ask Terraform.
    assert streamed_outputs({"outputs": {"name": {"sensitive": False, "action": "create"}}}) is None
    assert streamed_outputs({"outputs": {"name": {"sensitive": False}}}) is None
    assert streamed_outputs({"outputs": "x"}) is None
    assert streamed_outputs({"outputs": {}}) == {}


def test_redact_plan_in_place_matches_the_copy() -> None:
    expected, expected_secrets = redact_plan(PLAN)
    own = json.loads(json.dumps(PLAN))
    redacted, secrets = redact_plan(own, copy=False)
    assert (redacted, secrets) == (expected, expected_secrets)
    assert "hunter2-secret" not in json.dumps(own)  # the document itself was redacted
    plain, none = redact_plan({"resource_changes": [{"change": {"after": {"k": "v"}}}]}, copy=False)
    assert plain == {"resource_changes": [{"change": {"after": {"k": "v"}}}]} and none == set()


def test_redactor_sees_secrets_added_after_first_use() -> None:
    r = Redactor(["first-secret"])
    assert r.redact("first-secret later-secret") == "(redacted) later-secret"
    r.add(["later-secret"])
    assert r.redact("first-secret later-secret") == "(redacted) (redacted)"
    assert r.redact_json({"v": "x later-secret"}) == {"v": "x (redacted)"}


def test_redact_json_in_place_matches_the_copy() -> None:
    r = Redactor(['tok"en-1234', "ab"])
    doc = {
        "k": ["ab", "ok", {"x": 'has tok"en-1234', "n": 1}],
        "j": json.dumps({"m": 'tok"en-1234'}),
        "ab": None,
    }
    expected = r.redact_json(doc)
    inner = doc["k"]
    assert r.redact_json_in_place(doc) is doc and doc == expected
    assert doc["k"] is inner and doc["k"][2]["x"] == "has (redacted)" and "ab" in doc  # keys are kept
    assert r.redact_json_in_place('x ab tok\\"en-1234') == "x ab (redacted)"
    assert r.redact_json_in_place(7) == 7
