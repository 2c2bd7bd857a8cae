# Customer-managed key (cluster.provider_config.encryption_key: the resource id of a Key Vault
# key). When given, AKS disks (through a disk encryption set), the PostgreSQL and MySQL
# flexible servers, the storage account and Cosmos DB encrypt with it; else with
# platform-managed keys. The vault must have soft delete and purge protection on (Azure
# refuses a key without them) and admit Azure services through its firewall.

locals {
  cmk = var.encryption_key != ""
  # /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<vault>/keys/<key>
  # (CreateSpec checks the form); the services take the key's data-plane URL without a
  # version, so they follow its rotation.
  cmk_parts   = local.cmk ? regex("/vaults/([^/]+)/keys/([^/]+)$", var.encryption_key) : ["", ""]
  cmk_key_url = local.cmk ? "https://${local.cmk_parts[0]}.vault.azure.net/keys/${local.cmk_parts[1]}" : ""
}

# One identity the data services use to reach the key.
resource "azurerm_user_assigned_identity" "cmk" {
  count               = local.cmk ? 1 : 0
  name                = "${local.name}-cmk"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_role_assignment" "cmk_data" {
  count                = local.cmk ? 1 : 0
  scope                = var.encryption_key
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_user_assigned_identity.cmk[0].principal_id
}

# AKS OS and data disks.
resource "azurerm_disk_encryption_set" "this" {
  count                     = local.cmk ? 1 : 0
  name                      = "${local.name}-des"
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  key_vault_key_id          = local.cmk_key_url
  auto_key_rotation_enabled = true
  tags                      = var.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "cmk_disks" {
  count                = local.cmk ? 1 : 0
  scope                = var.encryption_key
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_disk_encryption_set.this[0].identity[0].principal_id
}
