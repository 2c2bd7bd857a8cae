"""Post-apply steps: outputs, kubeconfig, GitOps bootstrap, ArgoCD install.

Each step is recorded as a :class:`Step` (done | skipped | failed, with a detail) in a
fixed order, and each is safe to run again: the kubeconfig and the manifests are pure
functions of the Spec and the outputs, the git step commits only when something changed,
and the ArgoCD install is declarative (``apply``/``upgrade --install``).

Invariants:
- No credentials inside the kubeconfig: cluster access uses the provider's exec plugin
  (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin``).
- The git token is passed to git only through ``GIT_CONFIG_*`` environment variables
  (never argv, which ``ps`` shows, and never a file), scoped to the repository's host, and
  is redacted from anything git prints. Git follows no redirect (a redirect to another
  host never carries it) and speaks only https/ssh (file only to a rewrite's base).
- The URL git is given is the Spec's URL normalised, then rewritten by the longest
  matching ``ALETHIA_GIT_URL_REWRITE`` prefix; a result outside the rewrite's base is
  refused (:func:`resolve_repository_url`), and git applies no rewrite of its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from alethia import naming
from services.executor.redaction import RedactedOutput, Redactor

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
STEP_ORDER = ("outputs", "kubeconfig", "gitops", "argocd")

# Output names the kubeconfig step reads from every template (templates must declare them).
CLUSTER_OUTPUTS = ("cluster_name", "cluster_endpoint", "cluster_ca_certificate")
AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"  # Azure Kubernetes Service AAD server app
ARGOCD_NAMESPACE = "argocd"
ARGOCD_INSTALL_URL = "https://raw.githubusercontent.com/argoproj/argo-cd/stable/manifests/install.yaml"
COMMIT_AUTHOR = ("Alethia Runner", "runner@alethia.invalid")


# libyaml's emitter when PyYAML has it: the same text as the pure-Python one, ~4x faster
# (the render runs on the runner's event loop).
_SAFE_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(doc: Any) -> str:
    return str(yaml.dump(doc, Dumper=_SAFE_DUMPER, sort_keys=True))


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    detail: str = ""


# --------------------------------------------------------------------------- kubeconfig


def output_values(outputs: Sequence[RedactedOutput]) -> dict[str, Any]:
    """Non-sensitive outputs as plain values (sensitive ones are never used here)."""
    return {o.name: json.loads(o.value_json) for o in outputs if not o.sensitive}


def _exec_user(provider: str, cluster_name: str, region: str) -> dict[str, Any]:
    api = "client.authentication.k8s.io/v1beta1"
    if provider == "aws":
        return {
            "apiVersion": api,
            "command": "aws",
            "args": [
                "eks",
                "get-token",
                "--cluster-name",
                cluster_name,
                "--region",
                region,
                "--output",
                "json",
            ],
            "interactiveMode": "Never",
        }
    if provider == "gcp":
        return {
            "apiVersion": api,
            "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            "interactiveMode": "Never",
        }
    if provider == "azure":
        return {
            "apiVersion": api,
            "command": "kubelogin",
            "args": ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_ID],
            "installHint": "Install kubelogin: az aks install-cli",
            "interactiveMode": "Never",
        }
    raise ValueError(f"unknown provider {provider!r}")


def render_kubeconfig(provider: str, region: str, outputs: Mapping[str, Any]) -> str | None:
    """A kubeconfig for the cluster in ``outputs`` using exec auth; None without a cluster.

    ``cluster_ca_certificate`` is the base64 PEM as EKS/GKE/AKS all expose it.
    """
    if not all(outputs.get(name) for name in CLUSTER_OUTPUTS):
        return None
    name = str(outputs["cluster_name"])
    endpoint = str(outputs["cluster_endpoint"])
    if not endpoint.startswith(("https://", "http://")):
        endpoint = f"https://{endpoint}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": endpoint,
                    "certificate-authority-data": str(outputs["cluster_ca_certificate"]),
                },
            }
        ],
        "users": [{"name": f"{name}-exec", "user": {"exec": _exec_user(provider, name, region)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-exec"}}],
        "current-context": name,
        "preferences": {},
    }
    return _yaml(doc)


# --------------------------------------------------------------------------- GitOps manifests


def _app_name(snapshot: Mapping[str, Any]) -> str:
    raw = naming.resource_prefix(
        str(snapshot.get("project_name", "")), str(snapshot.get("environment", ""))
    ).lower()
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in raw).strip("-")
    return cleaned[:53] or "alethia"


def render_gitops(snapshot: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, str]:
    """ArgoCD manifests for the Spec, as ``{repo-relative path: YAML}`` (pure, deterministic).

    Layout under the repository's ``path``: ``argocd/project.yaml`` (an AppProject),
    ``argocd/root.yaml`` (the app-of-apps pointing at ``apps/``), ``apps/platform.yaml``
    (an Application for ``platform/``) and ``platform/infrastructure-outputs.yaml`` (a
    ConfigMap of the non-sensitive Terraform outputs for workloads to read).
    """
    repos = snapshot.get("repositories") or []
    if not repos:
        return {}
    repo = repos[0]
    base = str(repo.get("path") or "").strip("/")
    prefix = f"{base}/" if base else ""
    name = _app_name(snapshot)
    labels = {
        "app.kubernetes.io/managed-by": "alethia",
        "alethia.io/spec-id": str(snapshot.get("spec_id", "")),
        "alethia.io/environment": str(snapshot.get("environment", "")),
    }
    source = {"repoURL": str(repo.get("url", "")), "targetRevision": str(repo.get("branch") or "main")}
    sync = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
    project = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE, "labels": labels},
        "spec": {
            "description": f"Alethia environment {name}",
            "sourceRepos": [source["repoURL"]],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }

    def app(app_name: str, path: str, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": app_name,
                "namespace": ARGOCD_NAMESPACE,
                "labels": labels,
                "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            },
            "spec": {
                "project": name,
                "source": {**source, "path": path},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                "syncPolicy": sync,
            },
        }

    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "infrastructure-outputs", "namespace": name, "labels": labels},
        "data": {
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in sorted(outputs.items())
            if v is not None
        },
    }

    def dump(doc: dict[str, Any]) -> str:
        return "# Rendered by Alethia; changes here are overwritten on the next apply.\n" + _yaml(doc)

    return {
        f"{prefix}argocd/project.yaml": dump(project),
        f"{prefix}argocd/root.yaml": dump(app(f"{name}-root", f"{prefix}apps", ARGOCD_NAMESPACE)),
        f"{prefix}apps/platform.yaml": dump(app(f"{name}-platform", f"{prefix}platform", name)),
        f"{prefix}platform/infrastructure-outputs.yaml": dump(config),
    }


# --------------------------------------------------------------------------- git


def parse_url_rewrites(setting: str) -> list[tuple[str, str]]:
    """``"https://a/=file:///b/;..."`` -> ``[("https://a/", "file:///b/")]`` (from, to)."""
    pairs = []
    for item in setting.split(";"):
        item = item.strip()
        if not item:
            continue
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise ValueError(f"ALETHIA_GIT_URL_REWRITE entry {item!r} is not 'from=to'")
        pairs.append((src, dst))
    return pairs


class GitError(RuntimeError):
    pass


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{f':{parts.port}' if parts.port else ''}/"


def resolve_repository_url(url: str, rewrites: Sequence[tuple[str, str]]) -> str:
    """The URL git is given: ``url`` checked, then rewritten by the longest matching prefix.

    The Spec service refuses these already; the runner checks again because a snapshot is
    data from the database: no backslash, control character or ``.``/``..`` segment (also
    percent-encoded), so a rewritten URL always stays under its rewrite's base (for a
    ``file://`` base, the normalised path is checked too).
    """
    if "\\" in url or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise GitError("repository URL has a backslash, a space or a control character")
    path_part = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[-1]
    if any(unquote(seg).strip() in (".", "..") for seg in path_part.split("/")):
        raise GitError("repository URL has a '.' or '..' path segment")
    matches = [(src, dst) for src, dst in rewrites if url.startswith(src)]
    if not matches:
        if "://" in url and urlsplit(url).scheme not in ("https", "ssh"):
            raise GitError("repository URL must be https or ssh")
        return url
    src, dst = max(matches, key=lambda m: len(m[0]))
    result = dst + url[len(src) :]
    if dst.startswith("file://"):
        base = os.path.normpath(unquote(urlsplit(dst).path))
        target = os.path.normpath(unquote(urlsplit(result).path))
        if os.path.commonpath([base, target]) != base:
            raise GitError("repository URL leaves its rewrite's base")
    return result


def git_env(base: Mapping[str, str], url: str, token: str, token_url: str = "") -> dict[str, str]:
    """Environment for git pushing to ``url`` (already resolved): token header, no redirects.

    Everything goes through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``:
    nothing on argv, nothing on disk. Global/system config is ignored so a machine's
    credential helpers never see the token. The token is sent only when ``url`` is
    http(s) on the same origin as ``token_url`` (the Spec's URL, whose host the token
    was issued for), as a header scoped to that origin; ``http.followRedirects=false``
    keeps it from following a redirect anywhere.
    """
    config: list[tuple[str, str]] = [
        ("user.name", COMMIT_AUTHOR[0]),
        ("user.email", COMMIT_AUTHOR[1]),
        ("credential.helper", ""),
        ("core.askPass", ""),
        ("http.followRedirects", "false"),
        ("protocol.allow", "never"),
    ]
    scheme = urlsplit(url).scheme if "://" in url else "ssh"
    # https and ssh always; http or file only when that is where the URL itself points
    # (an operator's rewrite): never the ext/fd transports, never a submodule's other scheme.
    for allowed in ("https", "ssh", *((scheme,) if scheme in ("http", "file") else ())):
        config.append((f"protocol.{allowed}.allow", "always"))
    if token and scheme in ("http", "https") and _origin(url) == _origin(token_url or url):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        config.append((f"http.{_origin(url)}.extraHeader", f"Authorization: Basic {basic}"))
    env = {k: v for k, v in base.items() if not k.startswith(("GIT_", "SSH_ASKPASS"))}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": str(len(config)),
        }
    )
    for i, (k, v) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


async def _git(args: Sequence[str], cwd: Path, env: Mapping[str, str], redactor: Redactor) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=str(cwd),
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    except BaseException:  # timed out, or the job is going away: no git left behind
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, redactor.redact(out.decode("utf-8", "replace")).strip()


async def _git_ok(args: Sequence[str], cwd: Path, env: Mapping[str, str], redactor: Redactor) -> str:
    code, out = await _git(args, cwd, env, redactor)
    if code != 0:
        raise GitError(f"git {args[0]} failed (exit {code}): {out[-500:]}")
    return out


class Checkout:
    """The apps repository's branch cloned ahead of the push (while Terraform applies).

    Used once, by :func:`push_files`'s first attempt; :meth:`close` removes it (also when
    it was never used: the apply failed).
    """

    def __init__(self, url: str, branch: str, token: str, target: str, env: dict[str, str]) -> None:
        self.url, self.branch, self.token, self.target, self.env = url, branch, token, target, env
        self._tmp = tempfile.TemporaryDirectory(prefix="alethia-gitops-")
        self.repo = Path(self._tmp.name) / "repo"

    def close(self) -> None:
        self._tmp.cleanup()


async def checkout(
    url: str,
    branch: str,
    token: str,
    rewrites: Sequence[tuple[str, str]],
    redactor: Redactor,
    base_env: Mapping[str, str],
) -> Checkout:
    """Clone ``branch`` of ``url`` (or start it afresh when the repository has no such branch)."""
    target = resolve_repository_url(url, rewrites)
    co = Checkout(url, branch, token, target, git_env(base_env, target, token, url))
    try:
        await _clone(co.repo, target, branch, co.env, redactor)
    except BaseException:
        await asyncio.to_thread(co.close)
        raise
    return co


async def push_files(
    files: Mapping[str, str],
    url: str,
    branch: str,
    token: str,
    rewrites: Sequence[tuple[str, str]],
    message: str,
    redactor: Redactor,
    base_env: Mapping[str, str],
    attempts: int = 3,
    prepared: Checkout | None = None,
) -> str:
    """Commit ``files`` on ``branch`` of ``url`` and push; returns a human result line.

    Idempotent: when the branch already holds exactly these files nothing is committed.
    A push that loses a race (non-fast-forward) starts over from a fresh fetch.
    ``base_env`` is git's environment (the runner's child environment, built at the edge).
    ``prepared``: the same branch cloned earlier with the same token, for the first attempt
    (closed here whatever happens).
    """
    target = resolve_repository_url(url, rewrites)
    env = git_env(base_env, target, token, url)
    last: Exception | None = None
    try:
        if prepared is not None and (prepared.url, prepared.branch, prepared.token) == (url, branch, token):
            attempts -= 1
            try:
                result = await _commit_and_push(prepared.repo, files, target, branch, env, message, redactor)
                return result.replace(target, url)
            except GitError as exc:
                last = exc
    finally:
        if prepared is not None:
            await asyncio.to_thread(prepared.close)
    for _ in range(attempts):
        with tempfile.TemporaryDirectory(prefix="alethia-gitops-") as tmp:
            repo = Path(tmp) / "repo"
            try:
                await _clone(repo, target, branch, env, redactor)
                result = await _commit_and_push(repo, files, target, branch, env, message, redactor)
                return result.replace(target, url)
            except GitError as exc:
                last = exc
    raise GitError(str(last))


def _write_files(repo: Path, files: Mapping[str, str]) -> None:
    root = repo.resolve()
    for rel, text in files.items():
        target = repo / rel
        if root not in target.resolve().parents:
            raise GitError(f"refusing to write outside the repository: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


async def _clone(repo: Path, url: str, branch: str, env: Mapping[str, str], redactor: Redactor) -> None:
    """``branch`` of ``url`` into ``repo`` (not existing yet), or an empty orphan ``branch``."""
    # One process for the usual case (the branch exists); only when the clone fails is the
    # branch looked up, to start it afresh when the repository does not have it yet.
    code, out = await _git(
        ["clone", "-q", "--depth=1", "--single-branch", "--branch", branch, "--", url, str(repo)],
        repo.parent,
        env,
        redactor,
    )
    if code != 0:
        await asyncio.to_thread(shutil.rmtree, repo, True)  # whatever the clone left
        await asyncio.to_thread(repo.mkdir)
        await _git_ok(["init", "-q"], repo, env, redactor)
        remote = await _git_ok(["ls-remote", url, f"refs/heads/{branch}"], repo, env, redactor)
        if remote.strip():  # the branch is there: the clone failed for another reason
            raise GitError(f"git clone failed (exit {code}): {out[-500:]}")
        await _git_ok(["checkout", "-q", "--orphan", branch], repo, env, redactor)


def _head_commit(repo: Path) -> str | None:
    """The commit HEAD names, from the files a commit just wrote; None if not that simple
    (a packed or symbolic-chain ref: the caller asks ``git rev-parse``)."""
    git = repo / ".git"
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head if re.fullmatch(r"[0-9a-f]{40,64}", head) else None
    ref = git / head[5:]
    if not ref.is_file():
        return None
    sha = ref.read_text().strip()
    return sha if re.fullmatch(r"[0-9a-f]{40,64}", sha) else None


async def _commit_and_push(
    repo: Path,
    files: Mapping[str, str],
    url: str,
    branch: str,
    env: Mapping[str, str],
    message: str,
    redactor: Redactor,
) -> str:
    await asyncio.to_thread(_write_files, repo, files)
    await _git_ok(["add", "--", *files], repo, env, redactor)
    # Three git processes in the usual case (add, commit, push): the commit itself tells
    # whether anything changed, and the new commit's id is read from its ref file.
    code, out = await _git(["commit", "-q", "-m", message], repo, env, redactor)
    if code != 0:
        staged, _ = await _git(["diff", "--cached", "--quiet"], repo, env, redactor)
        if staged == 0:  # nothing staged: the branch already holds exactly these files
            return f"{url} {branch}: already up to date"
        raise GitError(f"git commit failed (exit {code}): {out[-500:]}")
    sha = await asyncio.to_thread(_head_commit, repo)
    if sha is None:
        sha = (await _git_ok(["rev-parse", "HEAD"], repo, env, redactor)).strip()
    await _git_ok(["push", "-q", url, f"HEAD:refs/heads/{branch}"], repo, env, redactor)
    return f"{url} {branch}: pushed {sha[:12]} ({len(files)} files)"


# --------------------------------------------------------------------------- ArgoCD install


def cluster_unreachable(endpoint: str, ca_b64: str, timeout: float = 3.0) -> str | None:
    """None when the cluster's API answers over TLS verified with its own CA, else why not.

    A bare TCP connect is not enough: proxies and unrelated hosts accept connections. Any
    HTTP answer to ``GET /version`` (even 401/403) proves the API server is there.
    """
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    conn: http.client.HTTPConnection
    if parts.scheme == "http":
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        try:
            pem = base64.b64decode(ca_b64, validate=True).decode("ascii")
            context = ssl.create_default_context(cadata=pem)
        except (ValueError, UnicodeDecodeError, ssl.SSLError) as exc:
            return f"the cluster CA certificate is not usable ({exc})"
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.request("GET", "/version")
        conn.getresponse().read(1024)
        return None
    except (OSError, http.client.HTTPException) as exc:
        return f"{host}:{port}: {exc}"
    finally:
        conn.close()


async def install_argocd(kubeconfig_path: Path, root_app_yaml: str | None, env: Mapping[str, str]) -> str:
    """Install ArgoCD (helm if present, else kubectl) and the root Application.

    ``env`` is the helm/kubectl child environment (cloud variables for exec auth only).
    """
    kube = ["--kubeconfig", str(kubeconfig_path)]
    child_env = dict(env)
    helm = shutil.which("helm", path=child_env.get("PATH"))
    kubectl = shutil.which("kubectl", path=child_env.get("PATH"))

    async def run(argv: list[str], stdin: str | None = None) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=child_env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 600)
        if proc.returncode:
            raise RuntimeError(f"{Path(argv[0]).name} {argv[1]} failed: {out.decode()[-400:]}")

    if helm:
        await run([
            helm, "upgrade", "--install", "argocd", "argo-cd", "--repo", "https://argoproj.github.io/argo-helm",
            "--namespace", ARGOCD_NAMESPACE, "--create-namespace", "--wait", *kube,
        ])  # fmt: skip
        how = "helm"
    elif kubectl:
        ns = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}})
        await run([kubectl, *kube, "apply", "-f", "-"], ns)
        await run(
            [kubectl, *kube, "apply", "--server-side", "-n", ARGOCD_NAMESPACE, "-f", ARGOCD_INSTALL_URL]
        )
        how = "kubectl"
    else:
        raise RuntimeError("neither helm nor kubectl is installed on the runner")
    if root_app_yaml and kubectl:
        await run([kubectl, *kube, "apply", "-f", "-"], root_app_yaml)
    return f"installed with {how}"


# --------------------------------------------------------------------------- orchestration


@dataclass
class PostApplyContext:
    snapshot: dict[str, Any]
    outputs: list[RedactedOutput]
    redactor: Redactor
    git_rewrites: list[tuple[str, str]]
    job_id: str
    # Fetched only when the gitops step needs it (GetGitToken answers only the lease holder).
    fetch_git_token: Any = None
    store_artifact: Any = None  # async (name, bytes) -> None
    workdir: Path | None = None
    # The child environments (ExecutorContext.child_env); empty: nothing of this process's.
    git_env: Mapping[str, str] = field(default_factory=dict)  # git's
    kube_env: Mapping[str, str] = field(default_factory=dict)  # helm/kubectl's
    # The apps repository cloned while Terraform applied (prefetch_repository), if started.
    prefetched: Awaitable[Checkout | None] | None = None
    steps: list[Step] = field(default_factory=list)


def apps_repository(snapshot: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (url, branch) the gitops step pushes to, or None when the Spec has no apps repository."""
    repos = snapshot.get("repositories") or []
    if not repos:
        return None
    return str(repos[0].get("url", "")), str(repos[0].get("branch") or "main")


