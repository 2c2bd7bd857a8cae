# Azure shaped sandbox: one terraform_data per Spec item, with the same inputs the real
# template gives its resources, and made-up but deterministic ids and endpoints
# (hostnames under .invalid, which never resolve: nothing here reaches a network).

locals {
  name = "${var.project_name}-${var.environment}"
  # Deterministic fake ids: the same Spec always gets the same values.
  seed = sha256("${var.subscription_id}/${var.location}/${local.name}/${var.spec_id}")
  rg   = "/subscriptions/${var.subscription_id}/resourceGroups/${var.resource_group_name}"
}

resource "terraform_data" "resource_group" {
  input = {
    name     = var.resource_group_name
    location = var.location
    tags     = var.tags
    zone     = var.tenant_zone_id
  }
}

resource "terraform_data" "network" {
  input = {
    provision     = var.provision_vnet
    cidr          = var.vnet_cidr
    subnet_prefix = var.aks_subnet_prefix_length
    id            = var.provision_vnet ? "${local.rg}/providers/Microsoft.Network/virtualNetworks/${local.name}-vnet" : var.existing_vnet_id
    group         = terraform_data.resource_group.output.name
  }
}

resource "terraform_data" "cluster" {
  input = {
    name              = "${local.name}-aks"
    version           = var.aks_cluster_version
    vm_sizes          = var.aks_instance_types
    min_size          = var.aks_node_min_size
    max_size          = var.aks_node_max_size
    desired_size      = var.aks_node_desired_size
    admin_group_ids   = var.aks_cluster_admins
    sku_tier          = var.aks_sku_tier
    os_disk_size_gb   = var.aks_os_disk_size_gb
    upgrade_channel   = var.aks_automatic_upgrade_channel
    network_id        = terraform_data.network.output.id
    endpoint          = "https://${local.name}-${substr(local.seed, 0, 8)}.aks.${var.location}.sandbox.invalid:443"
    first_db_engine   = var.azure_db_engine
    first_cache_sku   = var.azure_cache_sku
    subscription_id   = var.subscription_id
    tenant_zone_id    = var.tenant_zone_id
    resource_group_id = local.rg

    # The Spec's CIDRs plus the runner's egress, merged as the real template merges them.
    api_authorized_cidrs = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
  }
}

resource "terraform_data" "dns" {
  count = var.dns_enabled ? 1 : 0
  input = {
    zone   = var.dns_zone_name
    domain = var.domain_name
  }
}

resource "terraform_data" "waf" {
  count = var.dns_enabled && var.front_door_waf_enabled ? 1 : 0
  input = {
    name      = "${replace(local.name, "-", "")}waf"
    mode      = var.front_door_waf_mode
    rule_sets = var.front_door_waf_rule_sets
  }
}

resource "terraform_data" "database" {
  for_each = { for db in var.azure_databases : db.name => db }
  input = merge(each.value, {
    server   = "${local.name}-${each.key}"
    endpoint = "${local.name}-${each.key}.${each.value.engine}.${var.location}.sandbox.invalid"
  })
}

resource "terraform_data" "cache" {
  for_each = { for c in var.azure_redis_caches : c.name => c }
  input = merge(each.value, {
    endpoint = "${local.name}-${each.key}.redis.${var.location}.sandbox.invalid:6380"
  })
}

resource "terraform_data" "queue" {
  for_each = { for q in var.service_bus_queues : q.name => q }
  input    = merge(each.value, { namespace = "${local.name}-bus" })
}

resource "terraform_data" "topic" {
  for_each = { for t in var.service_bus_topics : t.name => t }
  input    = merge(each.value, { namespace = "${local.name}-bus" })
}

resource "terraform_data" "nosql_table" {
  for_each = { for t in var.cosmos_db_collections : t.name => t }
  input    = merge(each.value, { account = "${local.name}-cosmos" })
}

resource "terraform_data" "bucket" {
  for_each = { for b in var.storage_containers : b.name => b }
  input    = merge(each.value, { container = each.key, account = substr(replace("${local.name}${substr(local.seed, 0, 8)}", "-", ""), 0, 24) })
}

resource "terraform_data" "secret" {
  for_each = { for s in var.key_vault_secrets : s.name => s }
  input    = merge(each.value, { vault = "${substr(local.name, 0, 20)}-kv" })
}

resource "terraform_data" "apps_repository" {
  for_each = { for r in var.apps_repositories : "${r.url}#${r.branch}:${r.path}" => r }
  input    = each.value
}
