# AWS shaped sandbox: one terraform_data per Spec item, with the same inputs the real
# template gives its resources, and made-up but deterministic ids and endpoints
# (hostnames under .invalid, which never resolve: nothing here reaches a network).

locals {
  name = "${var.project_name}-${var.environment}"
  # Deterministic fake ids: the same Spec always gets the same values.
  seed = sha256("${var.aws_account_id}/${var.region}/${local.name}/${var.spec_id}")
}

resource "terraform_data" "network" {
  input = {
    provision          = var.provision_vpc
    cidr               = var.vpc_cidr
    availability_zones = var.vpc_availability_zones
    enable_nat_gateway = var.vpc_enable_nat_gateway
    single_nat_gateway = var.vpc_single_nat_gateway
    id                 = var.provision_vpc ? "vpc-${substr(local.seed, 0, 17)}" : var.existing_vpc_id
    tags               = var.tags
  }
}

resource "terraform_data" "cluster" {
  input = {
    name                   = "${local.name}-eks"
    version                = var.eks_cluster_version
    instance_types         = var.eks_instance_types
    min_size               = var.eks_node_min_size
    max_size               = var.eks_node_max_size
    desired_size           = var.eks_node_desired_size
    admins                 = var.eks_cluster_admins
    capacity_type          = var.eks_capacity_type
    disk_size              = var.eks_node_disk_size
    endpoint_public_access = var.eks_endpoint_public_access
    addons                 = var.eks_addons
    network_id             = terraform_data.network.output.id
    endpoint               = "https://${lower(substr(local.seed, 0, 16))}.eks.${var.region}.sandbox.invalid"

    # The Spec's CIDRs plus the runner's egress, merged as the real template merges them.
    api_authorized_cidrs = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
  }
}

resource "terraform_data" "dns" {
  count = var.dns_enabled ? 1 : 0
  input = {
    zone_id = var.route53_zone_id
    domain  = var.domain_name
  }
}

resource "terraform_data" "waf" {
  count = var.dns_enabled && var.waf_enabled ? 1 : 0
  input = {
    name          = "${local.name}-waf"
    managed_rules = var.waf_managed_rules
    rate_limit    = var.waf_rate_limit
  }
}

resource "terraform_data" "database" {
  for_each = { for db in var.rds_config : db.name => db }
  input = merge(each.value, {
    identifier = "${local.name}-${each.key}"
    endpoint   = "${local.name}-${each.key}.${substr(local.seed, 0, 12)}.rds.${var.region}.sandbox.invalid"
  })
}

resource "terraform_data" "cache" {
  for_each = { for c in var.elasticache_clusters : c.name => c }
  input = merge(each.value, {
    endpoint = "${local.name}-${each.key}.${substr(local.seed, 0, 6)}.cache.${var.region}.sandbox.invalid"
  })
}

resource "terraform_data" "queue" {
  for_each = { for q in var.sqs_queues : q.name => q }
  input = merge(each.value, {
    url = "https://sqs.${var.region}.sandbox.invalid/${var.aws_account_id}/${local.name}-${each.key}${each.value.fifo ? ".fifo" : ""}"
  })
}

resource "terraform_data" "topic" {
  for_each = { for t in var.sns_topics : t.name => t }
  input = merge(each.value, {
    arn = "arn:aws:sns:${var.region}:${var.aws_account_id}:${local.name}-${each.key}"
  })
}

resource "terraform_data" "nosql_table" {
  for_each = { for t in var.ddb_table_configuration : t.name => t }
  input    = merge(each.value, { table_name = "${local.name}-${each.key}" })
}

resource "terraform_data" "bucket" {
  for_each = { for b in var.bucket_configuration : b.name => b }
  input    = merge(each.value, { bucket = "${local.name}-${each.key}" })
}

resource "terraform_data" "secret" {
  for_each = { for s in var.secrets_manager_secrets : s.name => s }
  input    = merge(each.value, { secret_name = "${local.name}/${each.key}" })
}

resource "terraform_data" "apps_repository" {
  for_each = { for r in var.apps_repositories : "${r.url}#${r.branch}:${r.path}" => r }
  input    = each.value
}
