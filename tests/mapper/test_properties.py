"""Property tests: any valid SpecConfig maps without error, deterministically, to JSON whose
keys are exactly the variables the provider declares."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alethia.cloud_limits import AZURE_POSTGRES_STORAGE_GB
from alethia.mapping import providers
from alethia.mapping.render import render_tfvars

LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
TEXT = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
ANY_TEXT = st.text(max_size=20)

ENGINES = {
    "aws": ["postgres", "aurora-postgresql", "mysql"],
    "gcp": ["postgres", "mysql"],
    "azure": ["postgres", "mysql"],
}
CACHE_TYPES = {
    "aws": ["cache.t4g.small"],
    "gcp": ["BASIC", "STANDARD_HA"],
    "azure": ["Standard_C1", "Basic_C0"],
}
PROTOCOLS = {"aws": ["sqs", "https", "email"], "gcp": ["pull"], "azure": ["servicebus"]}


def _named(draw: st.DrawFn, make: Any, max_size: int = 3) -> list[dict[str, Any]]:
    names = draw(st.lists(LABEL, max_size=max_size, unique=True))
    return [make(draw, name) for name in sorted(names)]


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(["aws", "gcp", "azure"]))
    lo = draw(st.integers(0, 5))
    hi = draw(st.integers(max(lo, 1), 20))
    provision = draw(st.booleans())
    dns_on = draw(st.booleans())

    def database(d: st.DrawFn, name: str) -> dict[str, Any]:
        mn = d(st.floats(0, 64, allow_nan=False))
        return {
            "name": name,
            "engine": d(st.sampled_from(ENGINES[provider])),
            "engine_version": d(st.sampled_from(["16", "8.0", "15.4"])),
            "instance_class": d(TEXT),
            # Azure PostgreSQL takes fixed sizes only (alethia.cloud_limits).
            "storage_gb": d(
                st.sampled_from(AZURE_POSTGRES_STORAGE_GB) if provider == "azure" else st.integers(20, 10_000)
            ),
            "scaling": {"min_capacity": mn, "max_capacity": mn + d(st.floats(0, 64, allow_nan=False))},
            "provider_config": {},
        }

    def cache(d: st.DrawFn, name: str) -> dict[str, Any]:
        node = d(st.sampled_from(CACHE_TYPES[provider]))
        return {"name": name, "node_type": node, "cluster_size": 1, "provider_config": {}}

    def topic(d: st.DrawFn, name: str) -> dict[str, Any]:
        subs = _named(
            d,
            lambda d2, n: {
                "name": n,
                "protocol": d2(st.sampled_from(PROTOCOLS[provider])),
                "endpoint": "x" if provider == "aws" else "",
            },
        )
        return {"name": name, "subscriptions": subs}

    queues = _named(draw, lambda d, n: {"name": n, "config": {}})
    topics = _named(draw, topic)
    if provider == "gcp":  # queues and topics share one namespace on GCP
        qn = {q["name"] for q in queues}
        topics = [t for t in topics if t["name"] not in qn]
    return {
        "spec_id": draw(ANY_TEXT),
        "zone_id": draw(ANY_TEXT),
        "project_name": draw(LABEL),
        "environment": draw(LABEL),
        "region": draw(TEXT),
        "cloud_identity_id": draw(ANY_TEXT),
        "cloud_account_id": draw(TEXT),
        "terraform_version": "",
        "provider": provider,
        "network": {
            "provision_network": provision,
            "cidr_block": draw(st.sampled_from(["10.0.0.0/16", "192.168.0.0/20"])) if provision else "",
            "network_id": "" if provision else draw(TEXT),
            "provider_config": {},
        },
        "cluster": {
            "cluster_version": "1.34",
            "instance_types": draw(st.lists(TEXT, min_size=1, max_size=3)),
            "node_min_size": lo,
            "node_max_size": hi,
            "node_desired_size": draw(st.integers(lo, hi)),
            "cluster_admins": draw(st.lists(TEXT, max_size=2)),
            "provider_config": {},
        },
        "dns": {
            "enabled": dns_on,
            "zone_id": draw(ANY_TEXT),
            "domain_name": "example.com" if dns_on else draw(ANY_TEXT),
            "provider_config": {},
        },
        "repositories": [{"url": "https://git.example.com/a.git", "branch": "main", "path": draw(ANY_TEXT)}],
        "databases": _named(draw, database),
        "caches": _named(draw, cache),
        "queues": queues,
        "topics": topics,
        "nosql_tables": _named(
            draw,
            lambda d, n: {
                "name": n,
                "partition_key": d(TEXT),
                "sort_key": d(ANY_TEXT),
                "provider_config": {},
            },
        ),
        "storage_buckets": _named(
            draw, lambda d, n: {"name": n, "versioning": d(st.booleans()), "provider_config": {}}
        ),
        "secrets": _named(
            draw,
            lambda d, n: {
                "name": n,
                "metadata": d(
                    st.dictionaries(LABEL, st.one_of(ANY_TEXT, st.integers(), st.booleans()), max_size=2)
                ),
            },
        ),
        "git_access_token": "",
    }


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_any_valid_spec_maps_deterministically(data: dict[str, Any]) -> None:
    text = json.dumps(data)
    first = render_tfvars(text)
    second = render_tfvars(json.dumps(data, indent=1))
    assert first == second
    out = json.loads(first.tfvars_json)
    declared = {v.name for v in providers.get(data["provider"]).variables}
    assert set(out) == declared
    # One object per Spec item, in the Spec's order.
    lists = {"aws": "rds_config", "gcp": "cloud_sql_databases", "azure": "azure_databases"}
    assert [d["name"] for d in out[lists[data["provider"]]]] == [d["name"] for d in data["databases"]]
