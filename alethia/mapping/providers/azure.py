"""Azure ProviderTfvars: VNet, AKS, Database flexible servers, Azure Cache for Redis,
Service Bus, Cosmos DB, Storage containers, Key Vault, Azure DNS + Front Door WAF.

Every resource lives in one resource group, ``rg-<project>-<environment>``.
"""

from __future__ import annotations

import re
from typing import Any

from alethia import cloud_limits, naming
from alethia.errors import FieldViolation
from alethia.mapping.core import (
    SUBSCRIPTION_TYPE,
    TAG_SOURCE,
    Attr,
    Data,
    Option,
    ProviderMapping,
    Var,
    api_cidrs_option,
    apps_repositories_var,
    common_variables,
    first,
    hardening_variables,
    identity_tags,
    secrets_var,
    subscriptions,
)

ENGINES = cloud_limits.ENGINES["azure"]
PROTOCOLS = ("servicebus",)
_CACHE_SKU = re.compile(r"^(Basic|Standard|Premium)_([CP])([0-9]+)\Z")
_ISO_DURATION = re.compile(r"^P(?!$)([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+S)?)?\Z")

OPTIONS: dict[str, tuple[Option, ...]] = {
    "network.provider_config": (
        Option(
            "subnet_prefix_length",
            "number",
            20,
            "Prefix length of the AKS subnet carved from the VNet.",
            minimum=8,
            maximum=29,
            integer=True,
        ),
    ),
    "cluster.provider_config": (
        api_cidrs_option(),
        Option(
            "encryption_key",
            "string",
            "",
            "Key Vault key resource id (/subscriptions/.../providers/Microsoft.KeyVault/vaults/<vault>/keys/<key>) "
            "for AKS disks, PostgreSQL/MySQL flexible servers, the storage account and Cosmos DB; "
            "empty = platform-managed keys.",
        ),
        Option("sku_tier", "string", "Free", "AKS pricing tier.", choices=("Free", "Premium", "Standard")),
        Option(
            "os_disk_size_gb",
            "number",
            128,
            "Node OS disk size in GB (AKS: at most 2048).",
            minimum=30,
            maximum=2048,
            integer=True,
        ),
        Option(
            "automatic_upgrade_channel",
            "string",
            "none",
            "AKS automatic upgrade channel.",
            choices=("node-image", "none", "patch", "rapid", "stable"),
        ),
    ),
    "dns.provider_config": (
        Option("waf_enabled", "bool", False, "Put the domain behind Azure Front Door with a WAF policy."),
        Option("waf_mode", "string", "Prevention", "WAF policy mode.", choices=("Detection", "Prevention")),
        Option(
            "waf_managed_rule_sets",
            "list(string)",
            ["Microsoft_DefaultRuleSet"],
            "Managed rule sets of the WAF policy.",
        ),
    ),
    "databases[].provider_config": (
        Option(
            "high_availability",
            "string",
            "Disabled",
            "High availability mode.",
            choices=("Disabled", "SameZone", "ZoneRedundant"),
        ),
    ),
    "caches[].provider_config": (
        Option(
            "family", "string", "", "SKU family C or P; empty = taken from node_type.", choices=("", "C", "P")
        ),
        Option("redis_version", "string", "6", "Redis version."),
    ),
    "queues[].config": (
        Option(
            "max_delivery_count", "number", 10, "Deliveries before dead-lettering.", minimum=1, integer=True
        ),
        Option("lock_duration", "string", "PT1M", "Peek-lock duration (ISO 8601), e.g. PT1M."),
        Option("default_message_ttl", "string", "P14D", "Message time to live (ISO 8601), e.g. P14D."),
        Option("requires_session", "bool", False, "Sessions (FIFO per session id)."),
    ),
    "nosql_tables[].provider_config": (
        Option("throughput", "number", 400, "Provisioned RU/s of the container.", minimum=400, integer=True),
    ),
    "storage_buckets[].provider_config": (
        Option(
            "access_type",
            "string",
            "private",
            "Anonymous access level of the container: private only (no public buckets).",
            choices=("private",),
        ),
    ),
}


def cache_sku(cache: Data) -> dict[str, Any]:
    """``Standard_C1`` -> sku_name Standard, family C, capacity 1 (checked in _checks)."""
    m = _CACHE_SKU.match(cache["node_type"])
    if m is None:  # unreachable after _checks; keeps the function total
        return {"sku_name": cache["node_type"], "family": "C", "capacity": 0}
    family = cache["provider_config"].get("family") or m.group(2)
    return {"sku_name": m.group(1), "family": family, "capacity": int(m.group(3))}


def resource_group(spec: Data) -> str:
    """The one resource group of the environment."""
    return "rg-" + naming.resource_prefix(spec["project_name"], spec["environment"])


