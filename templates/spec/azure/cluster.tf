# AKS with an autoscaled default node pool sized from the Spec, Entra ID RBAC and the Spec's
# admin groups.

resource "azurerm_kubernetes_cluster" "this" {
  name                      = "${local.name}-aks"
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  dns_prefix                = local.name
  kubernetes_version        = var.aks_cluster_version
  sku_tier                  = var.aks_sku_tier
  automatic_upgrade_channel = var.aks_automatic_upgrade_channel == "none" ? null : var.aks_automatic_upgrade_channel
  tags                      = var.tags

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
  }

  # The autoscaler owns the node count once the pool exists.
  lifecycle {
    ignore_changes = [default_node_pool[0].node_count]
  }
}
