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
from pathlib import Path

from alethia.stack.datadir import DEFAULT_DATA_DIR, SERVICES, StackInfo, lock_held

ADDR_ENV = {name: f"ALETHIA_{name.upper()}_ADDR" for name in SERVICES}


class Target:
    """Addresses of the services and the token to present.

    A plain class, not a dataclass: making a dataclass costs about half a millisecond at
    import, which every ``alethia`` command pays (bench: ``cli_latency``). Its repr leaves
    the token out.
    """

    __slots__ = ("addresses", "stack_dir", "token")

    def __init__(self, addresses: dict[str, str], token: str, stack_dir: Path | None) -> None:
        self.addresses = addresses
        self.token = token
        self.stack_dir = stack_dir  # where they came from (for error messages)

    def __repr__(self) -> str:
        return f"Target(addresses={self.addresses!r}, stack_dir={self.stack_dir!r})"

    def where(self, service: str) -> str:
        origin = f" (stack in {self.stack_dir})" if self.stack_dir else ""
        return f"{self.addresses.get(service, '?')}{origin}"


def stack_dir_from(flag: str | None, env: Mapping[str, str]) -> Path:
    """The stack directory named by the flag, the environment, or the default."""
    return Path(flag or env.get("ALETHIA_STACK_DIR") or DEFAULT_DATA_DIR)


def resolve(stack_dir_flag: str | None = None, env: Mapping[str, str] | None = None) -> Target:
    """Find the stack; raises :class:`Unavailable` with what to do when there is none."""
    # The error model is imported on the failure paths only: a successful ``--json`` read
    # never builds an error, and alethia.errors is one of the larger imports of a CLI call.
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
        from alethia.errors import Unavailable

        raise Unavailable(
            f"no Alethia stack found in {stack_dir.resolve()}: start one with `alethia up` there, "
            "or point to it with --stack-dir / ALETHIA_STACK_DIR"
        )
    try:
        info = StackInfo.read(stack_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from alethia.errors import AlethiaError

        raise AlethiaError(f"{stack_file}: unreadable stack file: {exc}") from exc
    if info.status == "stopped" or not lock_held(stack_dir):
        from alethia.errors import Unavailable

        raise Unavailable(
            f"the Alethia stack in {stack_dir.resolve()} is not running: start it with "
            f"`alethia up --data-dir {stack_dir}`"
        )
    token_file = info.gateway_token_file or info.token_file
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            from alethia.errors import AlethiaError

            raise AlethiaError(f"cannot read the stack's token: {exc}") from exc
    addresses = {**info.services, **explicit}
    return Target(addresses, token, stack_dir.resolve())
