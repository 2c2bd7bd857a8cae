"""Terraform version constraints (``">= 1.5, < 2.0"``, ``"~> 1.9"``), checked without I/O.

The syntax is Terraform's own (hashicorp/go-version): comma-separated clauses, each an
operator (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~>``; none means ``=``) and a
version. ``~>`` allows only the right-most given component to grow: ``~> 1.9`` is
``>= 1.9, < 2.0`` and ``~> 1.9.3`` is ``>= 1.9.3, < 1.10.0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLAUSE = re.compile(r"^\s*(~>|>=|<=|!=|=|>|<)?\s*v?(\d+(?:\.\d+){0,2})(?:-([0-9A-Za-z.\-]+))?\s*$")


class ConstraintError(ValueError):
    """The constraint string is not valid Terraform version-constraint syntax."""


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.11.4"`` -> ``(1, 11, 4)``; a pre-release suffix is ignored for ordering."""
    m = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        raise ConstraintError(f"not a version: {text!r}")
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


@dataclass(frozen=True)
class Clause:
    op: str
    version: tuple[int, int, int]
    given: int  # how many components were written (1-3), for ~>

    def allows(self, v: tuple[int, int, int]) -> bool:
        """Whether ``v`` meets this one clause."""
        if self.op == "=":
            return v == self.version
        if self.op == "!=":
            return v != self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        # ~>: at least the version, and every component before the last given one is fixed.
        if v < self.version:
            return False
        fixed = max(self.given - 1, 1)
        return v[:fixed] == self.version[:fixed]


def parse_constraints(text: str) -> list[Clause]:
    """Parse a constraint string into clauses; raises :class:`ConstraintError`."""
    clauses: list[Clause] = []
    for part in text.split(","):
        m = _CLAUSE.match(part)
        if not m:
            raise ConstraintError(f"invalid version constraint {part.strip()!r} in {text!r}")
        op = m.group(1) or "="
        numbers = m.group(2).split(".")
        version = parse_version(m.group(2))
        clauses.append(Clause(op, version, len(numbers)))
    return clauses


def satisfies(version: str, constraint: str) -> bool:
    """Whether Terraform ``version`` meets ``constraint`` (an empty constraint allows any)."""
    if not constraint.strip():
        return True
    v = parse_version(version)
    return all(c.allows(v) for c in parse_constraints(constraint))


def check_constraint(version: str, constraint: str) -> str | None:
    """``None`` when satisfied, else the message a failed job carries (names both sides)."""
    try:
        if satisfies(version, constraint):
            return None
    except ConstraintError as exc:
        return f"terraform_version {constraint!r} is not a valid version constraint: {exc}"
    return (
        f"terraform_version constraint {constraint!r} cannot be satisfied: "
        f"the available Terraform is {version}"
    )
