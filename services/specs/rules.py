"""Everything CreateSpec/UpdateSpec check without the database, in one pure function.

:func:`write_violations` is the spec service's validation (shapes, limits, names, URLs,
secrets: :mod:`services.specs.validation`) plus the one rule set of the Spec's cloud
(:mod:`alethia.mapping.rules`, the same function the mapper runs as its guard), applied
to the snapshot the Spec would freeze into. So a Spec that is accepted here is a Spec
that maps and plans; a problem is reported once, by the first of the two that finds it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from alethia import spec_schema
from alethia.errors import FieldViolation, InvalidArgument
from alethia.mapping.rules import snapshot_violations
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2
from services.specs.validation import validate_spec


def would_be_snapshot(
    spec: Mapping[str, Any], provider: str, account_id: str, message: specs_pb2.Spec | None = None
) -> dict[str, Any] | None:
    """The snapshot the Spec dict would freeze into on ``provider`` (None if it is not a Spec).

    ``message``: the Spec as received, when ``spec`` is its dict (``spec_to_dict`` and
    ``apply_defaults``): the snapshot is then frozen from a copy of it instead of from the
    dict converted back, which builds the same snapshot (the declared defaults are the
    snapshot's defaults of unset fields) at two thirds of the CPU. The dict's conversion
    refuses exactly the non-finite numbers (in a ``double`` field or a Struct), so those
    give None here too.
    """
    if message is None:
        data = {k: v for k, v in spec.items() if k not in spec_schema.OUTPUT_ONLY_FIELDS}
        data.update(provider=provider, cloud_account_id=account_id)
        try:
            return spec_schema.build_snapshot(spec_from_dict(data))
        except InvalidArgument:
            return None
    copy = specs_pb2.Spec()
    copy.CopyFrom(message)
    for name in spec_schema.OUTPUT_ONLY_FIELDS:
        copy.ClearField(name)
    copy.provider, copy.cloud_account_id = provider, account_id
    try:
        snapshot = spec_schema.build_snapshot(copy)  # a Struct's NaN or infinity: ValueError
        json.dumps(snapshot, allow_nan=False)  # a double field's: ValueError
    except ValueError:
        return None
    return snapshot


def _covered(path: str, reported: set[str]) -> bool:
    """Whether ``path`` or a field containing it was already reported."""
    return any(path == r or path.startswith((r + ".", r + "[")) for r in reported)


def write_violations(
    spec: Mapping[str, Any],
    provider: str | None,
    account_id: str = "",
    allowed_git_hosts: Collection[str] | None = None,
    message: specs_pb2.Spec | None = None,
) -> list[FieldViolation]:
    """Every violation of a Spec dict about to be written for a cloud identity of ``provider``.

    ``provider`` is ``None`` when the identity is unknown: the cloud's rules cannot apply then.
    ``allowed_git_hosts``: the platform's repository hosts (see ``validate_spec``).
    ``message``: the Spec as received, if ``spec`` is its dict (see :func:`would_be_snapshot`).
    """
    out = validate_spec(spec, provider, allowed_git_hosts)
    if provider is None:
        return out
    snapshot = would_be_snapshot(spec, provider, account_id, message)
    if snapshot is None:
        return out
    reported = {v.field for v in out}
    for v in snapshot_violations(snapshot):
        # The rules ran on the snapshot (lists in their one order): name the item as sent.
        field = spec_schema.path_in_request(v.field, spec)
        if not _covered(field, reported):
            out.append(FieldViolation(field, v.description))
    return out
