"""Where runtime git tokens come from: a per-host JSON file and/or one token bound to one host.

Every token is bound to a host: there is no catch-all, so a Spec whose repository points
at a host nobody issued a token for gets "no token configured", never another host's
token. The token is handed only to ``GetGitToken``'s caller. It is never logged (errors name the
host and the file, never a value), never stored, never put in an event. The file is read
on each request so that rotating a token needs no restart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from alethia.errors import FailedPrecondition, PreconditionViolation, Unavailable

# scp-like ssh form: [user@]host:path (no scheme).
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?!//)")


def repository_host(url: str) -> str:
    """The host of a git URL: ``https://host/...``, ``ssh://git@host:22/...`` or ``git@host:org/repo``."""
    url = url.strip()
    if "://" in url:
        rest = url.split("://", 1)[1]
        authority = rest.split("/", 1)[0]
        authority = authority.rsplit("@", 1)[-1]
        if authority.startswith("["):  # IPv6 literal
            return authority[1 : authority.index("]")].lower()
        return authority.split(":", 1)[0].lower()
    m = _SCP.match(url)
    return m.group("host").lower() if m else ""


@dataclass
class GitTokenSource:
    """Tokens per host from ``tokens_file`` (JSON ``{"host": "token"}``), and ``token`` for ``token_host``."""

    tokens_file: str = ""
    token: str = field(default="", repr=False)
    token_host: str = ""

    def __post_init__(self) -> None:
        self.token_host = self.token_host.strip().lower()
        if self.token and not self.token_host:
            raise ValueError(
                "ALETHIA_GIT_TOKEN is bound to one host: set ALETHIA_GIT_TOKEN_HOST (there is no catch-all token)"
            )

    def token_for(self, repository_url: str) -> str:
        """The token issued for the repository's host; FailedPrecondition when there is none."""
        host = repository_host(repository_url)
        if host and self.tokens_file:
            token = self._read_file().get(host)
            if token:
                return token
        if host and self.token and host == self.token_host:
            return self.token
        raise FailedPrecondition(
            f"no git token is configured for host {host or '(unknown)'}: add it to ALETHIA_GIT_TOKENS_FILE "
            "(or ALETHIA_GIT_TOKEN with ALETHIA_GIT_TOKEN_HOST) on the snapshot service",
            [PreconditionViolation("GIT_TOKEN", host or repository_url, "no token configured")],
        )

    def _read_file(self) -> dict[str, str]:
        path = Path(self.tokens_file)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise Unavailable(f"git token file {path} cannot be read: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            # Never echo the content: it holds tokens.
            raise Unavailable(f"git token file {path} is not valid JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise Unavailable(f'git token file {path} must be a JSON object {{"host": "token"}}')
        return {k.lower(): v for k, v in data.items()}
