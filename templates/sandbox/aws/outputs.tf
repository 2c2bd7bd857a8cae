# Same names and shapes as templates/spec/aws/outputs.tf.

output "cluster_name" {
  description = "EKS cluster name."
  value       = terraform_data.cluster.output.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = terraform_data.cluster.output.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64 PEM of the cluster CA."
  value       = base64encode("-----BEGIN CERTIFICATE-----\n${base64encode(sha256("ca/${local.seed}"))}\n-----END CERTIFICATE-----\n")
}

output "network_id" {
  description = "VPC id (created or existing)."
  value       = terraform_data.network.output.id
}

output "database_endpoints" {
  description = "Database name -> endpoint."
  value       = { for k, db in terraform_data.database : k => db.output.endpoint }
}

output "cache_endpoints" {
  description = "Cache name -> primary endpoint."
  value       = { for k, c in terraform_data.cache : k => c.output.endpoint }
}

output "bucket_names" {
  description = "Spec bucket name -> S3 bucket name."
  value       = { for k, b in terraform_data.bucket : k => b.output.bucket }
}

output "waf_policy_id" {
  description = "Id of the WAF policy (empty when the WAF is off)."
  value       = try(terraform_data.waf[0].id, "")
}

output "ingress_controller_role_arn" {
  description = "Stand-in for the load balancer controller's IAM role."
  value       = "arn:aws:iam::${var.aws_account_id}:role/${local.name}-lb-controller"
}

# Sandbox only: a sensitive value the executor must redact from job outputs and logs.
output "database_admin_password" {
  description = "Deterministic stand-in for a generated database admin password."
  value       = substr(sha256("admin-password/${local.seed}"), 0, 32)
  sensitive   = true
}
