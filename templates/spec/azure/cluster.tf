# AKS with an autoscaled default node pool sized from the Spec, Entra ID RBAC (no local
# accounts) with the Spec's admin groups and the runner as cluster admins, Azure network
# policies, and an API server that answers the Spec's authorised CIDRs only (private when
# there are none).

locals {
  # The Spec's CIDRs plus the runner's egress (runner.auto.tfvars.json): post-apply steps
  # and the Key Vault writes come from the runner.
  api_cidrs = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
}

resource "azurerm_kubernetes_cluster" "this" {
  # checkov:skip=CKV_AZURE_115:the API is private when no authorised CIDRs are given; with them the runner reaches it through authorized_ip_ranges
  # checkov:skip=CKV_AZURE_226:ephemeral OS disks depend on the VM size's cache, which the Spec chooses
  # checkov:skip=CKV_AZURE_232:one pool runs system and app pods; a separate system pool is a sizing choice of the Spec
  # checkov:skip=CKV_AZURE_227:host encryption must be enabled on the subscription first (a feature registration outside Terraform)
  # checkov:skip=CKV_AZURE_168:max pods follows the Azure CNI default (30/node) sized for the Spec's subnet
  name                      = "${local.name}-aks"
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  dns_prefix                = local.name
  kubernetes_version        = var.aks_cluster_version
  sku_tier                  = var.aks_sku_tier
  automatic_upgrade_channel = var.aks_automatic_upgrade_channel == "none" ? null : var.aks_automatic_upgrade_channel
  local_account_disabled    = true
  private_cluster_enabled   = length(local.api_cidrs) == 0
  azure_policy_enabled      = true
  disk_encryption_set_id    = local.cmk ? azurerm_disk_encryption_set.this[0].id : null
  tags                      = var.tags

  dynamic "api_server_access_profile" {
    for_each = length(local.api_cidrs) > 0 ? [local.api_cidrs] : []
    content {
      authorized_ip_ranges = api_server_access_profile.value
    }
  }

  oms_agent {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  default_node_pool {
    name                 = "default"
    vm_size              = var.aks_instance_types[0]
    auto_scaling_enabled = true
    min_count            = var.aks_node_min_size
    max_count            = var.aks_node_max_size
    node_count           = var.aks_node_desired_size
    os_disk_size_gb      = var.aks_os_disk_size_gb
    vnet_subnet_id       = local.aks_subnet_id
  }

  identity {
    type = "SystemAssigned"
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    admin_group_object_ids = var.aks_cluster_admins
  }

  network_profile {
    network_plugin = "azure"
    network_policy = "azure"
  }

  # The autoscaler owns the node count once the pool exists.
  lifecycle {
    ignore_changes = [default_node_pool[0].node_count]
  }

  # The disk encryption set must reach the key before disks are created with it.
  depends_on = [azurerm_role_assignment.cmk_disks]
}

# Container insights and control plane logs.
resource "azurerm_log_analytics_workspace" "this" {
  name                = "${local.name}-logs"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 90
  tags                = var.tags
}

# The runner installs ArgoCD after apply: with local accounts off it needs an Azure RBAC role.
resource "azurerm_role_assignment" "runner_cluster_admin" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = data.azurerm_client_config.current.object_id
}
