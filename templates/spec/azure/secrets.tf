# Key Vault (RBAC) with the Spec's secret names and metadata as tags. Values are set out of
# band: Terraform creates an empty placeholder and never tracks the value afterwards.
# The generated MySQL admin passwords are the only values Terraform writes.

resource "azurerm_key_vault" "this" {
  # checkov:skip=CKV_AZURE_189:the runner writes secrets from outside the VNet; network_acls deny everything but its CIDRs
  name                       = "kv${local.compact}" # 24 at most, starts with a letter
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  # The runner writes secrets over the data plane: only its CIDRs (and the private endpoint).
  public_network_access_enabled = true

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = local.api_cidrs
  }
  soft_delete_retention_days = 7
  tags                       = var.tags
}

resource "azurerm_role_assignment" "runner_secrets_officer" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "this" {
  # checkov:skip=CKV_AZURE_41:values are set out of band by their owners, who own their expiry
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
  # checkov:skip=CKV_AZURE_41:the admin password lives as long as its server; rotation is a new apply
  for_each     = random_password.mysql_admin
  name         = "${each.key}-admin-password"
  key_vault_id = azurerm_key_vault.this.id
  value        = each.value.result
  content_type = "password"
  depends_on   = [azurerm_role_assignment.runner_secrets_officer]
}
