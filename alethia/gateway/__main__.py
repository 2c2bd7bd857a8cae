"""``python -m alethia.gateway``: write Envoy's configuration from the settings, then become Envoy.

``python -m alethia.gateway --ready`` exits 0 when the running Envoy is ready.

For containers (docker-compose's ``gateway`` service): the process execs ``envoy`` so the
container's signals reach it directly. ``alethia up`` starts Envoy itself instead
(:class:`alethia.gateway.envoy.EnvoyGateway`), with the same configuration builder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from alethia.gateway.envoy import GatewayConfig, write_config
from alethia.gateway.settings import GatewaySettings
from alethia.stack.infra import find_binary


def ready(admin_port: int) -> int:
    """``--ready``: 0 when Envoy's admin interface says LIVE (the container health check)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def config_from(settings: GatewaySettings) -> GatewayConfig:
    """Envoy's configuration inputs from the gateway's settings."""
    return GatewayConfig(
        listen=settings.listen,
        specs_addr=settings.specs_addr,
        snapshot_addr=settings.snapshot_addr,
        events_addr=settings.events_addr,
        jwks=json.loads(Path(settings.auth_jwks_file).read_text()),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        admin_port=settings.admin_port,
        cors_origins=settings.origins(),
    )


def main() -> None:
    settings = GatewaySettings()
    if sys.argv[1:] == ["--ready"]:
        sys.exit(ready(settings.admin_port))
    if not settings.auth_jwks_file or not settings.auth_issuer:
        sys.stderr.write(
            "error: ALETHIA_AUTH_JWKS_FILE and ALETHIA_AUTH_ISSUER are required for the gateway\n"
        )
        sys.exit(2)
    path = write_config(config_from(settings), Path(settings.config_file))
    envoy = find_binary("envoy", "ALETHIA_ENVOY_BIN")
    argv = [envoy, "-c", str(path), "--concurrency", "1", "--disable-hot-restart", "--log-level", "warning"]
    os.execv(envoy, argv)


if __name__ == "__main__":
    main()
