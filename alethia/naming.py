"""Every name a Spec's identity becomes, derived in one place.

A Spec is identified by ``(zone_id, project_name, environment, region)`` and lives in one
cloud account ``(provider, account_id)``. From these come:

- the **workspace** ``{zone_id}/{project}-{env}-{region}``: the job queue's unit, the
  Terraform state key ``{workspace}/terraform.tfstate`` and its lock
  ``{workspace}/terraform.tfstate.tflock``, the runner's work directory prefix. The parts
  may contain ``-``, so two different identities can join to the same workspace
  (``a-b``/``c`` and ``a``/``b-c``); the spec service therefore holds uniqueness on the
  *joined* key, not on its parts.
- the **resource prefix** ``{project}-{env}``: the start of every cloud resource name the
  templates create (IAM roles, buckets, resource groups, clusters ...). Several of those
  names are global to the account (IAM roles, an Azure resource group) or to the whole
  cloud (S3 and GCS bucket names), and none contains the zone or the region, so one
  cloud account holds each prefix at most once, whatever the zone or region.
- the **GitOps ownership key** of an apps repository entry: the normalized repository,
  branch and path. A Spec owns its path and everything under it in that branch.

Pure functions, no I/O; the spec service, the snapshot service, the mapper and the
executor all call these instead of formatting names themselves.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

STATE_FILE = "terraform.tfstate"


def workspace_key(zone_id: str, project_name: str, environment: str, region: str) -> str:
    """``{zone_id}/{project}-{env}-{region}``: the unit of state, lock and job queue."""
    return f"{zone_id}/{project_name}-{environment}-{region}"


def state_key(workspace: str) -> str:
    """The S3 object of a workspace's Terraform state (its lock file is this key + ``.tflock``)."""
    return f"{workspace}/{STATE_FILE}"


def resource_prefix(project_name: str, environment: str) -> str:
    """``{project}-{env}``: the prefix of every cloud resource name the templates build."""
    return f"{project_name}-{environment}"


def cloud_account(provider: str, account_id: str) -> str:
    """``{provider}:{account_id}``: the namespace in which resource names must not collide."""
    return f"{provider}:{account_id}"


def normalize_repository_url(url: str) -> str:
    """``host/org/repo``: one spelling for the https and ssh forms of the same repository.

    Scheme, user, port, a trailing ``/`` or ``.git`` and letter case are dropped, so
    ``https://GitHub.com/Org/Apps.git`` and ``git@github.com:org/apps`` are the same
    repository (hosts such as GitHub and GitLab treat the path case-insensitively; on a
    host that does not, two repositories differing only in case are refused as one,
    which errs on the safe side).
    """
    raw = url.strip()
    host, path = "", raw
    if "://" in raw:
        parts = urlsplit(raw)
        host, path = parts.hostname or "", parts.path
    elif "@" in raw and ":" in raw.split("@", 1)[1]:  # scp-like ssh: git@host:org/repo.git
        host, path = raw.split("@", 1)[1].split(":", 1)
    path = "/".join(seg for seg in path.split("/") if seg)
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return f"{host.lower()}/{path.lower()}".rstrip("/")


def repository_url_credentials(url: str) -> bool:
    """Whether a repository URL carries credentials (the one rule, for CreateSpec and the mapper).

    A password anywhere, or any user in an https URL (``https://TOKEN@host/...`` is how tokens
    leak into URLs), is a credential. The user of an ssh URL (``ssh://git@host/...``,
    ``git@host:org/repo``) is an account name that every git host asks for, not a secret.
    """
    raw = url.strip()
    if "://" not in raw:
        return False  # scp-like ssh: ``user@host:path`` has no place for a password
    try:
        parts = urlsplit(raw)
    except ValueError:
        return False  # malformed: refused by the URL checks, not as credentials
    if parts.password is not None:
        return True
    return parts.username is not None and parts.scheme.lower() != "ssh"


def normalize_branch(branch: str) -> str:
    """The branch name without a ``refs/heads/`` prefix."""
    branch = branch.strip()
    return branch[len("refs/heads/") :] if branch.startswith("refs/heads/") else branch


def normalize_repository_path(path: str) -> str:
    """The path inside the repository without empty or ``.`` segments (``""`` is the root)."""
    return "/".join(seg for seg in path.strip().split("/") if seg not in ("", "."))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def repository_branch_key(url: str, branch: str) -> str:
    """sha256 of the normalized (repository, branch): the scope in which paths must not overlap."""
    return _digest(normalize_repository_url(url), normalize_branch(branch))


def gitops_owner_key(url: str, branch: str, path: str) -> str:
    """sha256 of the normalized (repository, branch, path): unique across all Specs."""
    return _digest(normalize_repository_url(url), normalize_branch(branch), normalize_repository_path(path))


def paths_overlap(a: str, b: str) -> bool:
    """Whether two normalized repository paths are the same or one contains the other."""
    if a == b or not a or not b:
        return True
    return b.startswith(a + "/") or a.startswith(b + "/")