async def run_post_apply(ctx: PostApplyContext) -> list[Step]:
    """Run the steps; a step's failure is recorded and the others still run.

    The kubeconfig upload, the git push and the ArgoCD install depend on nothing but the
    outputs (rendered here first, purely), not on each other: they run at once, and the
    steps are reported in :data:`STEP_ORDER` whatever finishes first.
    """
    provider = str(ctx.snapshot.get("provider", ""))
    region = str(ctx.snapshot.get("region", ""))
    values = output_values(ctx.outputs)

    sensitive = sum(1 for o in ctx.outputs if o.sensitive)
    outputs_step = Step(
        "outputs", DONE, f"{len(ctx.outputs)} outputs stored ({sensitive} sensitive, redacted)"
    )

    kubeconfig: str | None = None
    render_error: Exception | None = None
    try:
        kubeconfig = render_kubeconfig(provider, region, values)
    except Exception as exc:
        render_error = exc
    manifests = render_gitops(ctx.snapshot, values)

    async def kubeconfig_step() -> Step:
        if render_error is not None:
            raise render_error
        if kubeconfig is None:
            missing = [n for n in CLUSTER_OUTPUTS if not values.get(n)]
            return Step("kubeconfig", SKIPPED, f"no cluster in the outputs (missing {', '.join(missing)})")
        if ctx.store_artifact is not None:
            await ctx.store_artifact("kubeconfig.yaml", kubeconfig.encode())
        return Step(
            "kubeconfig", DONE, f"kubeconfig.yaml for {values['cluster_name']} ({provider} exec auth)"
        )

    async def gitops_step() -> Step:
        if not manifests:
            return Step("gitops", SKIPPED, "the Spec has no apps repository")
        repo = (ctx.snapshot.get("repositories") or [])[0]
        prepared: Checkout | None = None
        if ctx.prefetched is not None:
            try:
                prepared = await ctx.prefetched
            except Exception:  # fetched again below: its error is reported from there
                prepared = None
        if prepared is not None:
            token = prepared.token
        else:
            token = await ctx.fetch_git_token() if ctx.fetch_git_token is not None else ""
        ctx.redactor.add([token])
        result = await push_files(
            manifests,
            str(repo.get("url", "")),
            str(repo.get("branch") or "main"),
            token,
            ctx.git_rewrites,
            f"alethia: bootstrap ArgoCD applications (job {ctx.job_id})",
            ctx.redactor,
            base_env=ctx.git_env,
            prepared=prepared,
        )
        return Step("gitops", DONE, result)

    async def argocd_step() -> Step:
        if kubeconfig is None:
            return Step("argocd", SKIPPED, "no kubeconfig: the outputs name no cluster")
        endpoint = str(values["cluster_endpoint"])
        try:
            # Name resolution is not bounded by the socket timeout: bound the whole check.
            why = await asyncio.wait_for(
                asyncio.to_thread(cluster_unreachable, endpoint, str(values["cluster_ca_certificate"])), 8.0
            )
        except TimeoutError:
            why = f"{endpoint}: no answer within 8 s"
        if why is not None:
            return Step("argocd", SKIPPED, f"cluster endpoint not reachable from the runner ({why})")
        with tempfile.TemporaryDirectory(prefix="alethia-kube-") as tmp:
            path = Path(tmp) / "kubeconfig.yaml"
            await asyncio.to_thread(path.write_text, kubeconfig)
            # The AppProject first: the root Application belongs to it.
            argocd_docs = [
                t
                for p, t in sorted(manifests.items(), key=lambda kv: "root" in kv[0])
                if "/argocd/" in f"/{p}"
            ]
            root = "---\n".join(argocd_docs) or None
            return Step("argocd", DONE, await install_argocd(path, root, ctx.kube_env))

    names = ("kubeconfig", "gitops", "argocd")
    results = await asyncio.gather(kubeconfig_step(), gitops_step(), argocd_step(), return_exceptions=True)
    steps = [outputs_step]
    for name, res in zip(names, results, strict=True):
        if isinstance(res, Step):
            steps.append(res)
        elif isinstance(res, Exception):
            steps.append(Step(name, FAILED, ctx.redactor.redact(str(res))))
        else:  # cancelled (the job is going away): not a step result to report
            raise res
    return steps
