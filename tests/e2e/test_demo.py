"""``alethia demo`` (what ``make demo`` runs): exit 0, real outputs, nothing left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from tests.e2e.conftest import ROOT, CliResult, clean_env


def _demo(*args: str) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "alethia.cli.main", "demo", "--json", *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=240,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def _leftovers(data_dir: str) -> list[str]:
    """Processes still running with the demo's data directory on their command line."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if data_dir in cmdline:
            found.append(cmdline)
    return found


def test_demo_plans_and_deploys_the_example_and_tears_down(tmp_path: Path) -> None:
    result = _demo("--results", str(tmp_path / "results"))
    assert result.code == 0, result.err[-3000:]
    demo = result.json()

    plan, deploy = demo["plan_job"], demo["deploy_job"]
    assert plan["status"] == "SUCCEEDED" and plan["changes"]["add"] > 0
    assert deploy["status"] == "SUCCEEDED" and deploy["plan_job_id"] == plan["id"]
    assert deploy["config_hash"] == plan["config_hash"]
    assert deploy["outputs"]["cluster_name"] == "payments-prod-eks"

    kubeconfig = yaml.safe_load(Path(demo["kubeconfig"]).read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == deploy["outputs"]["cluster_endpoint"]
    assert demo["apps_files"] and all(f.startswith("clusters/payments/") for f in demo["apps_files"])
    assert (Path(demo["apps_checkout"]) / demo["apps_files"][0]).is_file()
    # The narration (stderr) names where things went.
    assert demo["kubeconfig"] in result.err and "apps manifests: pushed to" in result.err

    assert not Path(demo["data_dir"]).exists(), "the throwaway data directory is removed"
    assert _leftovers(demo["data_dir"]) == []


@pytest.mark.slow  # a second stack start; runs with `make reliability`
def test_demo_failure_is_one_clear_error_and_still_tears_down(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    doc = yaml.safe_load((ROOT / "examples" / "aws.yaml").read_text())
    doc["network"]["cidr_block"] = "10.20.0.1/16"  # host bits set
    broken.write_text(yaml.safe_dump(doc))
    result = _demo("--example", str(broken), "--results", str(tmp_path / "results"))
    assert result.code == 1 and result.out == ""
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith("error: network.cidr_block: ") for line in errors), result.err[
        -2000:
    ]
    assert "Traceback" not in result.err
    assert "stopping nats-server" in result.err
    data_dir = re.search(r"stack data in (\S+)", result.err)
    assert data_dir, result.err[:2000]
    assert not Path(data_dir.group(1)).exists()
    assert _leftovers(data_dir.group(1)) == []
