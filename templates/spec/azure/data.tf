# Azure Database flexible servers (PostgreSQL with Entra ID authentication only; MySQL with
# a generated admin password kept in Key Vault) in delegated subnets, Azure Cache for Redis,
# Cosmos DB (SQL API) and private Blob containers in one storage account: none reachable from
# the internet (private endpoints, see network.tf), TLS 1.2 everywhere.

locals {
  postgres = { for db in var.azure_databases : db.name => db if db.engine == "postgres" }
  mysql    = { for db in var.azure_databases : db.name => db if db.engine == "mysql" }
}

resource "azurerm_postgresql_flexible_server" "this" {
  # checkov:skip=CKV_AZURE_136:geo-redundant backups need a paired region and cannot be turned on later; zone-redundant HA is the Spec's option
  # checkov:skip=CKV2_AZURE_57:the server is injected into a delegated subnet (VNet integration), which excludes private endpoints
  for_each                      = local.postgres
  name                          = "${local.name}-${each.key}"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  version                       = each.value.engine_version
  sku_name                      = each.value.sku_name
  storage_mb                    = each.value.storage_gb * 1024 # a fixed size: CreateSpec checks storage_gb
  backup_retention_days         = each.value.backup_retention_days
  public_network_access_enabled = false
  delegated_subnet_id           = local.db_subnet_ids["postgres"]
  private_dns_zone_id           = azurerm_private_dns_zone.this["postgres"].id
  tags = merge(var.tags, {
    min_capacity = tostring(each.value.min_capacity)
    max_capacity = tostring(each.value.max_capacity)
  })

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = false
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  dynamic "identity" {
    for_each = local.cmk ? [1] : []
    content {
      type         = "UserAssigned"
      identity_ids = [azurerm_user_assigned_identity.cmk[0].id]
    }
  }

  dynamic "customer_managed_key" {
    for_each = local.cmk ? [1] : []
    content {
      key_vault_key_id                  = local.cmk_key_url
      primary_user_assigned_identity_id = azurerm_user_assigned_identity.cmk[0].id
    }
  }

  dynamic "high_availability" {
    for_each = each.value.high_availability != "Disabled" ? [each.value.high_availability] : []
    content {
      mode = high_availability.value
    }
  }

  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }

  # The private DNS zone must be linked to the VNet before the server is created in it, and
  # the identity must reach the key.
  depends_on = [azurerm_private_dns_zone_virtual_network_link.this, azurerm_role_assignment.cmk_data]
}

resource "random_password" "mysql_admin" {
  for_each = local.mysql
  length   = 32
  special  = false
}

resource "azurerm_mysql_flexible_server" "this" {
  # checkov:skip=CKV_AZURE_94:geo-redundant backups need a paired region and cannot be turned on later; zone-redundant HA is the Spec's option
  # checkov:skip=CKV2_AZURE_56:the server is injected into a delegated subnet (VNet integration), which excludes private endpoints
  # checkov:skip=CKV_AZURE_53:a server in a delegated subnet has no public endpoint (the argument is computed from the subnet)
  for_each               = local.mysql
  name                   = "${local.name}-${each.key}"
  resource_group_name    = azurerm_resource_group.this.name
  location               = azurerm_resource_group.this.location
  version                = each.value.engine_version
  sku_name               = each.value.sku_name
  backup_retention_days  = each.value.backup_retention_days
  administrator_login    = "app_admin"
  administrator_password = random_password.mysql_admin[each.key].result
  delegated_subnet_id    = local.db_subnet_ids["mysql"]
  private_dns_zone_id    = azurerm_private_dns_zone.this["mysql"].id
  tags = merge(var.tags, {
    min_capacity = tostring(each.value.min_capacity)
    max_capacity = tostring(each.value.max_capacity)
  })

  storage {
    size_gb = each.value.storage_gb
  }

  dynamic "identity" {
    for_each = local.cmk ? [1] : []
    content {
      type         = "UserAssigned"
      identity_ids = [azurerm_user_assigned_identity.cmk[0].id]
    }
  }

  dynamic "customer_managed_key" {
    for_each = local.cmk ? [1] : []
    content {
      key_vault_key_id                  = local.cmk_key_url
      primary_user_assigned_identity_id = azurerm_user_assigned_identity.cmk[0].id
    }
  }

  dynamic "high_availability" {
    for_each = each.value.high_availability != "Disabled" ? [each.value.high_availability] : []
    content {
      mode = high_availability.value
    }
  }

  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }

  # The private DNS zone must be linked to the VNet before the server is created in it, and
  # the identity must reach the key.
  depends_on = [azurerm_private_dns_zone_virtual_network_link.this, azurerm_role_assignment.cmk_data]
}

