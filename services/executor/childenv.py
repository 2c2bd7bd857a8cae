"""The environments of the runner's child processes, built once from settings.

Terraform, git, helm/kubectl and Infracost each get what they need and nothing else: a
small base (``PATH``, ``HOME``, locale, proxy and CA settings), plus per tool:

- Terraform: the cloud providers' own variables (``AWS_*``, ``GOOGLE_*``, ``CLOUDSDK_*``,
  ``ARM_*``, ``AZURE_*``), ``TF_VAR_*`` and Terraform's CLI settings, then the state
  backend's credentials and the plugin cache, which override them.
- git: the base and ``SSH_AUTH_SOCK``; the job's token is added per push, scoped to the
  repository's host (see :func:`services.executor.postapply.git_env`).
- helm/kubectl: the cloud variables their exec-auth plugins read (``aws eks get-token``,
  ``gke-gcloud-auth-plugin``, ``kubelogin``), never the state backend's credentials.
- Infracost: the base and ``INFRACOST_*``.

Never in any of them: an ``ALETHIA_*`` variable (the service token, the S3 keys, the git
token), git's own ``GIT_*`` overrides, or anything else of the runner's environment.
Variables a deployment needs on top are named in ``ALETHIA_CHILD_ENV_PASSTHROUGH``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BASE_VARS = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy",
    "http_proxy", "no_proxy",
)  # fmt: skip
CLOUD_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_", "ARM_", "AZURE_")
TERRAFORM_PREFIXES = ("TF_VAR_",)
TERRAFORM_VARS = ("TF_CLI_CONFIG_FILE", "TF_LOG", "TF_LOG_PATH", "TF_REGISTRY_CLIENT_TIMEOUT", "PYTHONPATH")
# Never handed to a child, whatever a passthrough setting says.
FORBIDDEN_PREFIXES = ("ALETHIA_", "GIT_", "TF_CLI_ARGS")


def _allowed(name: str) -> bool:
    return not name.startswith(FORBIDDEN_PREFIXES)


def pick(
    environ: Mapping[str, str], names: Iterable[str] = (), prefixes: tuple[str, ...] = ()
) -> dict[str, str]:
    """The variables of ``environ`` named in ``names`` or starting with one of ``prefixes``."""
    wanted = set(names)
    return {
        k: v
        for k, v in environ.items()
        if (k in wanted or (prefixes and k.startswith(prefixes))) and _allowed(k)
    }


@dataclass(frozen=True)
class ChildEnvironments:
    """One environment per kind of child process (see the module docstring)."""

    terraform: dict[str, str] = field(default_factory=dict)
    git: dict[str, str] = field(default_factory=dict)
    kube: dict[str, str] = field(default_factory=dict)
    infracost: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        environ: Mapping[str, str],
        backend_env: Mapping[str, str],
        terraform_extra: Mapping[str, str] = (),  # type: ignore[assignment]
        passthrough: Iterable[str] = (),
    ) -> ChildEnvironments:
        """From the runner's environment (read once, at the edge) and its settings.

        ``backend_env`` carries the state backend's credentials (Terraform only);
        ``terraform_extra`` e.g. the plugin cache; ``passthrough`` names further variables
        every child gets (never ``ALETHIA_*``/``GIT_*``).
        """
        base = pick(environ, (*BASE_VARS, *passthrough))
        cloud = pick(environ, prefixes=CLOUD_PREFIXES)
        tf = {**base, **cloud, **pick(environ, TERRAFORM_VARS, TERRAFORM_PREFIXES)}
        # A configured CLI config file that does not exist only produces a warning on every run.
        if "TF_CLI_CONFIG_FILE" in tf and not Path(tf["TF_CLI_CONFIG_FILE"]).is_file():
            tf.pop("TF_CLI_CONFIG_FILE")
        tf.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", **dict(terraform_extra)})
        tf.update(backend_env)
        git = {**base, **pick(environ, ("SSH_AUTH_SOCK",))}
        kube = {**base, **cloud}
        infracost = {**base, **pick(environ, prefixes=("INFRACOST_",))}
        return cls(terraform=tf, git=git, kube=kube, infracost=infracost)

    def all(self) -> dict[str, dict[str, str]]:
        """Every environment by child kind (for tests and the security scan)."""
        return {"terraform": self.terraform, "git": self.git, "kube": self.kube, "infracost": self.infracost}
