"""Spec documents for the benchmarks: the full AWS example, and the same grown to N components.

Components are the list items of a Spec (databases, caches, queues, topics, NoSQL tables,
buckets, secrets). :func:`spec_with_components` fills them round-robin from the example's
own items, so every generated Spec is as valid as the example and maps to the same
Terraform resources, only more of them.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COMPONENT_LISTS = (
    "databases",
    "caches",
    "queues",
    "topics",
    "nosql_tables",
    "storage_buckets",
    "secrets",
)


@functools.cache
def _example(provider: str) -> dict[str, Any]:
    with (EXAMPLES / f"{provider}.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def full_spec(project: str, identity_id: str, provider: str = "aws") -> dict[str, Any]:
    """The full example Spec (every table filled) in workspace ``project``."""
    data = copy.deepcopy(_example(provider))
    data["project_name"] = project
    data["cloud_identity_id"] = identity_id
    for repo in data.get("repositories") or []:
        repo["path"] = f"clusters/{project}"  # a GitOps path has one owner
    return data


def component_count(spec: dict[str, Any]) -> int:
    """How many list components a Spec has."""
    return sum(len(spec.get(k) or []) for k in COMPONENT_LISTS)


def spec_with_components(project: str, identity_id: str, n: int, provider: str = "aws") -> dict[str, Any]:
    """The full example with exactly ``n`` list components (at most 50 per list: 350 in all)."""
    base = _example(provider)
    data = full_spec(project, identity_id, provider)
    counts = dict.fromkeys(COMPONENT_LISTS, 0)
    kinds = [k for k in COMPONENT_LISTS if base.get(k)]
    for i in range(n):
        counts[kinds[i % len(kinds)]] += 1
    for kind in COMPONENT_LISTS:
        items = base.get(kind) or []
        out = []
        for j in range(counts[kind]):
            item = copy.deepcopy(items[j % len(items)])
            if j >= len(items):
                item["name"] = f"{item['name'][:50]}-{j}"
            out.append(item)
        data[kind] = out
    return data
