"""Bad Specs, one per validation rule: (case id, how to break a valid Spec dict, expected field paths).

Each mutation takes a valid full AWS Spec dict (``cloud_identity_id`` already set) and
breaks exactly one rule; the expected paths must all be among the reported violations.
Shared by the pure validation tests and the gRPC tests (which also check nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (``databases.1.engine``) in the dict."""

    def mutate(d: dict[str, Any]) -> None:
        keys = path.split(".")
        target: Any = d
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        keys = path.split(".")
        target: Any = d
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        del target[keys[-1]]

    return mutate


def _dup(list_key: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        d[list_key].append(dict(d[list_key][0]))

    return mutate


def _many(list_key: str, n: int = 51) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        first = d[list_key][0]
        d[list_key] = [{**first, "name": f"item-{i}"} for i in range(n)]

    return mutate


def _existing_network_without_id(d: dict[str, Any]) -> None:
    d["network"] = {"provision_network": False, "cidr_block": ""}


def _dns_enabled_without_zone(d: dict[str, Any]) -> None:
    d["dns"]["zone_id"] = ""


BAD_SPECS: list[tuple[str, Mutation, list[str]]] = [
    # names
    ("project-uppercase", _set("project_name", "Payments"), ["project_name"]),
    ("project-underscore", _set("project_name", "pay_ments"), ["project_name"]),
    ("project-too-long", _set("project_name", "p" * 64), ["project_name"]),
    ("project-missing", _set("project_name", ""), ["project_name"]),
    ("environment-bad", _set("environment", "-prod"), ["environment"]),
    ("zone-bad", _set("zone_id", "zone/acme"), ["zone_id"]),
    ("database-name-bad", _set("databases.1.name", "Sessions"), ["databases[1].name"]),
    ("database-name-duplicate", _dup("databases"), ["databases[2].name"]),
    ("queue-name-duplicate", _dup("queues"), ["queues[2].name"]),
    ("bucket-name-short", _set("storage_buckets.0.name", "ab"), ["storage_buckets[0].name"]),
    ("subscription-name-duplicate", _set("topics.0.subscriptions.1.name", "ledger-to-payment-events"), ["topics[0].subscriptions[1].name"]),
    # sizes
    ("too-many-databases", _many("databases"), ["databases"]),
    ("too-many-secrets", _many("secrets"), ["secrets"]),
    ("instance-type-too-long", _set("cluster.instance_types", ["m" * 65]), ["cluster.instance_types[0]"]),
    ("provider-config-too-big", _set("network.provider_config", {f"k{i}": "x" * 100 for i in range(200)}), ["network.provider_config"]),
    ("huge-string", _set("cluster.cluster_admins", ["a" * 5000]), ["cluster.cluster_admins[0]"]),
    ("control-char", _set("caches.0.node_type", "cache.t4g\x00.small"), ["caches[0].node_type"]),
    ("control-char-in-config", _set("dns.provider_config", {"waf_enabled": True, "note": "a\nb"}), ["dns.provider_config.note"]),
    ("bidi-override", _set("terraform_version", ">= 1.5\u202e"), ["terraform_version"]),
    # region / identity
    ("region-of-other-provider", _set("region", "europe-west1"), ["region"]),
    ("region-unknown", _set("region", "mars-north-1"), ["region"]),
    ("identity-unknown", _set("cloud_identity_id", "00000000-0000-4000-8000-000000000000"), ["cloud_identity_id"]),
    ("identity-not-an-id", _set("cloud_identity_id", "not-an-id"), ["cloud_identity_id"]),
    ("identity-missing", _set("cloud_identity_id", ""), ["cloud_identity_id"]),
    # network
    ("cidr-host-bits", _set("network.cidr_block", "10.20.0.1/16"), ["network.cidr_block"]),
    ("cidr-prefix-too-small", _set("network.cidr_block", "10.0.0.0/7"), ["network.cidr_block"]),
    ("cidr-prefix-too-large", _set("network.cidr_block", "10.0.0.0/29"), ["network.cidr_block"]),
    ("cidr-not-cidr", _set("network.cidr_block", "banana"), ["network.cidr_block"]),
    ("cidr-ipv6", _set("network.cidr_block", "fd00::/48"), ["network.cidr_block"]),
    ("cidr-missing", _set("network.cidr_block", ""), ["network.cidr_block"]),
    ("network-id-missing", _existing_network_without_id, ["network.network_id"]),
    ("network-missing", _drop("network"), ["network"]),
    # cluster
    ("cluster-version-bad", _set("cluster.cluster_version", "1.30.2"), ["cluster.cluster_version"]),
    ("cluster-version-text", _set("cluster.cluster_version", "latest"), ["cluster.cluster_version"]),
    # per-cloud rules (alethia.cloud_limits): what the cloud would refuse at plan/apply
    ("cluster-version-past-support", _set("cluster.cluster_version", "1.29"), ["cluster.cluster_version"]),
    ("api-cidr-open-to-all", _set("cluster.provider_config", {"api_authorized_cidrs": ["0.0.0.0/0"]}), ["cluster.provider_config.api_authorized_cidrs[0]"]),
    ("cache-id-too-long", _set("caches.0.name", "c" * 40), ["caches[0].name"]),
    ("no-instance-types", _set("cluster.instance_types", []), ["cluster.instance_types"]),
    ("min-above-desired", _set("cluster.node_min_size", 4), ["cluster.node_desired_size"]),
    ("desired-above-max", _set("cluster.node_desired_size", 7), ["cluster.node_desired_size"]),
    ("negative-min", _set("cluster.node_min_size", -1), ["cluster.node_min_size"]),
    ("cluster-missing", _drop("cluster"), ["cluster"]),
    # dns
    ("dns-without-zone", _dns_enabled_without_zone, ["dns.zone_id"]),
    ("dns-bad-domain", _set("dns.domain_name", "not a domain"), ["dns.domain_name"]),
    ("dns-single-label", _set("dns.domain_name", "localhost"), ["dns.domain_name"]),
    # repositories
    ("repo-credentials", _set("repositories.0.url", "https://user:ghp_abcdef@git.example.com/platform/apps.git"), ["repositories[0].url"]),
    ("repo-user", _set("repositories.0.url", "https://oauth2@git.example.com/platform/apps.git"), ["repositories[0].url"]),
    ("repo-token-query", _set("repositories.0.url", "https://git.example.com/platform/apps.git?private_token=abc"), ["repositories[0].url"]),
    ("repo-http", _set("repositories.0.url", "http://git.example.com/platform/apps.git"), ["repositories[0].url"]),
    ("repo-file", _set("repositories.0.url", "file:///etc/passwd"), ["repositories[0].url"]),
    ("repo-branch-bad", _set("repositories.0.branch", "main..dev"), ["repositories[0].branch"]),
    ("repo-path-escape", _set("repositories.0.path", "../../etc"), ["repositories[0].path"]),
    # databases
    ("engine-unknown", _set("databases.1.engine", "oracle"), ["databases[1].engine"]),
    ("storage-too-small", _set("databases.0.storage_gb", 5), ["databases[0].storage_gb"]),
    ("storage-too-large", _set("databases.0.storage_gb", 100000), ["databases[0].storage_gb"]),
    ("scaling-min-above-max", _set("databases.0.scaling", {"min_capacity": 16, "max_capacity": 8}), ["databases[0].scaling.min_capacity"]),
    ("instance-class-missing", _set("databases.0.instance_class", ""), ["databases[0].instance_class"]),
    # caches, topics, nosql
    ("cache-size-zero", _set("caches.0.cluster_size", 0), ["caches[0].cluster_size"]),
    ("subscription-protocol", _set("topics.0.subscriptions.0.protocol", "carrier-pigeon"), ["topics[0].subscriptions[0].protocol"]),
    ("subscription-https-endpoint", _set("topics.0.subscriptions.1.endpoint", "http://hooks.example.com/x"), ["topics[0].subscriptions[1].endpoint"]),
    ("nosql-no-partition-key", _set("nosql_tables.0.partition_key", ""), ["nosql_tables[0].partition_key"]),
    ("nosql-sort-equals-partition", _set("nosql_tables.0.sort_key", "key"), ["nosql_tables[0].sort_key"]),
    # secrets
    ("secret-value", _set("secrets.0.metadata", {"value": "sk_live_123"}), ["secrets[0].metadata.value"]),
    ("secret-password", _set("secrets.1.metadata", {"description": "x", "password": "hunter2"}), ["secrets[1].metadata.password"]),
    ("secret-nested-token", _set("secrets.0.metadata", {"extra": {"Token": "abc"}}), ["secrets[0].metadata.extra.Token"]),
    ("secret-secret-string", _set("secrets.0.metadata", {"secret_string": "abc"}), ["secrets[0].metadata.secret_string"]),
    # terraform version
    ("terraform-version-bad", _set("terraform_version", "newest please"), ["terraform_version"]),
    ("terraform-version-op", _set("terraform_version", "=> 1.5"), ["terraform_version"]),
]  # fmt: skip


# Cases that need the database (does the identity exist?): checked through the service only.
SERVICE_ONLY = frozenset({"identity-unknown", "identity-not-an-id"})


def broken(base: dict[str, Any], mutate: Mutation) -> dict[str, Any]:
    """A deep copy of ``base`` with one rule broken."""
    import copy

    data = copy.deepcopy(base)
    mutate(data)
    return data
