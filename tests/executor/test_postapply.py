"""Post-apply: kubeconfig and ArgoCD manifest rendering (pure), git push to a local bare repo."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.executor.postapply import (
    AKS_SERVER_ID,
    GitError,
    PostApplyContext,
    checkout,
    cluster_unreachable,
    git_env,
    parse_url_rewrites,
    push_files,
    render_gitops,
    render_kubeconfig,
    resolve_repository_url,
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


def _config(env: dict[str, str]) -> dict[str, str]:
    return {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))
    }


def test_git_env_keeps_the_token_off_argv_and_scoped_to_the_host() -> None:
    env = git_env({"PATH": "/bin", "GIT_ASKPASS": "x"}, "https://git.example.com/a.git", "tok-123456")
    assert "GIT_ASKPASS" not in env and env["GIT_TERMINAL_PROMPT"] == "0"
    pairs = _config(env)
    header = pairs["http.https://git.example.com/.extraHeader"]
    assert base64.b64decode(header.split()[-1]).decode() == "x-access-token:tok-123456"
    assert pairs["http.followRedirects"] == "false"
    assert pairs["protocol.allow"] == "never" and "protocol.file.allow" not in pairs
    assert not any(k.startswith("url.") for k in pairs), "git applies no rewrite of its own"
    assert parse_url_rewrites("https://a/=file:///b/; https://c/=file:///d/") == [
        ("https://a/", "file:///b/"),
        ("https://c/", "file:///d/"),
    ]
    with pytest.raises(ValueError):
        parse_url_rewrites("no-equals-sign")


def test_the_token_goes_only_to_the_origin_it_was_issued_for() -> None:
    spec_url = "https://git.example.com/a.git"
    for target in ("https://mirror.example.net/a.git", "http://git.example.com/a.git",
                   "https://git.example.com:8443/a.git", "file:///srv/a.git", "ssh://git@git.example.com/a.git"):  # fmt: skip
        pairs = _config(git_env({}, target, "tok-123456", spec_url))
        assert not any("extraHeader" in k for k in pairs), target
        assert not any("tok-123456" in v or "Authorization" in v for v in pairs.values()), target
    assert _config(git_env({}, "file:///srv/a.git", "", spec_url))["protocol.file.allow"] == "always"


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/../../etc/passwd.git",
        "https://git.example.com/a/%2e%2e/%2E%2E/x.git",
        "https://git.example.com/./a.git",
        "https://git.example.com/a\\..\\..\\b.git",
        "https://git.example.com/a b.git",
        "git@git.example.com:../x.git",
    ],
)
def test_a_rewritten_url_never_leaves_its_base(url: str) -> None:
    with pytest.raises(GitError):
        resolve_repository_url(url, [("https://git.example.com/", "file:///srv/git/")])


def test_rewrites_apply_the_longest_prefix_after_normalisation() -> None:
    rewrites = [
        ("https://git.example.com/", "file:///srv/git/"),
        ("https://git.example.com/team/", "file:///t/"),
    ]
    assert resolve_repository_url("https://git.example.com/team/a.git", rewrites) == "file:///t/a.git"
    assert resolve_repository_url("https://git.example.com/x/a.git", rewrites) == "file:///srv/git/x/a.git"
    assert (
        resolve_repository_url("https://other.example.com/a.git", rewrites)
        == "https://other.example.com/a.git"
    )


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An HTTP server that records each request's Authorization header, then redirects or refuses."""

    seen: list[tuple[str, str, str | None]] = []
    redirect_to: str = ""

    def do_GET(self) -> None:
        self.seen.append((self.server.server_address[0], self.path, self.headers.get("Authorization")))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_git_never_sends_the_token_across_a_redirect(tmp_path: Path) -> None:
    """Real git against two local HTTP servers: the token's host redirects to another host."""
    other_handler = type("Other", (_Recorder,), {"seen": [], "redirect_to": ""})
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), other_handler)
    home_handler = type(
        "Home", (_Recorder,), {"seen": [], "redirect_to": f"http://localhost:{other.server_address[1]}"}
    )
    home = http.server.ThreadingHTTPServer(("127.0.0.1", 0), home_handler)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (home, other)]
    for t in threads:
        t.start()
    token = "tok-redirect-test-0123456789"
    # A plain-http git host is only reachable through an operator's rewrite (here onto itself).
    base = f"http://127.0.0.1:{home.server_address[1]}/"
    url, rewrites = f"{base}platform/apps.git", [(base, base)]
    try:
        with pytest.raises(GitError) as info:
            await push_files(
                {"a.yaml": "a: 1\n"},
                url,
                "main",
                token,
                rewrites,
                "m",
                Redactor([token]),
                base_env={"PATH": os.environ.get("PATH", "")},
                attempts=1,
            )
    finally:
        home.shutdown()
        other.shutdown()
    assert home_handler.seen, "git asked the repository's own host"
    assert all(auth for _, _, auth in home_handler.seen), "the token's own host got the header"
    assert other_handler.seen == [], "the redirect was not followed: the other host saw nothing"
    assert token not in str(info.value)


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
    # The commit named is the one the branch now holds.
    head = (await asyncio.to_thread(_git, bare, "rev-parse", "main")).strip()
    assert f"pushed {head[:12]} " in first
    again = await push_files(
        files, url, "main", token, rewrites, "bootstrap", Redactor([token]), base_env=os.environ
    )
    assert "already up to date" in again
    assert await asyncio.to_thread(_git, bare, "rev-list", "--count", "main") == "1\n"
    # Someone else's file in the repo survives our next commit.
    changed = dict(files)
    changed["clusters/shop/platform/infrastructure-outputs.yaml"] += "# changed\n"
    second = await push_files(
        changed, url, "main", token, rewrites, "update", Redactor([token]), base_env=os.environ
    )
    assert await asyncio.to_thread(_git, bare, "rev-list", "--count", "main") == "2\n"
    assert f"pushed {(await asyncio.to_thread(_git, bare, 'rev-parse', 'main'))[:12]} " in second
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