def _checks(spec: Data) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    for i, db in enumerate(spec["databases"]):
        # Flexible servers always keep backups: 1 day is the least they accept.
        if db["backup_retention_days"] < 1:
            out.append(FieldViolation(f"databases[{i}].backup_retention_days", "must be at least 1 on azure"))
    for i, cache in enumerate(spec["caches"]):
        m = _CACHE_SKU.match(cache["node_type"])
        if m is None:
            out.append(
                FieldViolation(
                    f"caches[{i}].node_type", "must be an Azure Cache SKU such as Standard_C1 or Premium_P1"
                )
            )
            continue
        family = cache["provider_config"].get("family")
        if family and family != m.group(2):
            out.append(
                FieldViolation(
                    f"caches[{i}].provider_config.family", f"does not match node_type {cache['node_type']}"
                )
            )
        if cache["cluster_size"] > 1 and m.group(1) != "Premium":
            out.append(
                FieldViolation(f"caches[{i}].cluster_size", "more than one shard needs a Premium node_type")
            )
    for i, q in enumerate(spec["queues"]):
        for key in ("lock_duration", "default_message_ttl"):
            value = q["config"].get(key)
            if isinstance(value, str) and not _ISO_DURATION.match(value):
                out.append(
                    FieldViolation(
                        f"queues[{i}].config.{key}", "must be an ISO 8601 duration such as PT1M or P14D"
                    )
                )
    queue_names = {q["name"] for q in spec["queues"]}
    for i, topic in enumerate(spec["topics"]):
        for j, sub in enumerate(topic["subscriptions"]):
            path = f"topics[{i}].subscriptions[{j}]"
            if sub["protocol"] not in PROTOCOLS:
                out.append(FieldViolation(f"{path}.protocol", "must be one of " + ", ".join(PROTOCOLS)))
            elif sub["endpoint"] and sub["endpoint"] not in queue_names:
                out.append(
                    FieldViolation(
                        f"{path}.endpoint", "must be empty or the name of a queue of this Spec (forwarding)"
                    )
                )
    return out


