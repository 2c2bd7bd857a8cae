"""The change summary of a plan, from ``terraform show -json`` (pure).

Counts follow Terraform's own: a replace (``["delete", "create"]`` or the reverse) counts
once as an add and once as a destroy; ``read`` and ``no-op`` are listed but not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceChange:
    address: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class ChangeSummary:
    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: tuple[ResourceChange, ...] = field(default_factory=tuple)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)


def summarize_plan(plan: dict[str, Any]) -> ChangeSummary:
    """Count adds/changes/destroys and list every resource with its actions, by address."""
    add = change = destroy = 0
    resources: list[ResourceChange] = []
    for rc in plan.get("resource_changes") or []:
        actions = tuple(str(a) for a in (rc.get("change") or {}).get("actions") or ())
        address = str(rc.get("address", ""))
        if rc.get("mode") == "data" and actions in (("read",), ("no-op",)):
            continue  # data sources are re-read on every plan; not a change to the infrastructure
        if "create" in actions:
            add += 1
        if "delete" in actions:
            destroy += 1
        if "update" in actions:
            change += 1
        resources.append(ResourceChange(address, actions))
    resources.sort(key=lambda r: r.address)
    return ChangeSummary(add, change, destroy, tuple(resources))
