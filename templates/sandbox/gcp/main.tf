# GCP shaped sandbox: one terraform_data per Spec item, with the same inputs the real
# template gives its resources, and made-up but deterministic ids and endpoints
# (hostnames under .invalid, which never resolve: nothing here reaches a network).

locals {
  name = "${var.project_name}-${var.environment}"
  # Deterministic fake ids: the same Spec always gets the same values.
  seed = sha256("${var.project_id}/${var.region}/${local.name}/${var.spec_id}")
}

resource "terraform_data" "network" {
  input = {
    provision     = var.provision_network
    cidr          = var.network_cidr
    pods_cidr     = var.gke_pods_cidr
    services_cidr = var.gke_services_cidr
    id            = var.provision_network ? "projects/${var.project_id}/global/networks/${local.name}" : var.existing_network_id
    labels        = var.labels
  }
}

resource "terraform_data" "cluster" {
  input = {
    name            = "${local.name}-gke"
    version         = var.gke_cluster_version
    machine_types   = var.gke_instance_types
    min_size        = var.gke_node_min_size
    max_size        = var.gke_node_max_size
    desired_size    = var.gke_node_desired_size
    admins          = var.gke_cluster_admins
    release_channel = var.gke_release_channel
    disk_size_gb    = var.gke_disk_size_gb
    spot            = var.gke_spot
    private_nodes   = var.gke_private_nodes
    network_id      = terraform_data.network.output.id
    endpoint        = "https://${substr(local.seed, 0, 16)}.gke.${var.region}.sandbox.invalid"

    # The Spec's CIDRs plus the runner's egress, merged as the real template merges them.
    api_authorized_cidrs = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
  }
}

resource "terraform_data" "dns" {
  count = var.dns_enabled ? 1 : 0
  input = {
    managed_zone = var.dns_managed_zone
    domain       = var.domain_name
  }
}

resource "terraform_data" "waf" {
  count = var.dns_enabled && var.cloud_armor_enabled ? 1 : 0
  input = {
    name              = "${local.name}-armor"
    preconfigured     = var.cloud_armor_preconfigured_rules
    rate_limit        = var.cloud_armor_rate_limit
    first_sql_engine  = var.cloud_sql_engine
    first_cache_tier  = var.memorystore_instance_type
    tenant_zone_id    = var.tenant_zone_id
    applies_to_domain = var.domain_name
  }
}

resource "terraform_data" "database" {
  for_each = { for db in var.cloud_sql_databases : db.name => db }
  input = merge(each.value, {
    instance = "${local.name}-${each.key}"
    endpoint = "10.${parseint(substr(sha256(each.key), 0, 2), 16)}.0.3"
  })
}

resource "terraform_data" "cache" {
  for_each = { for c in var.memorystore_instances : c.name => c }
  input = merge(each.value, {
    endpoint = "10.${parseint(substr(sha256(each.key), 0, 2), 16)}.1.4:6379"
  })
}

resource "terraform_data" "topic" {
  for_each = { for t in var.pubsub_topics : t.name => t }
  input = merge(each.value, {
    id = "projects/${var.project_id}/topics/${local.name}-${each.key}"
  })
}

resource "terraform_data" "nosql_table" {
  for_each = { for t in var.firestore_databases : t.name => t }
  input    = merge(each.value, { database = "${local.name}-${each.key}" })
}

resource "terraform_data" "bucket" {
  for_each = { for b in var.cloud_storage_buckets : b.name => b }
  input    = merge(each.value, { bucket = "${local.name}-${each.key}" })
}

resource "terraform_data" "secret" {
  for_each = { for s in var.secret_manager_secrets : s.name => s }
  input    = merge(each.value, { secret_id = "${local.name}-${each.key}" })
}

resource "terraform_data" "apps_repository" {
  for_each = { for r in var.apps_repositories : "${r.url}#${r.branch}:${r.path}" => r }
  input    = each.value
}
