"""The Console's files and how the gateway serves them (no browser, no stack: fast).

Every module the page imports is a file the gateway routes; nothing is loaded from another
origin (no CDN: the Console works with no internet); each asset carries its content type
and the security headers; the API routes still win over the Console's.
"""

from __future__ import annotations

import re
from pathlib import Path

from alethia import console
from alethia.gateway.envoy import GatewayConfig, envoy_config

STATIC = console.STATIC_DIR


def _config() -> dict:
    cfg = GatewayConfig(
        listen="127.0.0.1:8080",
        specs_addr="127.0.0.1:1",
        snapshot_addr="127.0.0.1:2",
        events_addr="127.0.0.1:3",
        jwks={"keys": []},
        issuer="https://issuer.example",
    )
    return envoy_config(cfg)


def _routes(config: dict) -> list[dict]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def test_every_reference_of_the_page_is_a_served_file() -> None:
    served = console.assets()
    referenced: set[str] = set()
    html = (STATIC / "index.html").read_text()
    referenced |= set(re.findall(r'(?:src|href)="(/console/[^"]+)"', html))
    for js in STATIC.glob("*.js"):
        for module in re.findall(r'(?:from|new URL\()\s*"\./([^"]+)"', js.read_text()):
            referenced.add(console.PREFIX + module)
    assert referenced, "the page references its files"
    missing = referenced - set(served)
    assert not missing, f"referenced but not served: {missing}"
    assert all(path.exists() for path in served.values())


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        # The only absolute URL allowed is the SVG namespace (an identifier, never fetched).
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, f"{path.name} refers to {urls}"
        assert "innerHTML" not in text and "eval(" not in text, path.name


def test_gateway_routes_serve_the_console_with_its_headers_after_the_api() -> None:
    routes = _routes(_config())
    paths = [
        r["match"].get("path") or r["match"].get("prefix") or r["match"].get("safe_regex", {}).get("regex")
        for r in routes
    ]
    console_routes = [
        r
        for r in routes
        if "direct_response" in r
        and r["match"].get("path", "").startswith(("/console/", "/"))
        and r["match"].get("path") != "/api/openapi.json"
    ]
    by_path = {r["match"]["path"]: r for r in console_routes}
    assert set(by_path) == set(console.assets())
    for path, route in by_path.items():
        file = Path(route["direct_response"]["body"]["filename"])
        headers = {h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]}
        assert headers["content-type"] == console.CONTENT_TYPES[file.suffix], path
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
    # The API and the event stream come first; the Console only takes what they leave.
    first_console = next(i for i, r in enumerate(routes) if r["match"].get("path") == "/")
    assert paths.index("/api/openapi.json") < first_console
    assert paths.index(r"^/api/jobs/[^/]+/events$") < first_console
    assert routes[-1]["match"] == {"prefix": "/"} and routes[-1]["direct_response"]["status"] == 404


def test_no_console_when_configured_off() -> None:
    cfg = GatewayConfig(
        listen="127.0.0.1:8080",
        specs_addr="127.0.0.1:1",
        snapshot_addr="127.0.0.1:2",
        events_addr="127.0.0.1:3",
        jwks={"keys": []},
        issuer="https://issuer.example",
        console_dir=None,
    )
    hcm = envoy_config(cfg)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert not any(r["match"].get("path") == "/" for r in routes)


def test_the_forms_hints_are_the_cloud_limits() -> None:
    from alethia import cloud_limits

    form = (STATIC / "form.js").read_text()
    for cloud in ("aws", "gcp", "azure"):
        entry = re.search(rf"  {cloud}: {{[^}}]*}}", form)
        assert entry, cloud

        def listed(key: str, text: str = entry.group(0)) -> list[str]:
            m = re.search(rf"{key}: \[([^\]]*)\]", text)
            assert m, key
            return re.findall(r'"([^"]+)"', m.group(1))

        assert sorted(listed("engines")) == sorted(cloud_limits.ENGINES[cloud]), cloud
        assert listed("versions") == list(cloud_limits.supported_kubernetes_versions(cloud)), cloud


def test_the_forms_field_list_is_generated_from_the_declaration() -> None:
    """spec_schema.json is what ``make gen`` writes from the Spec declaration."""
    from alethia import spec_schema

    committed = (STATIC / "spec_schema.json").read_text()
    assert committed == spec_schema.console_schema_json(), "stale: run `make gen`"
    assert "/console/spec_schema.json" in console.assets()


def test_the_forms_labels_name_declared_fields() -> None:
    """A label or section title for a field the Spec no longer has is a stale leftover."""
    from alethia import spec_schema

    schema = spec_schema.console_schema()
    paths = {f["name"] for f in schema["fields"]}
    for sec in schema["sections"]:
        paths.add(sec["key"])
        paths |= {f"{sec['key']}.{f['name']}" for f in sec["fields"]}
        paths |= {f["name"] for f in sec["fields"]}  # a label by field name, wherever it is
        if "sub" in sec:
            paths.add(f"{sec['key']}.{sec['sub']['key']}")
            paths |= {f"{sec['key']}.{sec['sub']['key']}.{f['name']}" for f in sec["sub"]["fields"]}
    form = (STATIC / "form.js").read_text()
    keys: list[str] = []
    for table in ("LABELS", "SECTIONS"):
        body = re.search(rf"\nconst {table} = {{\n(.*?)\n}};", form, re.S)
        assert body, table
        keys += re.findall(r'^  "?([a-z_.]+)"?: ', body.group(1), re.M)
    assert len(keys) > 20
    assert sorted(set(keys) - paths) == []
    # No field list of its own: the form reads the generated one.
    assert 'fetch(new URL("./spec_schema.json"' in form
    assert '["cidr_block", "CIDR block"' not in form
