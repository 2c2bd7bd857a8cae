# Read by the post-apply stage (kubeconfig, job outputs). The sandbox declares the same names.

output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64 PEM of the cluster CA."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "network_id" {
  description = "VPC id (created or existing)."
  value       = local.vpc_id
}

output "database_endpoints" {
  description = "Database name -> endpoint."
  value = merge(
    { for k, db in aws_db_instance.this : k => db.address },
    { for k, c in aws_rds_cluster.this : k => c.endpoint },
  )
}

output "cache_endpoints" {
  description = "Cache name -> primary endpoint."
  value       = { for k, c in aws_elasticache_replication_group.this : k => c.primary_endpoint_address }
}

output "bucket_names" {
  description = "Spec bucket name -> S3 bucket name."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "waf_policy_id" {
  description = "ARN of the WAF web ACL (empty when the WAF is off)."
  value       = try(aws_wafv2_web_acl.this[0].arn, "")
}

output "ingress_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller (service account kube-system/aws-load-balancer-controller); it attaches waf_policy_id."
  value       = aws_iam_role.lb_controller.arn
}
