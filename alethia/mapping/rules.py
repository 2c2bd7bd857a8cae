"""The one rule set that decides whether a Spec can be provisioned on its cloud.

The spec service enforces it at write time (CreateSpec/UpdateSpec, with field paths) and
the mapper runs the very same function as its guard before rendering, so a Spec that was
accepted is a Spec that maps. It covers: the snapshot's types and declared bounds
(generated from the Spec declaration), cross-field rules, each cloud's accepted
``provider_config`` keys and value types, database engines per cloud, instance and node
type shapes, cloud name limits, and the Terraform version-constraint grammar the
executor accepts (:mod:`alethia.terraform_versions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alethia.errors import FieldViolation, InvalidArgument
from alethia.mapping import providers
from alethia.mapping.spec_config import Data, decode_snapshot_data, semantic_violations


def spec_violations(spec: Data) -> list[FieldViolation]:
    """Every rule the Spec's cloud applies to a well-typed Spec (as data), each by its field path.

    ``spec``: :func:`~alethia.mapping.spec_config.decode_snapshot_data` (or a SpecConfig's
    ``model_dump()``); it is only read.
    """
    return semantic_violations(spec) + providers.get(spec["provider"]).violations(spec)


def snapshot_violations(snapshot: str | bytes | Mapping[str, Any]) -> list[FieldViolation]:
    """Every violation of a snapshot (types first: rules run only on a well-typed one)."""
    try:
        spec = decode_snapshot_data(snapshot)
    except InvalidArgument as exc:
        return list(exc.violations)
    return spec_violations(spec)