resource "azurerm_redis_cache" "this" {
  # checkov:skip=CKV_AZURE_230:geo-replication needs Premium and a second region; the SKU is the Spec's choice
  for_each                      = { for c in var.azure_redis_caches : c.name => c }
  name                          = "${local.name}-${each.key}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  sku_name                      = each.value.sku_name
  family                        = each.value.family
  capacity                      = each.value.capacity
  shard_count                   = each.value.sku_name == "Premium" ? each.value.shard_count : null
  redis_version                 = each.value.redis_version
  minimum_tls_version           = "1.2"
  non_ssl_port_enabled          = false
  public_network_access_enabled = false
  tags                          = var.tags
}

resource "azurerm_cosmosdb_account" "this" {
  count               = length(var.cosmos_db_collections) > 0 ? 1 : 0
  name                = "${local.compact}-cosmos"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  offer_type          = "Standard"
  kind                = "GlobalDocumentDB"
  # Apps sign in with Entra ID; nothing but the private endpoint reaches the account.
  local_authentication_disabled      = true
  public_network_access_enabled      = false
  is_virtual_network_filter_enabled  = true
  access_key_metadata_writes_enabled = false
  key_vault_key_id                   = local.cmk ? local.cmk_key_url : null
  default_identity_type              = local.cmk ? "UserAssignedIdentity=${azurerm_user_assigned_identity.cmk[0].id}" : null
  tags                               = var.tags

  dynamic "identity" {
    for_each = local.cmk ? [1] : []
    content {
      type         = "UserAssigned"
      identity_ids = [azurerm_user_assigned_identity.cmk[0].id]
    }
  }

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = azurerm_resource_group.this.location
    failover_priority = 0
  }
  depends_on = [azurerm_role_assignment.cmk_data]
}

resource "azurerm_cosmosdb_sql_database" "this" {
  count               = length(var.cosmos_db_collections) > 0 ? 1 : 0
  name                = local.name
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this[0].name
}

resource "azurerm_cosmosdb_sql_container" "this" {
  for_each            = { for t in var.cosmos_db_collections : t.name => t }
  name                = each.key
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this[0].name
  database_name       = azurerm_cosmosdb_sql_database.this[0].name
  partition_key_paths = ["/${each.value.partition_key}"]
  throughput          = each.value.throughput

  indexing_policy {
    indexing_mode = "consistent"

    included_path {
      path = "/*"
    }

    dynamic "composite_index" {
      for_each = each.value.sort_key != "" ? [each.value.sort_key] : []
      content {
        index {
          path  = "/${each.value.partition_key}"
          order = "Ascending"
        }
        index {
          path  = "/${composite_index.value}"
          order = "Ascending"
        }
      }
    }
  }
}

resource "azurerm_storage_account" "this" {
  # checkov:skip=CKV_AZURE_33:the account holds blob containers only; the queue service is unused
  # checkov:skip=CKV2_AZURE_41:shared keys are off, so there are no account SAS tokens to expire
  # checkov:skip=CKV_AZURE_206:ZRS keeps three copies across the region's zones; copying data to a paired region is a residency decision
  # checkov:skip=CKV_AZURE_43:the name is built from the environment and a hash: 3-24 lowercase alphanumerics by construction
  count                           = length(var.storage_containers) > 0 ? 1 : 0
  name                            = local.compact
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  public_network_access_enabled   = false
  shared_access_key_enabled       = false
  tags                            = var.tags

  dynamic "identity" {
    for_each = local.cmk ? [1] : []
    content {
      type         = "UserAssigned"
      identity_ids = [azurerm_user_assigned_identity.cmk[0].id]
    }
  }

  dynamic "customer_managed_key" {
    for_each = local.cmk ? [1] : []
    content {
      key_vault_key_id          = local.cmk_key_url
      user_assigned_identity_id = azurerm_user_assigned_identity.cmk[0].id
    }
  }

  blob_properties {
    versioning_enabled = anytrue([for c in var.storage_containers : c.versioning])

    delete_retention_policy {
      days = 7
    }

    container_delete_retention_policy {
      days = 7
    }
  }
  depends_on = [azurerm_role_assignment.cmk_data]
}

resource "azurerm_storage_container" "this" {
  # checkov:skip=CKV2_AZURE_21:blob read logging is a diagnostic setting of the account's monitoring workspace, not of the container
  for_each              = { for c in var.storage_containers : c.name => c }
  name                  = each.key
  storage_account_id    = azurerm_storage_account.this[0].id
  container_access_type = "private"
}
