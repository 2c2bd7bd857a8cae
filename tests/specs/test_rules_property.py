"""Property: every Spec that CreateSpec accepts renders and passes the executor's checks.

Specs are drawn per cloud from the example Spec with a few fields replaced by values from
pools that mix what the cloud accepts with what another cloud (or nobody) accepts:
engines, node types, provider_config keys and values, Terraform version constraints,
sizes and name lengths. Whatever :func:`services.specs.rules.write_violations` (the
checks CreateSpec runs before writing) lets through must map to tfvars with exactly the
variables the cloud's templates declare, with a constraint the executor can parse. What it
refuses, it refuses by a path that exists in the Spec as sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alethia import field_paths, spec_schema
from alethia.mapping import providers
from alethia.mapping.render import render_tfvars
from alethia.specfile import spec_from_dict, spec_to_dict
from alethia.terraform_versions import parse_constraints
from services.specs.rules import would_be_snapshot, write_violations
from tests.fixtures.specs import ACCOUNT_IDS, PROVIDERS, full_spec_dict

IDENTITY_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

ENGINES = sorted({e for m in providers.REGISTRY.values() for e in m.engines} | {"oracle-ee"})
NODE_TYPES = ["cache.t4g.small", "BASIC", "STANDARD_HA", "Standard_C1", "Premium_P1", "Basic_C0", "m5"]
CONSTRAINTS = ["", ">= 1.5", "~> 1.9", ">= 1.5, < 2.0", "1.9.8", "==1.9.*", "1.9.*", "latest", "~= 1.9"]
OPTION_KEYS = {
    container: sorted({o.key for m in providers.REGISTRY.values() for o in m.options.get(container, ())})
    for container in ("cluster.provider_config", "databases[].provider_config", "caches[].provider_config")
}
OPTION_VALUES = st.one_of(
    st.booleans(), st.integers(-5, 5000), st.sampled_from(["", "REGIONAL", "ZONAL", "Standard", "x"])
)
LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,40}[a-z0-9]", fullmatch=True)


def _stored(data: dict[str, Any]) -> dict[str, Any]:
    """The dict the service checks: the Spec after the protobuf round trip."""
    return spec_to_dict(spec_from_dict(data), include_output_only=False)


@st.composite
def specs(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    """The example Spec of ``provider`` with, each with a chance of one in four, a field replaced."""
    data = full_spec_dict(provider, cloud_identity_id=IDENTITY_ID)

    def sometimes() -> bool:
        return draw(st.integers(0, 3)) == 0

    if sometimes():
        data["terraform_version"] = draw(st.sampled_from(CONSTRAINTS))
    if sometimes():
        data["project_name"] = draw(LABEL)
    cluster = data["cluster"]
    if sometimes():
        cluster["node_min_size"] = draw(st.integers(-1, 4))
        cluster["node_max_size"] = draw(st.integers(0, 1200))
        cluster["node_desired_size"] = draw(st.integers(0, 6))
    if sometimes():
        key = draw(st.sampled_from(OPTION_KEYS["cluster.provider_config"]))
        cluster["provider_config"][key] = draw(OPTION_VALUES)
    for db in data["databases"]:
        if sometimes():
            db["engine"] = draw(st.sampled_from(ENGINES))
        if sometimes():
            db["storage_gb"] = draw(st.integers(0, 70_000))
        if sometimes():
            db["backup_retention_days"] = draw(st.integers(-2, 40))
        if sometimes():
            key = draw(st.sampled_from(OPTION_KEYS["databases[].provider_config"]))
            db.setdefault("provider_config", {})[key] = draw(OPTION_VALUES)
    for cache in data["caches"]:
        if sometimes():
            cache["node_type"] = draw(st.sampled_from(NODE_TYPES))
        if sometimes():
            cache["cluster_size"] = draw(st.integers(0, 120))
    for bucket in data["storage_buckets"]:
        if sometimes():
            bucket["name"] = draw(LABEL)
    return _stored(data)


def _resolves(path: str, data: dict[str, Any]) -> bool:
    node: Any = data
    for part in field_paths.parse(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
            node = node[part]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return isinstance(node, dict)  # a key that should not be there is still named by its parent
    return True


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_spec_create_accepts_renders_and_passes_the_executor_checks(
    provider: str, data: st.DataObject
) -> None:
    stored = data.draw(specs(provider))
    spec = spec_schema.apply_defaults(stored)
    violations = write_violations(spec, provider, ACCOUNT_IDS[provider])
    # CreateSpec freezes the message as received: the same snapshot, so the same answer.
    message = spec_from_dict(stored)
    assert would_be_snapshot(spec, provider, ACCOUNT_IDS[provider], message) == would_be_snapshot(
        spec, provider, ACCOUNT_IDS[provider]
    )
    assert write_violations(spec, provider, ACCOUNT_IDS[provider], message=message) == violations
    if violations:
        for v in violations:
            assert _resolves(v.field, spec), v
        return
    snapshot = would_be_snapshot(spec, provider, ACCOUNT_IDS[provider])
    assert snapshot is not None
    rendered = render_tfvars(json.dumps(snapshot))  # raises InvalidArgument if the mapper refuses
    tfvars = json.loads(rendered.tfvars_json)
    assert set(tfvars) == {v.name for v in providers.get(provider).variables}
    if spec["terraform_version"]:
        parse_constraints(spec["terraform_version"])  # the executor's own parser


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_examples_are_accepted_so_the_property_is_not_vacuous(provider: str) -> None:
    spec = spec_schema.apply_defaults(_stored(full_spec_dict(provider, cloud_identity_id=IDENTITY_ID)))
    assert write_violations(spec, provider, ACCOUNT_IDS[provider]) == []