async def test_independent_steps_run_at_once_and_one_failure_still_reports_all() -> None:
    """The kubeconfig upload and the git step overlap (each waits for the other to have
    started: run one after the other they would never finish); both fail, all are reported."""
    upload_started, token_asked = asyncio.Event(), asyncio.Event()

    async def store(name: str, data: bytes) -> None:
        upload_started.set()
        await token_asked.wait()
        raise RuntimeError("object storage down")

    async def fetch_token() -> str:
        token_asked.set()
        await upload_started.wait()
        return "ghp_TokenOfTheConcurrentTest0123"

    ctx = PostApplyContext(
        snapshot={**SNAPSHOT, "repositories": [{"url": "http://git.example.com/a.git", "branch": "main"}]},
        outputs=[RedactedOutput(k, False, json.dumps(v)) for k, v in OUTPUTS.items()],
        redactor=Redactor(),
        git_rewrites=[],
        job_id="job-2",
        fetch_git_token=fetch_token,
        store_artifact=store,
    )
    steps = await asyncio.wait_for(run_post_apply(ctx), 60)  # a hang guard, not a timing
    assert [(s.name, s.status) for s in steps] == [
        ("outputs", "done"), ("kubeconfig", "failed"), ("gitops", "failed"), ("argocd", "skipped"),
    ]  # fmt: skip
    assert steps[1].detail == "object storage down"
    assert "must be https or ssh" in steps[2].detail


async def test_a_clone_made_ahead_is_pushed_from_or_redone_when_the_branch_moved(tmp_path: Path) -> None:
    """The DEPLOY clones the apps repository while Terraform applies; if someone pushed
    meanwhile, the push from that clone is refused and a fresh clone pushes instead."""
    bare = tmp_path / "srv" / "platform" / "apps.git"
    bare.parent.mkdir(parents=True)
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", "--bare", str(bare)], check=True)
    rewrites = [("https://git.example.com/", f"file://{tmp_path / 'srv'}/")]
    url, token = "https://git.example.com/platform/apps.git", "tok-ahead-0123456789"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    redactor = Redactor([token])
    ahead = await checkout(url, "main", token, rewrites, redactor, env)  # the branch is new: orphan
    first = await push_files(
        {"a.yaml": "a: 1\n"}, url, "main", token, rewrites, "one", redactor, env, prepared=ahead
    )
    assert "pushed" in first and not ahead.repo.exists()
    stale = await checkout(url, "main", token, rewrites, redactor, env)
    await push_files({"b.yaml": "b: 1\n"}, url, "main", token, rewrites, "someone else", redactor, env)
    result = await push_files(
        {"a.yaml": "a: 2\n"}, url, "main", token, rewrites, "two", redactor, env, prepared=stale
    )
    assert "pushed" in result and not stale.repo.exists()
    assert await asyncio.to_thread(_git, bare, "rev-list", "--count", "main") == "3\n"
    assert sorted((await asyncio.to_thread(_git, bare, "ls-tree", "--name-only", "main")).split()) == [
        "a.yaml",
        "b.yaml",
    ]
