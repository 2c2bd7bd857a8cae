"""The Console: a small browser client of the public REST routes, served by the gateway.

The Console is static: ``static/`` holds one HTML page, its stylesheet and its scripts
(plain ES modules, no build step, no third-party code). Envoy serves each file itself
(``direct_response`` from the file, read when Envoy loads its configuration), so the
Console needs no server of its own, works with no internet, and runs wherever the gateway
runs (``alethia up``, docker compose). In the browser, it calls only ``/api/...`` with the
signed-in user's bearer token (see ``docs/console.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/console/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",  # spec_schema.json: the Spec's fields, generated (make gen)
}

# The page loads only its own files; the token it holds cannot be sent elsewhere, and no
# injected markup can run (no inline script or style, no eval).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # Served from files read at Envoy's start: a new version comes with a restart.
    "cache-control": "no-cache",
}


def assets(static_dir: Path = STATIC_DIR) -> dict[str, Path]:
    """URL path -> file: ``/`` is the page, every other file is under ``/console/``."""
    found = {
        PREFIX + p.name: p
        for p in sorted(static_dir.iterdir())
        if p.is_file() and p.suffix in CONTENT_TYPES and p.name != "index.html"
    }
    return {"/": static_dir / "index.html", **found}


def envoy_routes(static_dir: Path = STATIC_DIR) -> list[dict[str, Any]]:
    """Envoy routes answering each asset from its file, with its type and the security headers."""
    routes: list[dict[str, Any]] = []
    for path, file in assets(static_dir).items():
        headers = {"content-type": CONTENT_TYPES[file.suffix], **SECURITY_HEADERS}
        routes.append(
            {
                "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                "direct_response": {"status": 200, "body": {"filename": str(file)}},
                "response_headers_to_add": [
                    {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                    for k, v in headers.items()
                ],
            }
        )
    return routes
