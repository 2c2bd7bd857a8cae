"""Stages 3-4 end to end: snapshot JSON -> SpecConfig -> ``terraform.tfvars.json``.

A pure function of its input (no I/O, no clock): the executor, the gRPC service, the CLI
and the benchmark all call :func:`render_tfvars`. Every problem of a snapshot (types,
cross-field rules, the provider's accepted options) is reported in one
``InvalidArgument``; ``git_access_token`` never reaches the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alethia.errors import InvalidArgument
from alethia.mapping import providers, rules
from alethia.mapping.core import dumps
from alethia.mapping.spec_config import Data, decode_snapshot_data


@dataclass(frozen=True)
class Rendered:
    """What RenderTfvars answers: the cloud, the template directory name and the tfvars."""

    provider: str
    template: str
    tfvars_json: str


def map_spec(spec: Data) -> dict[str, Any]:
    """The tfvars of a well-typed Spec as data (``InvalidArgument`` listing every violation).

    ``spec`` is the caller's own copy (``decode_snapshot_data``): resolve fills it in.
    """
    mapping = providers.get(spec["provider"])
    problems = rules.spec_violations(spec)
    if problems:
        raise InvalidArgument(problems)
    return mapping.tfvars(mapping.resolve(spec))


def render_tfvars(snapshot: str | bytes | Mapping[str, Any]) -> Rendered:
    """Map a snapshot (JSON text or decoded object) to canonical tfvars JSON text."""
    spec = decode_snapshot_data(snapshot)
    mapping = providers.get(spec["provider"])
    return Rendered(mapping.name, mapping.template, dumps(map_spec(spec)))
