# Key Vault (RBAC) with the Spec's secret names and metadata as tags. Values are set out of
# band: Terraform creates an empty placeholder and never tracks the value afterwards.
# The generated MySQL admin passwords are the only values Terraform writes.

resource "azurerm_key_vault" "this" {
  name                       = substr("${local.compact}kv", 0, 24)
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = false
  soft_delete_retention_days = 7
  tags                       = var.tags
}

resource "azurerm_role_assignment" "runner_secrets_officer" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "this" {
  for_each     = { for s in var.key_vault_secrets : s.name => s }
  name         = each.key
  key_vault_id = azurerm_key_vault.this.id
  value        = ""
  content_type = lookup(each.value.metadata, "description", "set out of band")
  tags         = { for k, v in each.value.metadata : k => v if k != "description" }

  lifecycle {
    ignore_changes = [value, content_type]
  }

  depends_on = [azurerm_role_assignment.runner_secrets_officer]
}

resource "azurerm_key_vault_secret" "mysql_admin_password" {
  for_each     = random_password.mysql_admin
  name         = "${each.key}-admin-password"
  key_vault_id = azurerm_key_vault.this.id
  value        = each.value.result
  depends_on   = [azurerm_role_assignment.runner_secrets_officer]
}
