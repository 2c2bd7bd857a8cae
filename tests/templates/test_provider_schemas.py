"""The spec templates against the real providers' schemas, offline.

``provider_schemas.json`` is extracted from the cdktf provider packages on PyPI by
``scripts/extract_provider_schemas.py`` (the same schema Terraform gets from the provider).
Every resource and data block of ``templates/spec`` is checked: the type exists, every
argument and nested block is known, arguments and blocks are not confused, required ones are
set, single blocks appear once, nothing deprecated is used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.templates.hcl_blocks import Block, HclError, parse

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "templates" / "spec"
SCHEMAS = json.loads((Path(__file__).parent / "provider_schemas.json").read_text(encoding="utf-8"))
REFRESH = "pip install -e '.[schemas]' && python scripts/extract_provider_schemas.py"
# Meta-arguments Terraform itself handles, on every resource / data block.
META_ATTRS = {"count", "for_each", "depends_on", "provider"}
META_BLOCKS = {"lifecycle", "provisioner", "connection"}
UNCHECKED_PROVIDERS = {"random"}
PROVIDER_OF = {"aws": "aws", "gcp": "google", "azure": "azurerm"}


def problems(block: Block, schema: dict[str, Any], where: str, top: bool = True) -> list[str]:
    """Everything in ``block`` the schema does not allow."""
    out = []
    attrs, blocks = schema["attrs"], schema["blocks"]
    for name, line in block.attrs.items():
        if top and name in META_ATTRS:
            continue
        if name in blocks:
            out.append(f"{where}.{name} (line {line}): is a block, not an argument")
        elif name not in attrs:
            out.append(f"{where}.{name} (line {line}): unknown argument")
        elif "d" in attrs[name]:
            out.append(f"{where}.{name} (line {line}): deprecated")
    seen: dict[str, int] = {}
    for nested in block.blocks:
        if top and nested.type in META_BLOCKS:
            continue
        name = nested.type
        if name in attrs:
            if "b" not in attrs[name]:
                out.append(f"{where}.{name} (line {nested.line}): is an argument, not a block")
            continue
        if name not in blocks:
            out.append(f"{where}.{name} (line {nested.line}): unknown block")
            continue
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 2 and not blocks[name]["list"]:
            out.append(f"{where}.{name} (line {nested.line}): at most one such block")
        out += problems(nested, blocks[name], f"{where}.{name}", top=False)
    present = set(block.attrs) | {b.type for b in block.blocks}
    for name, flags in attrs.items():
        if flags.startswith("r") and name not in present:
            out.append(f"{where}: required argument {name} is missing")
    for name, sub in blocks.items():
        if sub["required"] and name not in present:
            out.append(f"{where}: required block {name} is missing")
    return out


def _declared(provider: str) -> list[tuple[str, Block]]:
    out = []
    for tf in sorted((SPEC / provider).glob("*.tf")):
        for block in parse(tf.read_text(encoding="utf-8")):
            if block.type in ("resource", "data"):
                out.append((tf.name, block))
    return out


@pytest.mark.parametrize("provider", sorted(PROVIDER_OF))
def test_spec_templates_match_the_provider_schemas(provider: str) -> None:
    found: list[str] = []
    checked = 0
    for filename, block in _declared(provider):
        kind, tf_type, name = block.type, block.labels[0], block.labels[1]
        if tf_type.split("_")[0] in UNCHECKED_PROVIDERS:
            continue
        schema = SCHEMAS[kind].get(tf_type)
        if schema is None:
            found.append(
                f"{filename}: {kind} type {tf_type} is not in provider_schemas.json; refresh: {REFRESH}"
            )
            continue
        found += problems(block, schema, f"{filename}: {tf_type}.{name}")
        checked += 1
    assert not found, "\n".join(found)
    assert checked >= 5


@pytest.mark.parametrize("provider", sorted(PROVIDER_OF))
def test_the_pinned_provider_is_the_extracted_one(provider: str) -> None:
    """The schema is the pinned minor's: ``~> X.Y`` in versions.tf == the extract's X.Y."""
    name = PROVIDER_OF[provider]
    text = (SPEC / provider / "versions.tf").read_text(encoding="utf-8")
    pin = re.search(rf'{name}\s*=\s*{{[^}}]*version\s*=\s*"~>\s*(\d+\.\d+)"', text)
    assert pin, f"{name} is not pinned with ~> X.Y"
    extracted = SCHEMAS["providers"][name]["version"]
    assert extracted.startswith(pin.group(1) + "."), (pin.group(1), extracted, REFRESH)


def test_the_check_catches_each_kind_of_mistake() -> None:
    schema = {
        "attrs": {"name": "r", "size": "o", "enable_x": "od"},
        "blocks": {
            "settings": {"attrs": {"tier": "r"}, "blocks": {}, "list": False, "required": True},
            "rule": {"attrs": {"id": "o"}, "blocks": {}, "list": True, "required": False},
        },
    }
    text = """
resource "t" "a" {
  count    = 1
  sizes    = 2
  settings = {}
  enable_x = true
  rule {
    id = "a"
  }
  dynamic "rule" {
    for_each = []
    content {
      idd = rule.value
    }
  }
  size {
  }
}
"""
    (block,) = parse(text)
    assert problems(block, schema, "t.a") == [
        "t.a.sizes (line 4): unknown argument",
        "t.a.settings (line 5): is a block, not an argument",
        "t.a.enable_x (line 6): deprecated",
        "t.a.rule.idd (line 13): unknown argument",
        "t.a.size (line 16): is an argument, not a block",
        "t.a: required argument name is missing",
    ]
    assert problems(parse('resource "t" "d" {\n  name = "x"\n}\n')[0], schema, "t.d") == [
        "t.d: required block settings is missing"
    ]
    good = 'resource "t" "b" {\n  name = "x"\n  settings {\n    tier = "${var.x}-{y}"\n  }\n}\n'
    assert problems(parse(good)[0], schema, "t.b") == []
    twice = 'resource "t" "c" {\n  name = "x"\n  settings {\n    tier = "a"\n  }\n  settings {\n    tier = "b"\n  }\n}\n'
    assert problems(parse(twice)[0], schema, "t.c") == ["t.c.settings (line 6): at most one such block"]


def test_the_parser_skips_expressions_it_cannot_mistake_for_structure() -> None:
    text = """
locals {
  a = { for k, v in var.m : k => "${v}}{" if v != "}" }  # } in strings and comments
  b = <<-EOT
    name = "not an argument"
    }
  EOT
  c = [
    1, /* } */ 2,
  ]
}
"""
    (block,) = parse(text)
    assert set(block.attrs) == {"a", "b", "c"} and block.blocks == []
    with pytest.raises(HclError):
        parse('resource "x" "y" {\n  a = "open\n}\n')
