# Encryption at rest: the Spec's customer-managed key (cluster.provider_config.encryption_key)
# or, when none is given, one key of this environment with yearly rotation. Every data store,
# queue, topic, secret, log group and the cluster's Kubernetes secrets use it.

data "aws_caller_identity" "current" {}

# The runner's role (not its session): the EKS access entry and the key policy name it.
data "aws_iam_session_context" "current" {
  arn = data.aws_caller_identity.current.arn
}

resource "aws_kms_key" "this" {
  count                   = var.encryption_key == "" ? 1 : 0
  description             = "Encryption at rest of ${local.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${var.aws_account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # SNS delivers into encrypted queues and publishes to encrypted topics.
        Sid       = "SnsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = var.aws_account_id } }
      },
      {
        # CloudWatch Logs encrypts the flow and WAF log groups of this account.
        Sid       = "LogsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${var.region}:${var.aws_account_id}:log-group:*" } }
      },
    ]
  })
}

locals {
  kms_key_arn = var.encryption_key != "" ? var.encryption_key : aws_kms_key.this[0].arn
}
