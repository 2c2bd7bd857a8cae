"""``python -m alethia.gateway.issuer DIR``: a local user issuer for a deployment without OIDC.

Writes ``DIR/issuer-key.pem`` (0600, kept if present) and ``DIR/jwks.json`` (what Envoy and
the services verify with), then prints a token for ``--subject`` in ``--zones`` (``*``: every
zone). docker compose mounts ``DIR/jwks.json``; production points ``ALETHIA_AUTH_JWKS_FILE``
and ``ALETHIA_AUTH_ISSUER`` at the company's identity provider instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alethia.rpc.auth import LOCAL_ISSUER, LocalIssuer, write_private


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alethia.gateway.issuer", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--subject", default="admin")
    parser.add_argument("--zones", default="*", help="comma-separated zone ids, or * for every zone")
    parser.add_argument("--issuer", default=LOCAL_ISSUER)
    parser.add_argument("--days", type=int, default=30)
    ns = parser.parse_args(argv)
    ns.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    issuer = LocalIssuer.load_or_create(ns.dir / "issuer-key.pem", ns.issuer)
    jwks = ns.dir / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()) + "\n")
    jwks.chmod(0o644)  # public keys: the service containers' user must read it
    zones = [z.strip() for z in ns.zones.split(",") if z.strip()]
    token = issuer.mint(ns.subject, zones, ttl_seconds=ns.days * 24 * 3600)
    write_private(ns.dir / f"{ns.subject}.token", token + "\n")
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
