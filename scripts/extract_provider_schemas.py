"""Extract the schemas of the resource types the spec templates use into a compact JSON file.

The prebuilt cdktf provider packages on PyPI (``cdktf-cdktf-provider-aws``, ``-google``,
``-azurerm``) carry, in their jsii assembly, one configuration struct per resource and data
source, generated from the provider's own schema: every argument with its Terraform name,
whether it is optional, and whether it is a nested block. This script reads those
assemblies (no network, no Terraform) and writes ``tests/templates/provider_schemas.json``
with only the types ``templates/spec/*/*.tf`` declare, which ``tests/templates/
test_provider_schemas.py`` checks the templates against.

Usage (the packages are big, so they are an extra of their own, not a dev dependency)::

    .venv/bin/pip install -e '.[schemas]'
    .venv/bin/python scripts/extract_provider_schemas.py

Deprecation: the assemblies keep the provider's descriptions, so an argument whose
description says it is deprecated is marked; azurerm ships no descriptions, so an
``enable_<x>`` argument next to its ``<x>_enabled`` replacement (the azurerm 4.x renames)
is marked deprecated too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates" / "spec"
OUT = ROOT / "tests" / "templates" / "provider_schemas.json"

# Terraform provider name -> (cdktf package module, PyPI distribution); the pinned versions
# are in pyproject.toml's `schemas` extra and must match templates/spec/*/versions.tf.
PACKAGES = {
    "aws": ("cdktf_cdktf_provider_aws", "cdktf-cdktf-provider-aws"),
    "google": ("cdktf_cdktf_provider_google", "cdktf-cdktf-provider-google"),
    "azurerm": ("cdktf_cdktf_provider_azurerm", "cdktf-cdktf-provider-azurerm"),
}
# Providers the templates use that are small and stable enough not to need checking here.
UNCHECKED_PROVIDERS = ("random",)

_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/(\w+)/([\d.]+)/docs/(resources|data-sources)/\w+ (\w+)\}"
)
_ANCHOR = re.compile(r"#(\w+) \w+#\w+\}")
_DEPRECATED = re.compile(r"\bdeprecated\b", re.IGNORECASE)


def used_types(templates: Path = TEMPLATES) -> dict[str, set[str]]:
    """``{"resource": {...}, "data": {...}}``: every type declared in the spec templates."""
    out: dict[str, set[str]] = {"resource": set(), "data": set()}
    for tf in sorted(templates.glob("*/*.tf")):
        for kind, name in re.findall(r'^(resource|data)\s+"([\w-]+)"', tf.read_text(encoding="utf-8"), re.M):
            out[kind].add(name)
    return out


def load_assembly(module: str) -> dict[str, Any]:
    """The jsii assembly (``.jsii``) shipped inside an installed cdktf provider package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{module} is not installed: run `.venv/bin/pip install -e '.[schemas]'` first")
    base = Path(next(iter(spec.submodule_search_locations))) / "_jsii"
    tgz = next(base.glob("*.jsii.tgz"))
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/.jsii")
        assert member is not None
        data: dict[str, Any] = json.load(io.TextIOWrapper(member, encoding="utf-8"))
        return data


def _tf_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    text = docs.get("remarks", "") + " " + docs.get("summary", "")
    m = _ANCHOR.search(text)
    # Every generated property links its registry anchor; snake case is the fallback.
    return m.group(1) if m else re.sub(r"(?<!^)(?=[A-Z])", "_", prop["name"]).lower()


def _struct_of(ty: dict[str, Any]) -> tuple[str | None, bool]:
    """The struct fqn a property's type refers to (block or object attribute), and whether a list."""
    if "fqn" in ty and not ty["fqn"].startswith("cdktf."):
        return ty["fqn"], False
    if "collection" in ty:
        fqn, _ = _struct_of(ty["collection"]["elementtype"])
        return fqn, fqn is not None
    if "union" in ty:
        for t in ty["union"]["types"]:
            fqn, many = _struct_of(t)
            if fqn:
                return fqn, many
    return None, False


