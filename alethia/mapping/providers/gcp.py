"""GCP ProviderTfvars: VPC network, GKE, Cloud SQL, Memorystore, Pub/Sub, Firestore,
Cloud Storage, Secret Manager, Cloud DNS + Cloud Armor.

GCP has no queue service of its own: each queue becomes a Pub/Sub topic with one pull
subscription (``<queue>-pull``) inside ``pubsub_topics``, next to the Spec's topics.
Labels follow GCP's rules (lowercase letters, digits, ``_`` and ``-``, at most 63).
"""

from __future__ import annotations

import re
from typing import Any

from alethia import cloud_limits
from alethia.errors import FieldViolation
from alethia.mapping.core import (
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
)

ENGINES = cloud_limits.ENGINES["gcp"]
PROTOCOLS = ("pull", "push")
_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?s\Z")

OPTIONS: dict[str, tuple[Option, ...]] = {
    "network.provider_config": (
        Option("pods_cidr", "string", "", "Secondary range for pods; empty = chosen by GKE."),
        Option("services_cidr", "string", "", "Secondary range for services; empty = chosen by GKE."),
    ),
    "cluster.provider_config": (
        api_cidrs_option(),
        Option(
            "encryption_key",
            "string",
            "",
            "Cloud KMS key (projects/.../cryptoKeys/...) for GKE secrets, Cloud SQL, Cloud Storage and Pub/Sub; empty = Google managed keys.",
        ),
        Option(
            "release_channel",
            "string",
            "REGULAR",
            "GKE release channel.",
            choices=("RAPID", "REGULAR", "STABLE", "UNSPECIFIED"),
        ),
        Option(
            "disk_size_gb",
            "number",
            100,
            "Node boot disk size in GB (Persistent Disk: at most 64 TB).",
            minimum=10,
            maximum=65536,
            integer=True,
        ),
        Option("spot", "bool", False, "Use Spot VMs for nodes."),
        Option("private_nodes", "bool", True, "Nodes without public IPs."),
    ),
    "dns.provider_config": (
        Option("waf_enabled", "bool", False, "Attach a Cloud Armor security policy."),
        Option(
            "waf_preconfigured_rules",
            "list(string)",
            ["sqli-v33-stable", "xss-v33-stable"],
            "Cloud Armor preconfigured WAF rules.",
        ),
        Option(
            "waf_rate_limit",
            "number",
            0,
            "Requests per minute per IP before throttling; 0 = none.",
            minimum=0,
            integer=True,
        ),
    ),
    "databases[].provider_config": (
        Option(
            "availability_type",
            "string",
            "ZONAL",
            "ZONAL or REGIONAL (high availability).",
            choices=("REGIONAL", "ZONAL"),
        ),
        Option("backup_enabled", "bool", True, "Automated backups."),
        Option("deletion_protection", "bool", False, "Refuse deletion of the instance."),
    ),
    "caches[].provider_config": (
        Option("redis_version", "string", "REDIS_7_0", "Memorystore Redis version."),
        Option("memory_size_gb", "number", 1, "Memory size in GB.", minimum=1, integer=True),
    ),
    "queues[].config": (
        Option(
            "ack_deadline_seconds",
            "number",
            10,
            "Pull subscription ack deadline.",
            minimum=10,
            maximum=600,
            integer=True,
        ),
        Option("message_retention_duration", "string", "604800s", "Topic message retention, e.g. 604800s."),
        Option(
            "max_delivery_attempts",
            "number",
            0,
            "Deliveries before dead-lettering; 0 = no dead-letter topic.",
            minimum=0,
            maximum=100,
            integer=True,
        ),
        Option("enable_message_ordering", "bool", False, "Ordered delivery by ordering key."),
    ),
    "nosql_tables[].provider_config": (
        Option(
            "type",
            "string",
            "FIRESTORE_NATIVE",
            "Firestore mode.",
            choices=("DATASTORE_MODE", "FIRESTORE_NATIVE"),
        ),
        Option("point_in_time_recovery", "bool", False, "Point-in-time recovery."),
    ),
    "storage_buckets[].provider_config": (
        Option(
            "storage_class",
            "string",
            "STANDARD",
            "Storage class.",
            choices=("ARCHIVE", "COLDLINE", "NEARLINE", "STANDARD"),
        ),
        Option(
            "lifecycle_days",
            "number",
            0,
            "Delete objects after this many days; 0 = never.",
            minimum=0,
            integer=True,
        ),
        Option("force_destroy", "bool", False, "Allow deleting a bucket that still holds objects."),
    ),
}