VARIABLES: tuple[Var, ...] = (
    *common_variables("location", "subscription_id", "Azure subscription id the resources are created in."),
    *hardening_variables(),
    Var(
        "encryption_key",
        "cluster.provider_config.encryption_key",
        "Customer-managed key for encryption at rest; empty = the cloud's managed keys.",
        "string",
    ),
    Var(
        "tags",
        TAG_SOURCE,
        "Tags on every resource (owner, project, environment, zone, Spec).",
        derive=identity_tags,
        tf_type="map(string)",
    ),
    Var(
        "resource_group_name",
        "project_name, environment",
        "Resource group of the environment: rg-<project>-<environment>.",
        derive=resource_group,
        tf_type="string",
    ),
    # network
    Var(
        "provision_vnet",
        "network.provision_network",
        "Create a VNet (true) or use an existing one (false).",
        "bool",
    ),
    Var(
        "vnet_cidr",
        "network.cidr_block",
        "Address space of the new VNet (empty for an existing VNet).",
        "string",
    ),
    Var("existing_vnet_id", "network.network_id", "Resource id of the existing VNet.", "string"),
    Var(
        "aks_subnet_prefix_length",
        "network.provider_config.subnet_prefix_length",
        "Prefix length of the AKS subnet.",
        "number",
    ),
    # cluster
    Var("aks_cluster_version", "cluster.cluster_version", "Kubernetes version of the AKS cluster.", "string"),
    Var(
        "aks_instance_types",
        "cluster.instance_types",
        "VM sizes; the default node pool uses the first.",
        "list(string)",
    ),
    Var("aks_node_min_size", "cluster.node_min_size", "Minimum nodes (autoscaler).", "number"),
    Var("aks_node_max_size", "cluster.node_max_size", "Maximum nodes (autoscaler).", "number"),
    Var("aks_node_desired_size", "cluster.node_desired_size", "Initial nodes.", "number"),
    Var(
        "aks_cluster_admins",
        "cluster.cluster_admins",
        "Entra ID group object ids granted cluster admin.",
        "list(string)",
    ),
    Var("aks_sku_tier", "cluster.provider_config.sku_tier", "AKS pricing tier.", "string"),
    Var(
        "aks_os_disk_size_gb", "cluster.provider_config.os_disk_size_gb", "Node OS disk size in GB.", "number"
    ),
    Var(
        "aks_automatic_upgrade_channel",
        "cluster.provider_config.automatic_upgrade_channel",
        "Upgrade channel.",
        "string",
    ),
    # dns + waf
    Var("dns_enabled", "dns.enabled", "Create DNS records (and Front Door + WAF when enabled).", "bool"),
    Var("dns_zone_name", "dns.zone_id", "Azure DNS zone name.", "string"),
    Var("domain_name", "dns.domain_name", "Domain name of the environment.", "string"),
    Var("front_door_waf_enabled", "dns.provider_config.waf_enabled", "Front Door with a WAF policy.", "bool"),
    Var("front_door_waf_mode", "dns.provider_config.waf_mode", "Detection or Prevention.", "string"),
    Var(
        "front_door_waf_rule_sets",
        "dns.provider_config.waf_managed_rule_sets",
        "Managed rule sets.",
        "list(string)",
    ),
    # data
    Var(
        "azure_db_engine",
        "databases[0].engine",
        'Engine of the first database ("" when there is none).',
        derive=first("databases", "engine"),
        tf_type="string",
    ),
    Var(
        "azure_databases",
        "databases",
        "Azure Database flexible servers (PostgreSQL or MySQL), one per database.",
        attrs=(
            Attr("name", "string", "name", "Server name suffix."),
            Attr("engine", "string", "engine", "Engine: " + ", ".join(ENGINES) + "."),
            Attr("engine_version", "string", "engine_version", "Engine version."),
            Attr("sku_name", "string", "instance_class", "SKU, e.g. GP_Standard_D2s_v3."),
            Attr("storage_gb", "number", "storage_gb", "Storage in GB."),
            Attr(
                "min_capacity",
                "number",
                "scaling.min_capacity",
                "Recorded as a tag (flexible servers scale by SKU).",
            ),
            Attr(
                "max_capacity",
                "number",
                "scaling.max_capacity",
                "Recorded as a tag (flexible servers scale by SKU).",
            ),
            Attr(
                "high_availability",
                "string",
                "provider_config.high_availability",
                "Disabled, SameZone or ZoneRedundant.",
            ),
            Attr(
                "backup_retention_days",
                "number",
                "backup_retention_days",
                "Backup retention in days (flexible servers keep at least 1).",
            ),
        ),
    ),
    Var(
        "azure_cache_sku",
        "caches[0].node_type",
        'SKU of the first cache ("" when there is none).',
        derive=first("caches", "node_type"),
        tf_type="string",
    ),
    Var(
        "azure_redis_caches",
        "caches",
        "Azure Cache for Redis instances.",
        attrs=(
            Attr("name", "string", "name", "Cache name suffix."),
            Attr("node_type", "string", "node_type", "SKU as given, e.g. Standard_C1."),
            Attr(
                "sku_name",
                "string",
                "",
                "Basic, Standard or Premium.",
                derive=lambda c, _: cache_sku(c)["sku_name"],
                spec_field="caches[].node_type",
            ),
            Attr(
                "family",
                "string",
                "",
                "C or P.",
                derive=lambda c, _: cache_sku(c)["family"],
                spec_field="caches[].node_type, caches[].provider_config.family",
            ),
            Attr(
                "capacity",
                "number",
                "",
                "Size within the family.",
                derive=lambda c, _: cache_sku(c)["capacity"],
                spec_field="caches[].node_type",
            ),
            Attr("shard_count", "number", "cluster_size", "Shards (Premium only when above 1)."),
            Attr("redis_version", "string", "provider_config.redis_version", "Redis version."),
        ),
    ),
    Var(
        "service_bus_queues",
        "queues",
        "Service Bus queues.",
        attrs=(
            Attr("name", "string", "name", "Queue name."),
            Attr(
                "max_delivery_count",
                "number",
                "config.max_delivery_count",
                "Deliveries before dead-lettering.",
            ),
            Attr("lock_duration", "string", "config.lock_duration", "Peek-lock duration (ISO 8601)."),
            Attr("default_message_ttl", "string", "config.default_message_ttl", "Message TTL (ISO 8601)."),
            Attr("requires_session", "bool", "config.requires_session", "Sessions."),
        ),
    ),
    Var(
        "service_bus_topics",
        "topics",
        "Service Bus topics with subscriptions (an endpoint names a queue to forward to).",
        attrs=(
            Attr("name", "string", "name", "Topic name."),
            Attr(
                "subscriptions",
                SUBSCRIPTION_TYPE,
                "subscriptions",
                "Subscriptions: name, protocol, endpoint.",
                derive=subscriptions,
            ),
        ),
    ),
    Var(
        "cosmos_db_collections",
        "nosql_tables",
        "Cosmos DB (SQL API) containers.",
        attrs=(
            Attr("name", "string", "name", "Container name."),
            Attr("partition_key", "string", "partition_key", "Partition key attribute (path /<key>)."),
            Attr(
                "sort_key",
                "string",
                "sort_key",
                "Attribute of the composite index with the partition key; empty = none.",
            ),
            Attr("throughput", "number", "provider_config.throughput", "Provisioned RU/s."),
        ),
    ),
    Var(
        "storage_containers",
        "storage_buckets",
        "Blob containers in the environment's storage account.",
        attrs=(
            Attr("name", "string", "name", "Container name."),
            Attr(
                "versioning",
                "bool",
                "versioning",
                "Blob versioning (enabled on the account when any container asks).",
            ),
            Attr("access_type", "string", "provider_config.access_type", "private, blob or container."),
        ),
    ),
    secrets_var(
        "key_vault_secrets",
        "Key Vault secret names and metadata (tags) only, never values.",
        "Secret name.",
        "Metadata as tags.",
    ),
    apps_repositories_var(),
)

AZURE = ProviderMapping(
    name="azure",
    template="azure",
    title="Azure",
    variables=VARIABLES,
    options=OPTIONS,
    checks=_checks,
)
