# A new VNet with an AKS subnet, a subnet for private endpoints ("data") and one delegated
# subnet per database engine, each behind a network security group; or an existing VNet by
# resource id, whose subnets of the same names are used by convention. Data stores are
# reachable only through private endpoints / delegated subnets, resolved by private DNS zones
# linked to the VNet.

locals {
  vnet_prefix    = var.provision_vnet ? tonumber(split("/", var.vnet_cidr)[1]) : 0
  subnet_bits    = var.aks_subnet_prefix_length - local.vnet_prefix
  network_id     = var.provision_vnet ? azurerm_virtual_network.this[0].id : var.existing_vnet_id
  aks_subnet_id  = var.provision_vnet ? azurerm_subnet.aks[0].id : "${var.existing_vnet_id}/subnets/aks"
  data_subnet_id = var.provision_vnet ? azurerm_subnet.data[0].id : "${var.existing_vnet_id}/subnets/data"
  db_subnet_ids = {
    for engine, s in { postgres = "postgres", mysql = "mysql" } :
    engine => var.provision_vnet ? azurerm_subnet.db[engine].id : "${var.existing_vnet_id}/subnets/${s}"
  }
  # Private DNS zone per kind of private endpoint / delegated server this Spec has.
  private_dns_zones = merge(
    length(local.postgres) > 0 ? { postgres = "privatelink.postgres.database.azure.com" } : {},
    length(local.mysql) > 0 ? { mysql = "privatelink.mysql.database.azure.com" } : {},
    length(var.azure_redis_caches) > 0 ? { redis = "privatelink.redis.cache.windows.net" } : {},
    length(var.cosmos_db_collections) > 0 ? { cosmos = "privatelink.documents.azure.com" } : {},
    length(var.storage_containers) > 0 ? { blob = "privatelink.blob.core.windows.net" } : {},
    { vault = "privatelink.vaultcore.azure.net" },
  )
}

resource "azurerm_virtual_network" "this" {
  count               = var.provision_vnet ? 1 : 0
  name                = "${local.name}-vnet"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.vnet_cidr]
  tags                = var.tags
}

resource "azurerm_subnet" "aks" {
  count                = var.provision_vnet ? 1 : 0
  name                 = "aks"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, local.subnet_bits, 0)]
}

resource "azurerm_subnet" "data" {
  count                = var.provision_vnet ? 1 : 0
  name                 = "data"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, local.subnet_bits, 1)]
  service_endpoints    = ["Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.ServiceBus"]
}

# Flexible servers live inside a subnet delegated to their service (one subnet per engine).
resource "azurerm_subnet" "db" {
  for_each             = var.provision_vnet ? { postgres = 2, mysql = 3 } : {}
  name                 = each.key
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, local.subnet_bits, each.value)]

  delegation {
    name = "flexible-servers"
    service_delegation {
      name    = each.key == "postgres" ? "Microsoft.DBforPostgreSQL/flexibleServers" : "Microsoft.DBforMySQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

# Inside the VNet only: Azure's default rules allow VNet traffic and deny the internet inbound.
resource "azurerm_network_security_group" "this" {
  count               = var.provision_vnet ? 1 : 0
  name                = "${local.name}-nsg"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_subnet_network_security_group_association" "this" {
  for_each = var.provision_vnet ? merge(
    { aks = azurerm_subnet.aks[0].id, data = azurerm_subnet.data[0].id },
    { for k, s in azurerm_subnet.db : k => s.id },
  ) : {}
  subnet_id                 = each.value
  network_security_group_id = azurerm_network_security_group.this[0].id
}

resource "azurerm_private_dns_zone" "this" {
  for_each            = local.private_dns_zones
  name                = each.value
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "this" {
  for_each              = local.private_dns_zones
  name                  = "${local.name}-${each.key}"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.this[each.key].name
  virtual_network_id    = local.network_id
  tags                  = var.tags
}

locals {
  # Private endpoints: name -> (resource id, subresource, DNS zone key).
  private_endpoints = merge(
    { for k, c in azurerm_redis_cache.this : "redis-${k}" => { id = c.id, subresource = "redisCache", zone = "redis" } },
    { for a in azurerm_cosmosdb_account.this : "cosmos" => { id = a.id, subresource = "Sql", zone = "cosmos" } },
    { for a in azurerm_storage_account.this : "blob" => { id = a.id, subresource = "blob", zone = "blob" } },
    { vault = { id = azurerm_key_vault.this.id, subresource = "vault", zone = "vault" } },
  )
}

resource "azurerm_private_endpoint" "this" {
  for_each            = local.private_endpoints
  name                = "${local.name}-${each.key}-pe"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = local.data_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "${local.name}-${each.key}"
    private_connection_resource_id = each.value.id
    subresource_names              = [each.value.subresource]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = each.value.zone
    private_dns_zone_ids = [azurerm_private_dns_zone.this[each.value.zone].id]
  }
}
