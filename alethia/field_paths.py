"""The one field-path format of the pipeline (docs/architecture.md, "Field paths").

A path names one field of a document: proto field names joined by ``.``, list items by
their position ``[i]`` from 0 (``databases[1].engine``,
``topics[0].subscriptions[2].endpoint``). The empty path is the document itself.
CreateSpec/UpdateSpec errors, Spec-file errors, mapper errors and the stale-plan
refusal all build their paths here, so a Console can put any message next to the input
that caused it whichever stage found the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\.")


def join(path: str, key: str) -> str:
    """``path`` followed by the field ``key`` (``network`` + ``cidr_block``)."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """The ``index``-th item of the list at ``path`` (``databases`` + 1 -> ``databases[1]``)."""
    return f"{path}[{index}]"


def from_parts(parts: Iterable[str | int]) -> str:
    """``("databases", 1, "engine")`` -> ``databases[1].engine``."""
    out = ""
    for part in parts:
        out = item(out, part) if isinstance(part, int) else join(out, part)
    return out


def parse(path: str) -> list[str | int]:
    """``databases[1].engine`` -> ``["databases", 1, "engine"]`` (the inverse of :func:`from_parts`).

    Raises ``ValueError`` for text that is not a path in this format.
    """
    parts: list[str | int] = []
    pos = 0
    expect_name = True
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise ValueError(f"not a field path: {path!r}")
        if m.group(1) is not None:
            if not expect_name:
                raise ValueError(f"not a field path: {path!r}")
            parts.append(m.group(1))
            expect_name = False
        elif m.group(2) is not None:
            if expect_name and parts:
                raise ValueError(f"not a field path: {path!r}")
            parts.append(int(m.group(2)))
        else:
            if expect_name:
                raise ValueError(f"not a field path: {path!r}")
            expect_name = True
        pos = m.end()
    if expect_name and parts:
        raise ValueError(f"not a field path: {path!r}")
    return parts
