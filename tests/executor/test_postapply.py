"""Post-apply: kubeconfig and ArgoCD manifest rendering (pure), git push to a local bare repo."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from services.executor.postapply import (
    AKS_SERVER_ID,
    PostApplyContext,
    cluster_unreachable,
    git_env,
    parse_url_rewrites,
    push_files,
    render_gitops,
    render_kubeconfig,
    run_post_apply,
)
from services.executor.redaction import RedactedOutput, Redactor

OUTPUTS = {
    "cluster_name": "shop-dev-eks",
    "cluster_endpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
    "cluster_ca_certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nx\n").decode(),
    "database_endpoints": {"ledger": "ledger.example"},
}
SNAPSHOT = {
    "spec_id": "spec-1",
    "provider": "aws",
    "project_name": "shop",
    "environment": "dev",
    "region": "us-east-1",
    "repositories": [
        {"url": "https://git.example.com/platform/apps.git", "branch": "main", "path": "clusters/shop"}
    ],
}


@pytest.mark.parametrize(
    ("provider", "command", "arg"),
    [
        ("aws", "aws", "get-token"),
        ("gcp", "gke-gcloud-auth-plugin", None),
        ("azure", "kubelogin", AKS_SERVER_ID),
    ],
)
def test_kubeconfig_uses_exec_auth_and_holds_no_credentials(
    provider: str, command: str, arg: str | None
) -> None:
    text = render_kubeconfig(provider, "us-east-1", OUTPUTS)
    assert text is not None
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "shop-dev-eks"
    assert doc["clusters"][0]["cluster"]["server"] == OUTPUTS["cluster_endpoint"]
    assert doc["clusters"][0]["cluster"]["certificate-authority-data"] == OUTPUTS["cluster_ca_certificate"]
    user = doc["users"][0]["user"]
    assert set(user) == {"exec"}  # no token, no client key, no password
    assert user["exec"]["command"] == command
    if arg:
        assert arg in user["exec"]["args"]
    if provider == "aws":
        assert user["exec"]["args"][user["exec"]["args"].index("--cluster-name") + 1] == "shop-dev-eks"
    assert render_kubeconfig(provider, "r", OUTPUTS) == render_kubeconfig(provider, "r", dict(OUTPUTS))


def test_kubeconfig_needs_a_cluster() -> None:
    assert render_kubeconfig("aws", "r", {"cluster_name": "x"}) is None


def test_gitops_manifests_are_deterministic_and_point_at_the_repo() -> None:
    files = render_gitops(SNAPSHOT, OUTPUTS)
    assert sorted(files) == [
        "clusters/shop/apps/platform.yaml",
        "clusters/shop/argocd/project.yaml",
        "clusters/shop/argocd/root.yaml",
        "clusters/shop/platform/infrastructure-outputs.yaml",
    ]
    root = yaml.safe_load(files["clusters/shop/argocd/root.yaml"])
    assert root["kind"] == "Application" and root["metadata"]["namespace"] == "argocd"
    assert root["spec"]["source"] == {
        "repoURL": "https://git.example.com/platform/apps.git",
        "targetRevision": "main",
        "path": "clusters/shop/apps",
    }
    assert root["spec"]["project"] == "shop-dev"
    cm = yaml.safe_load(files["clusters/shop/platform/infrastructure-outputs.yaml"])
    assert cm["data"]["cluster_name"] == "shop-dev-eks"
    assert json.loads(cm["data"]["database_endpoints"]) == {"ledger": "ledger.example"}
    assert render_gitops(SNAPSHOT, OUTPUTS) == files
    assert render_gitops({**SNAPSHOT, "repositories": []}, OUTPUTS) == {}


def test_git_env_keeps_the_token_off_argv_and_scoped_to_the_host() -> None:
    env = git_env(
        {"PATH": "/bin", "GIT_ASKPASS": "x"},
        "https://git.example.com/a.git",
        "tok-123456",
        [("https://git.example.com/", "file:///srv/")],
    )
    assert "GIT_ASKPASS" not in env and env["GIT_TERMINAL_PROMPT"] == "0"
    pairs = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    header = pairs["http.https://git.example.com/.extraHeader"]
    assert base64.b64decode(header.split()[-1]).decode() == "x-access-token:tok-123456"
    assert pairs["url.file:///srv/.insteadOf"] == "https://git.example.com/"
    assert parse_url_rewrites("https://a/=file:///b/; https://c/=file:///d/") == [
        ("https://a/", "file:///b/"),
        ("https://c/", "file:///d/"),
    ]
    with pytest.raises(ValueError):
        parse_url_rewrites("no-equals-sign")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


async def test_push_files_to_a_bare_repo_is_idempotent(tmp_path: Path) -> None:
    bare = tmp_path / "srv" / "platform" / "apps.git"
    bare.parent.mkdir(parents=True)
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", "--bare", str(bare)], check=True)
    rewrites = [("https://git.example.com/", f"file://{tmp_path / 'srv'}/")]
    url = "https://git.example.com/platform/apps.git"
    files = render_gitops(SNAPSHOT, OUTPUTS)
    token = "tok-never-stored-123"
    first = await push_files(
        files, url, "main", token, rewrites, "bootstrap", Redactor([token]), base_env=os.environ
    )
    assert "pushed" in first
    again = await push_files(
        files, url, "main", token, rewrites, "bootstrap", Redactor([token]), base_env=os.environ
    )
    assert "already up to date" in again
    assert await asyncio.to_thread(_git, bare, "rev-list", "--count", "main") == "1\n"
    # Someone else's file in the repo survives our next commit.
    changed = dict(files)
    changed["clusters/shop/platform/infrastructure-outputs.yaml"] += "# changed\n"
    await push_files(changed, url, "main", token, rewrites, "update", Redactor([token]), base_env=os.environ)
    assert await asyncio.to_thread(_git, bare, "rev-list", "--count", "main") == "2\n"
    log = await asyncio.to_thread(_git, bare, "log", "-p", "--all")
    assert token not in log and "Alethia Runner" in log


async def test_post_apply_records_each_step_and_skips_argocd_without_a_reachable_cluster(
    tmp_path: Path,
) -> None:
    stored: dict[str, bytes] = {}

    async def store(name: str, data: bytes) -> None:
        stored[name] = data

    outputs = [RedactedOutput(k, False, json.dumps(v)) for k, v in OUTPUTS.items()]
    outputs.append(RedactedOutput("admin_password", True, '"(sensitive)"'))
    ctx = PostApplyContext(
        snapshot={**SNAPSHOT, "repositories": []},
        outputs=outputs,
        redactor=Redactor(),
        git_rewrites=[],
        job_id="job-1",
        store_artifact=store,
    )
    steps = await run_post_apply(ctx)
    assert [(s.name, s.status) for s in steps] == [
        ("outputs", "done"), ("kubeconfig", "done"), ("gitops", "skipped"), ("argocd", "skipped"),
    ]  # fmt: skip
    assert "1 sensitive" in steps[0].detail and "no apps repository" in steps[2].detail
    assert "not reachable" in steps[3].detail
    assert b"shop-dev-eks" in stored["kubeconfig.yaml"]
    assert "not usable" in steps[3].detail  # the fake CA cannot verify anything


def test_cluster_probe_needs_a_verified_api_server() -> None:
    assert "not usable" in (cluster_unreachable("https://127.0.0.1:1", "bm90IGEgY2VydA==") or "")
    assert "127.0.0.1:1" in (cluster_unreachable("http://127.0.0.1:1", "", timeout=0.5) or "")
