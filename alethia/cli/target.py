"""Which stack the CLI talks to, and with which token.

Order: explicit addresses in the environment (``ALETHIA_SPECS_ADDR``,
``ALETHIA_SNAPSHOT_ADDR``, ...) win per service; otherwise ``stack.json`` of the stack
directory (``--stack-dir``, else ``ALETHIA_STACK_DIR``, else ``./.alethia``). The token is
``ALETHIA_TOKEN`` (a user's bearer token), else ``ALETHIA_SERVICE_TOKEN``, else the stack's
``gateway_token_file`` (the local admin user: the CLI calls the services directly over gRPC
with the same identity the gateway sees), else its service token file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alethia.errors import AlethiaError, Unavailable
from alethia.stack.datadir import DEFAULT_DATA_DIR, SERVICES, StackInfo, lock_held

ADDR_ENV = {name: f"ALETHIA_{name.upper()}_ADDR" for name in SERVICES}


@dataclass(frozen=True)
class Target:
    """Addresses of the services and the token to present."""

    addresses: dict[str, str]
    token: str
    stack_dir: Path | None  # where they came from (for error messages)

    def where(self, service: str) -> str:
        origin = f" (stack in {self.stack_dir})" if self.stack_dir else ""
        return f"{self.addresses.get(service, '?')}{origin}"


def stack_dir_from(flag: str | None, env: Mapping[str, str]) -> Path:
    """The stack directory named by the flag, the environment, or the default."""
    return Path(flag or env.get("ALETHIA_STACK_DIR") or DEFAULT_DATA_DIR)


def resolve(stack_dir_flag: str | None = None, env: Mapping[str, str] | None = None) -> Target:
    """Find the stack; raises :class:`Unavailable` with what to do when there is none."""
    env = os.environ if env is None else env
    explicit = {name: env[var] for name, var in ADDR_ENV.items() if env.get(var)}
    token = env.get("ALETHIA_TOKEN", "") or env.get("ALETHIA_SERVICE_TOKEN", "")
    stack_dir = stack_dir_from(stack_dir_flag, env)
    if len(explicit) == len(SERVICES) and not stack_dir_flag:
        return Target(explicit, token, None)

    stack_file = stack_dir / "stack.json"
    if not stack_file.exists():
        if explicit and not stack_dir_flag:
            return Target(explicit, token, None)
        raise Unavailable(
            f"no Alethia stack found in {stack_dir.resolve()}: start one with `alethia up` there, "
            "or point to it with --stack-dir / ALETHIA_STACK_DIR"
        )
    try:
        info = StackInfo.read(stack_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AlethiaError(f"{stack_file}: unreadable stack file: {exc}") from exc
    if info.status == "stopped" or not lock_held(stack_dir):
        raise Unavailable(
            f"the Alethia stack in {stack_dir.resolve()} is not running: start it with "
            f"`alethia up --data-dir {stack_dir}`"
        )
    token_file = info.gateway_token_file or info.token_file
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise AlethiaError(f"cannot read the stack's token: {exc}") from exc
    addresses = {**info.services, **explicit}
    return Target(addresses, token, stack_dir.resolve())
