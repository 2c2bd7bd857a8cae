# A new VNet with an AKS subnet, or an existing VNet by resource id (its subnet named "aks"
# is used, by convention).

locals {
  vnet_prefix    = var.provision_vnet ? tonumber(split("/", var.vnet_cidr)[1]) : 0
  network_id     = var.provision_vnet ? azurerm_virtual_network.this[0].id : var.existing_vnet_id
  aks_subnet_id  = var.provision_vnet ? azurerm_subnet.aks[0].id : "${var.existing_vnet_id}/subnets/aks"
  data_subnet_id = var.provision_vnet ? azurerm_subnet.data[0].id : "${var.existing_vnet_id}/subnets/data"
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
  address_prefixes     = [cidrsubnet(var.vnet_cidr, var.aks_subnet_prefix_length - local.vnet_prefix, 0)]
}

resource "azurerm_subnet" "data" {
  count                = var.provision_vnet ? 1 : 0
  name                 = "data"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, var.aks_subnet_prefix_length - local.vnet_prefix, 1)]
  service_endpoints    = ["Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.ServiceBus"]
}
