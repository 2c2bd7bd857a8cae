"""AWS ProviderTfvars: VPC, EKS, RDS/Aurora, ElastiCache, SQS+SNS, DynamoDB, S3,
Secrets Manager, Route 53 + WAF. Variable names follow the table in docs/mapping.md."""

from __future__ import annotations

from alethia import cloud_limits
from alethia.errors import FieldViolation
from alethia.mapping.core import (
    SUBSCRIPTION_TYPE,
    TAG_SOURCE,
    Attr,
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
from alethia.mapping.spec_config import Data

ENGINES = cloud_limits.ENGINES["aws"]
PROTOCOLS = ("email", "email-json", "firehose", "http", "https", "lambda", "sms", "sqs")

OPTIONS: dict[str, tuple[Option, ...]] = {
    "network.provider_config": (
        Option(
            "availability_zones",
            "number",
            3,
            "Availability zones to spread subnets over.",
            minimum=1,
            maximum=6,
            integer=True,
        ),
        Option("enable_nat_gateway", "bool", True, "Give private subnets internet egress through NAT."),
        Option("single_nat_gateway", "bool", False, "One shared NAT gateway instead of one per zone."),
    ),
    "cluster.provider_config": (
        api_cidrs_option(),
        Option(
            "encryption_key",
            "string",
            "",
            "KMS key ARN for encryption at rest (EKS secrets, RDS, ElastiCache, S3, DynamoDB, SQS, SNS, Secrets Manager); empty = AWS managed keys.",
        ),
        Option(
            "capacity_type", "string", "ON_DEMAND", "Node group capacity type.", choices=("ON_DEMAND", "SPOT")
        ),
        Option(
            "disk_size",
            "number",
            50,
            "Node root volume size in GiB (EBS: at most 16 TiB).",
            minimum=20,
            maximum=16384,
            integer=True,
        ),
        Option("endpoint_public_access", "bool", True, "Expose the EKS API endpoint publicly."),
        Option(
            "addons", "list(string)", ["coredns", "kube-proxy", "vpc-cni"], "EKS managed add-ons to install."
        ),
    ),
    "dns.provider_config": (
        Option("waf_enabled", "bool", False, "Attach an AWS WAFv2 web ACL."),
        Option(
            "waf_managed_rules",
            "list(string)",
            ["AWSManagedRulesCommonRuleSet"],
            "AWS managed rule groups of the web ACL.",
        ),
        Option(
            "waf_rate_limit",
            "number",
            0,
            "Requests per 5 minutes per IP before blocking; 0 = no rate rule.",
            minimum=0,
            integer=True,
        ),
    ),
    "databases[].provider_config": (
        Option("multi_az", "bool", False, "Standby in a second availability zone."),
        Option("deletion_protection", "bool", False, "Refuse deletion of the database."),
    ),
    "caches[].provider_config": (Option("engine_version", "string", "7.1", "Redis engine version."),),
    "queues[].config": (
        Option("fifo", "bool", False, "FIFO queue (name gets the .fifo suffix)."),
        Option(
            "visibility_timeout_seconds",
            "number",
            30,
            "Visibility timeout in seconds.",
            minimum=0,
            maximum=43200,
            integer=True,
        ),
        Option(
            "message_retention_seconds",
            "number",
            345600,
            "Message retention in seconds.",
            minimum=60,
            maximum=1209600,
            integer=True,
        ),
        Option(
            "delay_seconds", "number", 0, "Delivery delay in seconds.", minimum=0, maximum=900, integer=True
        ),
        Option(
            "max_receive_count",
            "number",
            0,
            "Receives before a message goes to a dead-letter queue; 0 = no DLQ.",
            minimum=0,
            integer=True,
        ),
    ),
    "nosql_tables[].provider_config": (
        Option(
            "billing_mode",
            "string",
            "PAY_PER_REQUEST",
            "DynamoDB billing mode.",
            choices=("PAY_PER_REQUEST", "PROVISIONED"),
        ),
        Option(
            "read_capacity", "number", 0, "Read capacity units (PROVISIONED only).", minimum=0, integer=True
        ),
        Option(
            "write_capacity", "number", 0, "Write capacity units (PROVISIONED only).", minimum=0, integer=True
        ),
        Option("ttl_attribute", "string", "", "Attribute holding the expiry time; empty = no TTL."),
    ),
    "storage_buckets[].provider_config": (
        Option(
            "lifecycle_days",
            "number",
            0,
            "Expire objects after this many days; 0 = never.",
            minimum=0,
            integer=True,
        ),
        Option("force_destroy", "bool", False, "Allow deleting a bucket that still holds objects."),
    ),
}


def _checks(spec: Data) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    for i, db in enumerate(spec["databases"]):
        # The template keeps automated backups on (0 would turn them off on RDS).
        if db["backup_retention_days"] < 1:
            out.append(
                FieldViolation(
                    f"databases[{i}].backup_retention_days", "must be at least 1 on aws (backups stay on)"
                )
            )
    for i, topic in enumerate(spec["topics"]):
        for j, sub in enumerate(topic["subscriptions"]):
            path = f"topics[{i}].subscriptions[{j}]"
            if sub["protocol"] not in PROTOCOLS:
                out.append(FieldViolation(f"{path}.protocol", "must be one of " + ", ".join(PROTOCOLS)))
            if not sub["endpoint"].strip():
                out.append(FieldViolation(f"{path}.endpoint", "is required on aws"))
    for i, table in enumerate(spec["nosql_tables"]):
        cfg = table["provider_config"]
        if cfg.get("billing_mode") == "PROVISIONED" and not (
            cfg.get("read_capacity") and cfg.get("write_capacity")
        ):
            out.append(
                FieldViolation(
                    f"nosql_tables[{i}].provider_config.billing_mode",
                    "PROVISIONED needs read_capacity and write_capacity",
                )
            )
    return out


VARIABLES: tuple[Var, ...] = (
    *common_variables("region", "aws_account_id", "AWS account id the resources are created in."),
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
    # network
    Var(
        "provision_vpc",
        "network.provision_network",
        "Create a VPC (true) or use an existing one (false).",
        "bool",
    ),
    Var("vpc_cidr", "network.cidr_block", "CIDR block of the new VPC (empty for an existing VPC).", "string"),
    Var(
        "existing_vpc_id",
        "network.network_id",
        "Id of the existing VPC when provision_vpc is false.",
        "string",
    ),
    Var(
        "vpc_availability_zones",
        "network.provider_config.availability_zones",
        "Number of availability zones for subnets.",
        "number",
    ),
    Var(
        "vpc_enable_nat_gateway",
        "network.provider_config.enable_nat_gateway",
        "NAT egress for private subnets.",
        "bool",
    ),
    Var(
        "vpc_single_nat_gateway",
        "network.provider_config.single_nat_gateway",
        "One shared NAT gateway.",
        "bool",
    ),
    # cluster
    Var("eks_cluster_version", "cluster.cluster_version", "Kubernetes version of the EKS cluster.", "string"),
    Var(
        "eks_instance_types",
        "cluster.instance_types",
        "EC2 instance types of the managed node group.",
        "list(string)",
    ),
    Var("eks_node_min_size", "cluster.node_min_size", "Minimum nodes in the node group.", "number"),
    Var("eks_node_max_size", "cluster.node_max_size", "Maximum nodes in the node group.", "number"),
    Var("eks_node_desired_size", "cluster.node_desired_size", "Desired nodes in the node group.", "number"),
    Var(
        "eks_cluster_admins",
        "cluster.cluster_admins",
        "IAM principal ARNs granted cluster-admin access.",
        "list(string)",
    ),
    Var("eks_capacity_type", "cluster.provider_config.capacity_type", "ON_DEMAND or SPOT nodes.", "string"),
    Var("eks_node_disk_size", "cluster.provider_config.disk_size", "Node root volume size in GiB.", "number"),
    Var(
        "eks_endpoint_public_access",
        "cluster.provider_config.endpoint_public_access",
        "Public EKS API endpoint.",
        "bool",
    ),
    Var("eks_addons", "cluster.provider_config.addons", "EKS managed add-ons.", "list(string)"),
    # dns + waf
    Var("dns_enabled", "dns.enabled", "Create DNS records (and the WAF when enabled).", "bool"),
    Var("route53_zone_id", "dns.zone_id", "Route 53 hosted zone id.", "string"),
    Var("domain_name", "dns.domain_name", "Domain name of the environment.", "string"),
    Var("waf_enabled", "dns.provider_config.waf_enabled", "Attach a WAFv2 web ACL.", "bool"),
    Var(
        "waf_managed_rules",
        "dns.provider_config.waf_managed_rules",
        "AWS managed rule groups.",
        "list(string)",
    ),
    Var(
        "waf_rate_limit",
        "dns.provider_config.waf_rate_limit",
        "Rate limit per IP per 5 minutes; 0 = none.",
        "number",
    ),
    # data
    Var(
        "rds_config",
        "databases",
        "Databases: RDS instances, or Aurora Serverless v2 clusters for aurora-* engines.",
        attrs=(
            Attr("name", "string", "name", "Database identifier suffix."),
            Attr("engine", "string", "engine", "Engine: " + ", ".join(ENGINES) + "."),
            Attr("engine_version", "string", "engine_version", "Engine version."),
            Attr(
                "instance_class",
                "string",
                "instance_class",
                "Instance class (db.serverless for Aurora Serverless v2).",
            ),
            Attr("allocated_storage", "number", "storage_gb", "Allocated storage in GiB (RDS)."),
            Attr("min_capacity", "number", "scaling.min_capacity", "Aurora Serverless v2 minimum ACUs."),
            Attr("max_capacity", "number", "scaling.max_capacity", "Aurora Serverless v2 maximum ACUs."),
            Attr("multi_az", "bool", "provider_config.multi_az", "Multi-AZ standby."),
            Attr(
                "backup_retention_days",
                "number",
                "backup_retention_days",
                "Automated backup retention in days.",
            ),
            Attr(
                "deletion_protection", "bool", "provider_config.deletion_protection", "Deletion protection."
            ),
        ),
    ),
    Var(
        "redis_instance_type",
        "caches[0].node_type",
        'Node type of the first cache ("" when there is none).',
        derive=first("caches", "node_type"),
        tf_type="string",
    ),
    Var(
        "elasticache_clusters",
        "caches",
        "ElastiCache Redis replication groups.",
        attrs=(
            Attr("name", "string", "name", "Replication group id suffix."),
            Attr("node_type", "string", "node_type", "Cache node type."),
            Attr("num_cache_clusters", "number", "cluster_size", "Number of cache nodes."),
            Attr("engine_version", "string", "provider_config.engine_version", "Redis version."),
        ),
    ),
    Var(
        "sqs_queues",
        "queues",
        "SQS queues.",
        attrs=(
            Attr("name", "string", "name", "Queue name suffix."),
            Attr("fifo", "bool", "config.fifo", "FIFO queue."),
            Attr(
                "visibility_timeout_seconds",
                "number",
                "config.visibility_timeout_seconds",
                "Visibility timeout.",
            ),
            Attr("message_retention_seconds", "number", "config.message_retention_seconds", "Retention."),
            Attr("delay_seconds", "number", "config.delay_seconds", "Delivery delay."),
            Attr(
                "max_receive_count",
                "number",
                "config.max_receive_count",
                "Receives before dead-lettering; 0 = no DLQ.",
            ),
        ),
    ),
    Var(
        "sns_topics",
        "topics",
        "SNS topics with their subscriptions (an sqs endpoint may name a queue of this Spec).",
        attrs=(
            Attr("name", "string", "name", "Topic name suffix."),
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
        "ddb_table_configuration",
        "nosql_tables",
        "DynamoDB tables.",
        attrs=(
            Attr("name", "string", "name", "Table name suffix."),
            Attr("hash_key", "string", "partition_key", "Partition (hash) key attribute."),
            Attr("range_key", "string", "sort_key", "Sort (range) key attribute; empty = none."),
            Attr("billing_mode", "string", "provider_config.billing_mode", "PAY_PER_REQUEST or PROVISIONED."),
            Attr("read_capacity", "number", "provider_config.read_capacity", "Read capacity (PROVISIONED)."),
            Attr(
                "write_capacity", "number", "provider_config.write_capacity", "Write capacity (PROVISIONED)."
            ),
            Attr("ttl_attribute", "string", "provider_config.ttl_attribute", "TTL attribute; empty = none."),
        ),
    ),
    Var(
        "bucket_configuration",
        "storage_buckets",
        "S3 buckets.",
        attrs=(
            Attr("name", "string", "name", "Bucket name suffix."),
            Attr("versioning", "bool", "versioning", "Object versioning."),
            Attr(
                "lifecycle_days",
                "number",
                "provider_config.lifecycle_days",
                "Expire objects after days; 0 = never.",
            ),
            Attr(
                "force_destroy", "bool", "provider_config.force_destroy", "Allow deleting a non-empty bucket."
            ),
        ),
    ),
    secrets_var(
        "secrets_manager_secrets",
        "Secrets Manager secrets: names and metadata only, never values.",
        "Secret name suffix.",
        "Metadata as tags (description, owner, ...).",
    ),
    apps_repositories_var(),
)

AWS = ProviderMapping(
    name="aws",
    template="aws",
    title="AWS",
    variables=VARIABLES,
    options=OPTIONS,
    checks=_checks,
)
