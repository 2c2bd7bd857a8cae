"""Stage 4: SpecConfig -> terraform.tfvars.json for AWS, GCP and Azure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from alethia.errors import InvalidArgument
from alethia.mapping import providers
from alethia.mapping.core import OPTION_CONTAINERS
from alethia.mapping.render import render_tfvars
from alethia.rpc.structs import dict_to_struct, struct_to_dict
from tests.mapper.snapshots import KINDS, PROVIDERS, snapshot, tfvars_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _render(data: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(render_tfvars(json.dumps(data)).tfvars_json)
    assert isinstance(out, dict)
    return out


def _violations(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        render_tfvars(json.dumps(data))
    return {v.field: v.description for v in info.value.violations}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_golden(provider: str, kind: str) -> None:
    rendered = render_tfvars(json.dumps(snapshot(provider, kind)))
    assert rendered.provider == provider
    assert rendered.template == provider
    expected = tfvars_path(provider, kind).read_text(encoding="utf-8")
    assert rendered.tfvars_json == expected, "regenerate with: python -m tests.mapper.snapshots --regen"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_output_is_canonical_and_independent_of_input_formatting(provider: str) -> None:
    data = snapshot(provider)
    a = render_tfvars(json.dumps(data)).tfvars_json
    # Same snapshot, other key order and whitespace, and numbers as protobuf Struct doubles.
    reordered = dict(reversed(list(data.items())))
    b = render_tfvars(json.dumps(reordered, indent=4)).tfvars_json
    via_struct = struct_to_dict(dict_to_struct(data))
    c = render_tfvars(via_struct).tfvars_json
    assert a == b == c
    assert a.endswith("}\n") and a.isascii()
    assert a == json.dumps(json.loads(a), sort_keys=True, separators=(",", ":")) + "\n"


# The variable names docs/mapping.md fixes.
SEED_NAMES = {
    "aws": {
        "project_name", "region", "aws_account_id", "provision_vpc", "vpc_cidr", "eks_cluster_version",
        "eks_instance_types", "rds_config", "redis_instance_type", "sqs_queues", "sns_topics",
        "ddb_table_configuration", "bucket_configuration",
    },
    "gcp": {
        "project_name", "region", "project_id", "provision_network", "network_cidr", "gke_cluster_version",
        "gke_instance_types", "cloud_sql_engine", "memorystore_instance_type", "pubsub_topics",
        "firestore_databases", "cloud_storage_buckets",
    },
    "azure": {
        "project_name", "location", "subscription_id", "provision_vnet", "vnet_cidr", "aks_cluster_version",
        "aks_instance_types", "azure_db_engine", "azure_cache_sku", "service_bus_queues",
        "service_bus_topics", "cosmos_db_collections", "storage_containers",
    },
}  # fmt: skip


@pytest.mark.parametrize("provider", PROVIDERS)
def test_seed_table_names_and_values(provider: str) -> None:
    data = snapshot(provider)
    out = _render(data)
    assert SEED_NAMES[provider] <= set(out)
    region = {"aws": "region", "gcp": "region", "azure": "location"}[provider]
    account = {"aws": "aws_account_id", "gcp": "project_id", "azure": "subscription_id"}[provider]
    prefix = {"aws": "eks", "gcp": "gke", "azure": "aks"}[provider]
    provision = {"aws": "provision_vpc", "gcp": "provision_network", "azure": "provision_vnet"}[provider]
    cidr = {"aws": "vpc_cidr", "gcp": "network_cidr", "azure": "vnet_cidr"}[provider]
    assert out["project_name"] == data["project_name"]
    assert out[region] == data["region"]
    assert out[account] == data["cloud_account_id"]
    assert out[provision] is True
    assert out[cidr] == data["network"]["cidr_block"]
    assert out[f"{prefix}_cluster_version"] == data["cluster"]["cluster_version"]
    assert out[f"{prefix}_instance_types"] == data["cluster"]["instance_types"]
    for size in ("min", "max", "desired"):
        assert out[f"{prefix}_node_{size}_size"] == data["cluster"][f"node_{size}_size"]
    assert out[f"{prefix}_cluster_admins"] == data["cluster"]["cluster_admins"]
    assert out["domain_name"] == data["dns"]["domain_name"]
    assert out["dns_enabled"] is True
    assert out["spec_id"] == data["spec_id"] and out["tenant_zone_id"] == data["zone_id"]
    tags = out["labels" if provider == "gcp" else "tags"]
    assert tags["project"] == data["project_name"] and tags["environment"] == data["environment"]


def test_first_item_single_values_and_whole_lists() -> None:
    aws, gcp, azure = (snapshot(p) for p in PROVIDERS)
    out = _render(aws)
    assert out["redis_instance_type"] == aws["caches"][0]["node_type"]
    assert [d["name"] for d in out["rds_config"]] == [d["name"] for d in aws["databases"]]
    ledger = out["rds_config"][0]
    assert ledger["min_capacity"] == 0.5 and ledger["max_capacity"] == 8 and ledger["multi_az"] is True
    assert out["rds_config"][1]["multi_az"] is False  # default filled in
    out = _render(gcp)
    assert out["cloud_sql_engine"] == gcp["databases"][0]["engine"]
    assert out["memorystore_instance_type"] == gcp["caches"][0]["node_type"]
    assert {d["database_version"] for d in out["cloud_sql_databases"]} == {"MYSQL_8_0", "POSTGRES_16"}
    out = _render(azure)
    assert out["azure_db_engine"] == azure["databases"][0]["engine"]
    assert out["azure_cache_sku"] == azure["caches"][0]["node_type"]
    cache = out["azure_redis_caches"][0]
    assert (cache["sku_name"], cache["family"], cache["capacity"]) == ("Standard", "C", 1)
    assert out["resource_group_name"] == "rg-portal-dev"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_minimal_spec_passes_the_existing_network_and_empty_single_values(provider: str) -> None:
    data = snapshot(provider, "minimal")
    out = _render(data)
    existing = {"aws": "existing_vpc_id", "gcp": "existing_network_id", "azure": "existing_vnet_id"}[provider]
    assert out[existing] == data["network"]["network_id"]
    single = {"aws": "redis_instance_type", "gcp": "cloud_sql_engine", "azure": "azure_db_engine"}[provider]
    assert out[single] == ""
    lists = [
        k
        for k, v in out.items()
        if isinstance(v, list) and not k.endswith(("instance_types", "_rules", "_sets", "addons", "admins"))
    ]
    assert lists and all(out[k] == [] for k in lists)


def test_gcp_queues_become_pubsub_topics_with_a_pull_subscription() -> None:
    data = snapshot("gcp")
    out = _render(data)
    by_name = {t["name"]: t for t in out["pubsub_topics"]}
    assert set(by_name) == {q["name"] for q in data["queues"]} | {t["name"] for t in data["topics"]}
    ingest = by_name["ingest"]
    assert ingest["kind"] == "queue"
    assert ingest["subscriptions"] == [
        {
            "name": "ingest-pull",
            "type": "pull",
            "push_endpoint": "",
            "ack_deadline_seconds": 60,
            "max_delivery_attempts": 5,
        }
    ]
    assert by_name["events"]["kind"] == "topic"
    assert [s["type"] for s in by_name["events"]["subscriptions"]] == ["pull", "push"]
    data["topics"][0]["name"] = "ingest"
    assert _violations(data) == {
        "queues[1].name": "same name as topics[0]; on gcp both become Pub/Sub topics"
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_git_access_token_never_reaches_tfvars(provider: str) -> None:
    data = snapshot(provider)
    data["git_access_token"] = "ghp_SHOULDNEVERAPPEAR0123456789abcdef"
    text = render_tfvars(json.dumps(data)).tfvars_json
    assert "SHOULDNEVERAPPEAR" not in text
    assert "git_access_token" not in text


@pytest.mark.parametrize(
    ("provider", "component", "key"),
    [
        ("aws", "dns", "wafx"),
        ("aws", "cluster", "release_channel"),  # a GCP option is not an AWS one
        ("gcp", "network", "availability_zones"),
        ("gcp", "dns", "waf_managed_rules"),
        ("azure", "cluster", "capacity_type"),
        ("azure", "dns", "waf_preconfigured_rules"),
    ],
)
def test_unknown_provider_config_key_is_an_error_naming_it(provider: str, component: str, key: str) -> None:
    data = snapshot(provider)
    data[component]["provider_config"][key] = True
    found = _violations(data)
    assert list(found) == [f"{component}.provider_config.{key}"]
    assert found[f"{component}.provider_config.{key}"].startswith(f"unknown key for {provider} (accepted: ")


def test_option_values_are_checked_per_item() -> None:
    data = snapshot("aws")
    data["databases"][1]["provider_config"]["backup_retention_days"] = 9  # a field now, not an option
    data["databases"][0]["provider_config"]["multi_az"] = "yes"
    data["queues"][0]["config"]["fifo"] = 1
    data["queues"][1]["config"]["colour"] = "red"
    data["nosql_tables"][0]["provider_config"]["billing_mode"] = "FREE"
    data["cluster"]["provider_config"]["disk_size"] = 20.5
    data["dns"]["provider_config"]["waf_managed_rules"] = "AWSManagedRulesCommonRuleSet"
    data["databases"][0]["engine"] = "oracle-ee"
    data["topics"][0]["subscriptions"][0]["protocol"] = "pull"
    found = _violations(data)
    assert found == {
        "cluster.provider_config.disk_size": "expected an integer",
        "dns.provider_config.waf_managed_rules": "expected a list of strings",
        "databases[0].provider_config.multi_az": "expected true or false",
        "databases[1].provider_config.backup_retention_days": found[
            "databases[1].provider_config.backup_retention_days"
        ],
        "queues[0].config.fifo": "expected true or false",
        "queues[1].config.colour": found["queues[1].config.colour"],
        "nosql_tables[0].provider_config.billing_mode": "must be one of PAY_PER_REQUEST, PROVISIONED",
        "databases[0].engine": "must be one of aurora-mysql, aurora-postgresql, mariadb, mysql, postgres",
        "topics[0].subscriptions[0].protocol": found["topics[0].subscriptions[0].protocol"],
    }
    assert found["queues[1].config.colour"].startswith("unknown key for aws")
    assert found["topics[0].subscriptions[0].protocol"].startswith("must be one of ")


def test_provider_specific_rules() -> None:
    azure = snapshot("azure")
    azure["caches"][0]["node_type"] = "cache.t4g.small"
    azure["queues"][0]["config"]["lock_duration"] = "60s"
    azure["topics"][0]["subscriptions"][0]["endpoint"] = "no-such-queue"
    assert _violations(azure) == {
        "caches[0].node_type": "must be an Azure Cache SKU such as Standard_C1 or Premium_P1",
        "queues[0].config.lock_duration": "must be an ISO 8601 duration such as PT1M or P14D",
        "topics[0].subscriptions[0].endpoint": "must be empty or the name of a queue of this Spec (forwarding)",
    }
    gcp = snapshot("gcp")
    gcp["topics"][0]["subscriptions"][1]["endpoint"] = "http://insecure.example.com"
    gcp["databases"][0]["engine"] = "aurora-postgresql"
    assert _violations(gcp) == {
        "databases[0].engine": "must be one of mysql, postgres, sqlserver",
        "topics[0].subscriptions[1].endpoint": "a push subscription needs an https:// endpoint",
    }


def test_values_are_data_even_when_they_look_like_terraform() -> None:
    data = snapshot("aws")
    data["secrets"][0]["metadata"]["description"] = '${file("/etc/passwd")}'
    out = _render(data)
    assert out["secrets_manager_secrets"][0]["metadata"]["description"] == '${file("/etc/passwd")}'


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_option_is_mapped_and_every_mapped_option_is_declared(provider: str) -> None:
    mapping = providers.get(provider)
    rows = {r.spec_field for r in mapping.rows()}
    sources = " ".join(rows)
    for container, _, _ in OPTION_CONTAINERS:
        for opt in mapping.options.get(container, ()):
            # e.g. "databases[].provider_config.multi_az" or "queues[].config.ack_deadline_seconds"
            assert f"{container}.{opt.key}" in sources, f"{container}.{opt.key} accepted but never mapped"
    declared = {f"{c}.{o.key}" for c, opts in mapping.options.items() for o in opts}
    for field in rows:
        for part in field.split(", "):
            if ".provider_config." in part or ".config." in part:
                assert part in declared, f"{part} mapped but not an accepted option"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_examples_of_the_spec_service_map_cleanly(provider: str) -> None:
    """The full examples users start from (examples/<provider>.yaml) must map without error."""
    data = yaml.safe_load((EXAMPLES / f"{provider}.yaml").read_text(encoding="utf-8"))
    data.update(provider=provider, cloud_account_id="acct-1", cloud_identity_id="ci-1")
    out = _render(data)
    assert out["project_name"] == data["project_name"]


def test_provider_must_be_known() -> None:
    with pytest.raises(InvalidArgument) as info:
        providers.get("ibm")
    assert info.value.violations[0].field == "provider"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_snapshots_of_the_snapshot_service_map(provider: str) -> None:
    """Contract with stage 2: what services/snapshot freezes from a Spec, the mapper reads."""
    from alethia.specfile import spec_from_dict
    from services.snapshot.snapshot import build_snapshot

    data = yaml.safe_load((EXAMPLES / f"{provider}.yaml").read_text(encoding="utf-8"))
    spec = spec_from_dict(data)
    spec.provider, spec.cloud_account_id, spec.id = provider, "acct-1", "spec-1"
    frozen = build_snapshot(spec)
    rendered = render_tfvars(json.dumps(frozen))
    assert rendered.provider == provider
    assert json.loads(rendered.tfvars_json)["spec_id"] == "spec-1"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            '"lifecycle_days": 90',
            '"lifecycle_days": NaN',
            "storage_buckets[0].provider_config.lifecycle_days",
        ),
        ('"rotation_days": 90', '"rotation_days": Infinity', "secrets[1].metadata.rotation_days"),
        ('"max_capacity": 8', '"max_capacity": -Infinity', ""),
    ],
)
def test_non_finite_numbers_are_refused_wherever_they_hide(old: str, new: str, field: str) -> None:
    text = json.dumps(snapshot("aws"), indent=1).replace(old, new)
    assert new in text
    with pytest.raises(InvalidArgument) as info:
        render_tfvars(text)
    assert [v.field for v in info.value.violations] == [field]


def test_cloud_name_limits_are_reported_on_the_spec_field() -> None:
    gcp = snapshot("gcp")
    gcp["project_name"] = "analytics-platform-core-datas"  # 29 + len("-staging-gke") = 41
    assert _violations(gcp) == {
        "project_name": "makes the GKE cluster name 'analytics-platform-core-datas-staging-gke' "
        "41 characters long; at most 40",
        "caches[0].name": "makes the Memorystore instance id 'analytics-platform-core-datas-staging-dashboards' "
        "48 characters long; at most 40",
    }
    aws = snapshot("aws")
    aws["storage_buckets"][0]["name"] = "x" * 50
    assert list(_violations(aws)) == ["storage_buckets[0].name"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_backup_retention_days_reaches_every_cloud(provider: str) -> None:
    """``databases[].backup_retention_days`` (default 7, 0..35) is mapped on all three clouds."""
    data = snapshot(provider)
    data["databases"][0]["backup_retention_days"] = 21
    del data["databases"][1]["backup_retention_days"]  # absent: the declared default
    tfvars = json.loads(render_tfvars(json.dumps(data)).tfvars_json)
    var = {"aws": "rds_config", "gcp": "cloud_sql_databases", "azure": "azure_databases"}[provider]
    by_name = {d["name"]: d["backup_retention_days"] for d in tfvars[var]}
    assert by_name == {data["databases"][0]["name"]: 21, data["databases"][1]["name"]: 7}


def test_backup_retention_days_bounds_per_cloud() -> None:
    data = snapshot("aws")
    data["databases"][1]["backup_retention_days"] = 36
    assert _violations(data) == {"databases[1].backup_retention_days": "must be at most 35"}
    # 0 is in the declared range, but every cloud's template keeps automated backups on.
    for provider, index in (("aws", 1), ("gcp", 0), ("azure", 0)):
        data = snapshot(provider)
        data["databases"][index]["backup_retention_days"] = 0
        found = _violations(data)
        assert list(found) == [f"databases[{index}].backup_retention_days"]
        assert found[f"databases[{index}].backup_retention_days"].startswith(
            f"must be at least 1 on {provider}"
        )
        data["databases"][index]["backup_retention_days"] = 1
        render_tfvars(json.dumps(data))


# Values around every kind of option: types, bounds, integral floats, lists, choices.
_PROBES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    20,
    49,
    50,
    900,
    901,
    43200,
    43201,
    10**6,
    2.0,
    2.5,
    -0.5,
    "",
    "x",
    "ON_DEMAND",
    "SPOT",
    "PAY_PER_REQUEST",
    [],
    ["a"],
    ["a", 1],
    [None],
    {},
    {"a": 1},
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_fast_option_test_never_accepts_what_check_refuses(provider: str) -> None:
    """``Option.accepts`` is only a shortcut: whatever it passes, ``check`` passes too."""
    mapping = providers.get(provider)
    options = [o for group in mapping.options.values() for o in group]
    probes = _PROBES + [v for o in options for v in (o.default, o.minimum, o.maximum, *o.choices)]
    passed = 0
    for option in options:
        for value in probes:
            if option.accepts(value):
                passed += 1
                assert option.check(value) is None, (option.key, value)
    assert passed > len(options)  # the shortcut is taken, not only safe


def test_huge_numbers_and_trailing_newlines_are_field_errors() -> None:
    """``10**400`` once raised OverflowError inside the rules; ``"shop\\n"`` passed a ``$``-anchored label."""
    data = snapshot("aws")
    data["cluster"]["provider_config"]["disk_size"] = 10**400
    data["project_name"] = data["project_name"] + "\n"
    found = _violations(data)
    assert found["cluster.provider_config.disk_size"].startswith("must be at most")
    assert "project_name" in found
