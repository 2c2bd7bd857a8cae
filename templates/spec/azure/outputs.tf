# Read by the post-apply stage (kubeconfig, job outputs). The sandbox declares the same names.

output "cluster_name" {
  description = "AKS cluster name."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = "https://${azurerm_kubernetes_cluster.this.fqdn}:443"
}

output "cluster_ca_certificate" {
  description = "Base64 PEM of the cluster CA."
  # The CA certificate is public; azurerm marks all of kube_config sensitive.
  value = nonsensitive(azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
}

output "network_id" {
  description = "VNet id (created or existing)."
  value       = local.network_id
}

output "database_endpoints" {
  description = "Database name -> server FQDN."
  value = merge(
    { for k, s in azurerm_postgresql_flexible_server.this : k => s.fqdn },
    { for k, s in azurerm_mysql_flexible_server.this : k => s.fqdn },
  )
}

output "cache_endpoints" {
  description = "Cache name -> host:port."
  value       = { for k, c in azurerm_redis_cache.this : k => "${c.hostname}:${c.ssl_port}" }
}

output "bucket_names" {
  description = "Spec bucket name -> storage container name."
  value       = { for k, c in azurerm_storage_container.this : k => c.name }
}

output "waf_policy_id" {
  description = "Front Door WAF policy id (empty when the WAF is off)."
  value       = local.waf_policy_id
}