def _block(types: dict[str, Any], fqn: str, depth: int = 0) -> dict[str, Any]:
    """Compact schema of one struct: ``{"attrs": {name: flags}, "blocks": {name: {...}}}``.

    Flags: ``r`` required, ``o`` optional, ``d`` deprecated, ``b`` an argument that may also
    be written as a block (e.g. ``"od"``).
    """
    attrs: dict[str, str] = {}
    blocks: dict[str, Any] = {}
    for prop in types[fqn].get("properties", []):
        name = _tf_name(prop)
        docs = prop.get("docs", {})
        flags = "o" if prop.get("optional") else "r"
        if _DEPRECATED.search(docs.get("summary", "") + " " + docs.get("remarks", "")):
            flags += "d"
        struct, many = _struct_of(prop["type"])
        is_block = struct is not None and docs.get("summary", "").endswith(" block.")
        if is_block and depth < 12:
            assert struct is not None
            inner = _block(types, struct, depth + 1)
            inner["required"] = flags.startswith("r")
            inner["list"] = many
            blocks[name] = inner
        else:
            # Struct- or any-typed arguments (SDKv2 "attributes as blocks" such as a security
            # group's ingress, or recursive blocks cdktf flattens) also take block syntax.
            if struct is not None or prop["type"].get("primitive") in ("any", "json"):
                flags += "b"
            attrs[name] = flags
    # azurerm 4.x renames: `enable_x` is the deprecated alias of `x_enabled` where both exist.
    for name in list(attrs):
        if (
            name.startswith("enable_")
            and f"{name[len('enable_') :]}_enabled" in attrs
            and "d" not in attrs[name]
        ):
            attrs[name] += "d"
    return {"attrs": dict(sorted(attrs.items())), "blocks": dict(sorted(blocks.items()))}


def extract(provider: str, wanted: dict[str, set[str]]) -> tuple[str, dict[str, Any]]:
    """(provider version, ``{"resource": {type: schema}, "data": {type: schema}}``) for one provider."""
    module, _ = PACKAGES[provider]
    asm = load_assembly(module)
    types = asm["types"]
    version = ""
    found: dict[str, dict[str, Any]] = {"resource": {}, "data": {}}
    for fqn, ty in types.items():
        if ty.get("kind") != "class":
            continue
        m = _LINK.search(ty.get("docs", {}).get("summary", ""))
        if not m or m.group(1) != provider:
            continue
        version = m.group(2)
        kind = "resource" if m.group(3) == "resources" else "data"
        tf_type = m.group(4)
        if tf_type in wanted[kind] and f"{fqn}Config" in types:
            found[kind][tf_type] = _block(types, f"{fqn}Config")
    return version, found


def build(templates: Path = TEMPLATES) -> dict[str, Any]:
    """The whole compact file for the types ``templates`` use."""
    wanted = used_types(templates)
    out: dict[str, Any] = {"providers": {}, "resource": {}, "data": {}}
    for provider, (_, dist) in PACKAGES.items():
        prefix = f"{provider}_"
        mine = {k: {t for t in v if t.startswith(prefix)} for k, v in wanted.items()}
        if not any(mine.values()):
            continue
        version, found = extract(provider, mine)
        out["providers"][provider] = {
            "version": version,
            "package": f"{dist}=={importlib.metadata.version(dist)}",
        }
        for kind in ("resource", "data"):
            out[kind].update(found[kind])
    for kind in ("resource", "data"):
        out[kind] = dict(sorted(out[kind].items()))
        missing = sorted(
            t for t in wanted[kind] if t not in out[kind] and t.split("_")[0] not in UNCHECKED_PROVIDERS
        )
        if missing:
            raise SystemExit(f"no schema for {kind} types {missing} in the installed packages")
    return out


def main(argv: list[str] | None = None) -> int:
    """Write (or, with ``--check``, compare) the compact schema file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    text = json.dumps(build(), sort_keys=True, indent=1) + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python scripts/extract_provider_schemas.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
