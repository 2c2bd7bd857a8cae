"""Snapshot test data for the mapper: the golden inputs, and golden outputs.

``golden/<provider>-full.snapshot.json`` holds every component (from the Spec examples, with
a few more options set); ``golden/<provider>-minimal.snapshot.json`` holds no optional
component and an existing network. ``golden/<provider>-<kind>.tfvars.json`` is what the
mapper must produce for them, byte for byte. Regenerate the outputs after an intended
change with ``python -m tests.mapper.snapshots --regen`` and review the diff.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
PROVIDERS = ("aws", "gcp", "azure")
KINDS = ("full", "minimal")


def snapshot_path(provider: str, kind: str) -> Path:
    return GOLDEN / f"{provider}-{kind}.snapshot.json"


def tfvars_path(provider: str, kind: str) -> Path:
    return GOLDEN / f"{provider}-{kind}.tfvars.json"


@functools.cache
def _load(provider: str, kind: str) -> dict[str, Any]:
    data = json.loads(snapshot_path(provider, kind).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def snapshot(provider: str, kind: str = "full") -> dict[str, Any]:
    """A fresh deep copy of a golden snapshot (tests may change it)."""
    return copy.deepcopy(_load(provider, kind))


def regen() -> None:
    """Rewrite the golden tfvars from the current mapper."""
    from alethia.mapping.render import render_tfvars

    for provider in PROVIDERS:
        for kind in KINDS:
            rendered = render_tfvars(snapshot_path(provider, kind).read_bytes())
            tfvars_path(provider, kind).write_text(rendered.tfvars_json, encoding="utf-8")
            print("wrote", tfvars_path(provider, kind))


if __name__ == "__main__":
    if "--regen" not in sys.argv:
        raise SystemExit("usage: python -m tests.mapper.snapshots --regen")
    regen()