def database_version(db: Data) -> str:
    """Cloud SQL's database_version: POSTGRES_16, MYSQL_8_0, SQLSERVER_2019_STANDARD."""
    version = db["engine_version"].strip()
    if db["engine"] == "postgres":
        return f"POSTGRES_{version.split('.')[0]}"
    if db["engine"] == "mysql":
        return "MYSQL_" + version.replace(".", "_")
    edition = "" if "_" in version else "_STANDARD"
    return f"SQLSERVER_{version.upper()}{edition}"


def labels(spec: Data) -> dict[str, str]:
    """Identity tags as valid GCP labels (lowercased, other characters become ``_``)."""

    def clean(s: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", s.lower())[:63]

    return {clean(k): clean(v) for k, v in identity_tags(spec).items()}


def pubsub_topics(spec: Data) -> list[dict[str, Any]]:
    """Queues (each a topic with a pull subscription) and topics, ordered by name."""
    out: list[dict[str, Any]] = []
    for q in spec["queues"]:
        cfg = q["config"]
        out.append(
            {
                "name": q["name"],
                "kind": "queue",
                "message_retention_duration": cfg["message_retention_duration"],
                "enable_message_ordering": cfg["enable_message_ordering"],
                "subscriptions": [
                    {
                        "name": f"{q['name']}-pull",
                        "type": "pull",
                        "push_endpoint": "",
                        "ack_deadline_seconds": cfg["ack_deadline_seconds"],
                        "max_delivery_attempts": cfg["max_delivery_attempts"],
                    }
                ],
            }
        )
    for t in spec["topics"]:
        out.append(
            {
                "name": t["name"],
                "kind": "topic",
                "message_retention_duration": "",
                "enable_message_ordering": False,
                "subscriptions": [
                    {
                        "name": s["name"],
                        "type": s["protocol"],
                        "push_endpoint": s["endpoint"] if s["protocol"] == "push" else "",
                        "ack_deadline_seconds": 10,
                        "max_delivery_attempts": 0,
                    }
                    for s in t["subscriptions"]
                ],
            }
        )
    return sorted(out, key=lambda t: t["name"])


_PUBSUB_SUBSCRIPTION = (
    "list(object({ name = string, type = string, push_endpoint = string, "
    "ack_deadline_seconds = number, max_delivery_attempts = number }))"
)


def _checks(spec: Data) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    for i, db in enumerate(spec["databases"]):
        # Cloud SQL keeps at least one automated backup; provider_config.backup_enabled turns them off.
        if db["backup_retention_days"] < 1:
            out.append(
                FieldViolation(
                    f"databases[{i}].backup_retention_days",
                    "must be at least 1 on gcp (provider_config.backup_enabled: false turns backups off)",
                )
            )
    topic_names = {t["name"]: i for i, t in enumerate(spec["topics"])}
    for i, q in enumerate(spec["queues"]):
        if q["name"] in topic_names:
            out.append(
                FieldViolation(
                    f"queues[{i}].name",
                    f"same name as topics[{topic_names[q['name']]}]; on gcp both become Pub/Sub topics",
                )
            )
        retention = q["config"].get("message_retention_duration")
        if isinstance(retention, str) and not _DURATION.match(retention):
            out.append(
                FieldViolation(
                    f"queues[{i}].config.message_retention_duration",
                    "must be a duration in seconds such as 604800s",
                )
            )
    for i, topic in enumerate(spec["topics"]):
        for j, sub in enumerate(topic["subscriptions"]):
            path = f"topics[{i}].subscriptions[{j}]"
            if sub["protocol"] not in PROTOCOLS:
                out.append(FieldViolation(f"{path}.protocol", "must be one of " + ", ".join(PROTOCOLS)))
            elif sub["protocol"] == "push" and not sub["endpoint"].startswith("https://"):
                out.append(
                    FieldViolation(f"{path}.endpoint", "a push subscription needs an https:// endpoint")
                )
    return out


VARIABLES: tuple[Var, ...] = (
    *common_variables("region", "project_id", "GCP project id the resources are created in."),
    *hardening_variables(),
    Var(
        "encryption_key",
        "cluster.provider_config.encryption_key",
        "Customer-managed key for encryption at rest; empty = the cloud's managed keys.",
        "string",
    ),
    Var(
        "labels",
        TAG_SOURCE,
        "Labels on every resource (owner, project, environment, zone, Spec).",
        derive=labels,
        tf_type="map(string)",
    ),
    # network
    Var(
        "provision_network",
        "network.provision_network",
        "Create a VPC network (true) or use an existing one (false).",
        "bool",
    ),
    Var(
        "network_cidr",
        "network.cidr_block",
        "Primary CIDR of the new subnetwork (empty for an existing network).",
        "string",
    ),
    Var("existing_network_id", "network.network_id", "Self link or id of the existing network.", "string"),
    Var(
        "gke_pods_cidr",
        "network.provider_config.pods_cidr",
        "Secondary range for pods; empty = GKE chooses.",
        "string",
    ),
    Var(
        "gke_services_cidr",
        "network.provider_config.services_cidr",
        "Secondary range for services; empty = GKE chooses.",
        "string",
    ),
    # cluster
    Var(
        "gke_cluster_version",
        "cluster.cluster_version",
        "Minimum Kubernetes master version of the GKE cluster.",
        "string",
    ),
    Var(
        "gke_instance_types",
        "cluster.instance_types",
        "Machine types; the node pool uses the first.",
        "list(string)",
    ),
    Var(
        "gke_node_min_size",
        "cluster.node_min_size",
        "Minimum nodes of the pool in total (autoscaling).",
        "number",
    ),
    Var(
        "gke_node_max_size",
        "cluster.node_max_size",
        "Maximum nodes of the pool in total (autoscaling).",
        "number",
    ),
    Var(
        "gke_node_desired_size",
        "cluster.node_desired_size",
        "Initial nodes in total, spread over the pool's zones.",
        "number",
    ),
    Var(
        "gke_cluster_admins",
        "cluster.cluster_admins",
        "IAM members (user:, group:, serviceAccount:) granted container.admin.",
        "list(string)",
    ),
    Var("gke_release_channel", "cluster.provider_config.release_channel", "GKE release channel.", "string"),
    Var("gke_disk_size_gb", "cluster.provider_config.disk_size_gb", "Node boot disk size in GB.", "number"),
    Var("gke_spot", "cluster.provider_config.spot", "Spot VMs for nodes.", "bool"),
    Var("gke_private_nodes", "cluster.provider_config.private_nodes", "Nodes without public IPs.", "bool"),
    # dns + waf
    Var(
        "dns_enabled", "dns.enabled", "Create DNS records (and the Cloud Armor policy when enabled).", "bool"
    ),
    Var("dns_managed_zone", "dns.zone_id", "Cloud DNS managed zone name.", "string"),
    Var("domain_name", "dns.domain_name", "Domain name of the environment.", "string"),
    Var(
        "cloud_armor_enabled",
        "dns.provider_config.waf_enabled",
        "Attach a Cloud Armor security policy.",
        "bool",
    ),
    Var(
        "cloud_armor_preconfigured_rules",
        "dns.provider_config.waf_preconfigured_rules",
        "Preconfigured WAF rules.",
        "list(string)",
    ),
    Var(
        "cloud_armor_rate_limit",
        "dns.provider_config.waf_rate_limit",
        "Requests per minute per IP; 0 = none.",
        "number",
    ),
    # data
    Var(
        "cloud_sql_engine",
        "databases[0].engine",
        'Engine of the first database ("" when there is none).',
        derive=first("databases", "engine"),
        tf_type="string",
    ),
    Var(
        "cloud_sql_databases",
        "databases",
        "Cloud SQL instances, one per database.",
        attrs=(
            Attr("name", "string", "name", "Instance name suffix."),
            Attr("engine", "string", "engine", "Engine: " + ", ".join(ENGINES) + "."),
            Attr("engine_version", "string", "engine_version", "Engine version as given in the Spec."),
            Attr(
                "database_version",
                "string",
                "",
                "Cloud SQL database_version.",
                derive=lambda db, _: database_version(db),
                spec_field="databases[].engine, databases[].engine_version",
            ),
            Attr("tier", "string", "instance_class", "Machine tier."),
            Attr("disk_size_gb", "number", "storage_gb", "Disk size in GB."),
            Attr(
                "min_capacity",
                "number",
                "scaling.min_capacity",
                "Recorded as an instance label (Cloud SQL has no compute autoscaling).",
            ),
            Attr(
                "max_capacity",
                "number",
                "scaling.max_capacity",
                "Recorded as an instance label (Cloud SQL has no compute autoscaling).",
            ),
            Attr("availability_type", "string", "provider_config.availability_type", "ZONAL or REGIONAL."),
            Attr("backup_enabled", "bool", "provider_config.backup_enabled", "Automated backups."),
            Attr(
                "backup_retention_days",
                "number",
                "backup_retention_days",
                "Automated backups kept, one a day.",
            ),
            Attr(
                "deletion_protection", "bool", "provider_config.deletion_protection", "Deletion protection."
            ),
        ),
    ),
    Var(
        "memorystore_instance_type",
        "caches[0].node_type",
        'Tier of the first cache ("" when there is none).',
        derive=first("caches", "node_type"),
        tf_type="string",
    ),
    Var(
        "memorystore_instances",
        "caches",
        "Memorystore for Redis instances.",
        attrs=(
            Attr("name", "string", "name", "Instance name suffix."),
            Attr("tier", "string", "node_type", "BASIC or STANDARD_HA."),
            Attr(
                "replica_count",
                "number",
                "cluster_size",
                "Replicas: cluster_size - 1 (at least 1) on STANDARD_HA, 0 on BASIC.",
                derive=lambda c, _: cloud_limits.memorystore_replicas(c["node_type"], c["cluster_size"]),
            ),
            Attr("redis_version", "string", "provider_config.redis_version", "Redis version."),
            Attr("memory_size_gb", "number", "provider_config.memory_size_gb", "Memory in GB."),
        ),
    ),
    Var(
        "pubsub_topics",
        "queues[], topics[]",
        "Pub/Sub topics: each queue (kind queue, with one pull subscription) and each topic (kind topic).",
        derive=pubsub_topics,
        attrs=(
            Attr("name", "string", "name", "Topic name suffix.", spec_field="queues[].name, topics[].name"),
            Attr("kind", "string", "", "queue or topic.", spec_field="(which list the item came from)"),
            Attr(
                "message_retention_duration",
                "string",
                "",
                "Retention, e.g. 604800s; empty = default.",
                spec_field="queues[].config.message_retention_duration",
            ),
            Attr(
                "enable_message_ordering",
                "bool",
                "",
                "Ordered delivery.",
                spec_field="queues[].config.enable_message_ordering",
            ),
            Attr(
                "subscriptions",
                _PUBSUB_SUBSCRIPTION,
                "",
                "Subscriptions: a queue's pull subscription, or a topic's pull/push subscriptions.",
                spec_field="queues[].config.ack_deadline_seconds, queues[].config.max_delivery_attempts, topics[].subscriptions",
            ),
        ),
    ),
    Var(
        "firestore_databases",
        "nosql_tables",
        "Firestore databases, one per NoSQL table.",
        attrs=(
            Attr("name", "string", "name", "Database name suffix."),
            Attr("partition_key", "string", "partition_key", "First field of the composite index."),
            Attr("sort_key", "string", "sort_key", "Second field of the composite index; empty = none."),
            Attr("type", "string", "provider_config.type", "FIRESTORE_NATIVE or DATASTORE_MODE."),
            Attr("point_in_time_recovery", "bool", "provider_config.point_in_time_recovery", "PITR."),
        ),
    ),
    Var(
        "cloud_storage_buckets",
        "storage_buckets",
        "Cloud Storage buckets.",
        attrs=(
            Attr("name", "string", "name", "Bucket name suffix."),
            Attr("versioning", "bool", "versioning", "Object versioning."),
            Attr("storage_class", "string", "provider_config.storage_class", "Storage class."),
            Attr(
                "lifecycle_days", "number", "provider_config.lifecycle_days", "Delete after days; 0 = never."
            ),
            Attr(
                "force_destroy", "bool", "provider_config.force_destroy", "Allow deleting a non-empty bucket."
            ),
        ),
    ),
    secrets_var(
        "secret_manager_secrets",
        "Secret Manager secrets: names and metadata (annotations) only, never values.",
        "Secret id suffix.",
        "Metadata as annotations.",
    ),
    apps_repositories_var(),
)

GCP = ProviderMapping(
    name="gcp",
    template="gcp",
    title="GCP",
    variables=VARIABLES,
    options=OPTIONS,
    checks=_checks,
)
