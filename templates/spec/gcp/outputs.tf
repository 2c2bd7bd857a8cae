# Read by the post-apply stage (kubeconfig, job outputs). The sandbox declares the same names.

output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "cluster_ca_certificate" {
  description = "Base64 PEM of the cluster CA."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "network_id" {
  description = "VPC network id (created or existing)."
  value       = local.network_id
}

output "database_endpoints" {
  description = "Database name -> private IP."
  value       = { for k, db in google_sql_database_instance.this : k => db.private_ip_address }
}

output "cache_endpoints" {
  description = "Cache name -> host:port."
  value       = { for k, c in google_redis_instance.this : k => "${c.host}:${c.port}" }
}

output "bucket_names" {
  description = "Spec bucket name -> GCS bucket name."
  value       = { for k, b in google_storage_bucket.this : k => b.name }
}

output "waf_policy_id" {
  description = "Cloud Armor security policy id (empty when the WAF is off)."
  value       = local.waf_policy_id
}
