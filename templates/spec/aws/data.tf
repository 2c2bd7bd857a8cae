# Databases (RDS instances, or Aurora Serverless v2 for aurora-* engines), ElastiCache Redis,
# DynamoDB tables and S3 buckets, all private and encrypted with the environment's key.
# Master passwords are managed by RDS in Secrets Manager, so no password ever appears in
# variables, state or outputs; apps sign in with IAM database authentication. Production
# environments always get deletion protection and a final snapshot.

locals {
  aurora = { for db in var.rds_config : db.name => db if startswith(db.engine, "aurora-") }
  rds    = { for db in var.rds_config : db.name => db if !startswith(db.engine, "aurora-") }
  # Performance Insights is not offered on the smallest burstable classes.
  no_performance_insights = "^db\\.t[234]g?\\.(micro|small)$"
  # Log types each engine can export to CloudWatch.
  db_log_exports = {
    postgres            = ["postgresql", "upgrade"]
    mysql               = ["audit", "error", "general", "slowquery"]
    mariadb             = ["audit", "error", "general", "slowquery"]
    "aurora-postgresql" = ["postgresql"]
    "aurora-mysql"      = ["audit", "error", "general", "slowquery"]
  }
}

resource "aws_db_subnet_group" "this" {
  count      = length(var.rds_config) > 0 ? 1 : 0
  name       = local.name
  subnet_ids = local.private_subnet_ids
}

# Enhanced monitoring (OS metrics every 60 s) publishes through this role.
resource "aws_iam_role" "rds_monitoring" {
  count = length(var.rds_config) > 0 ? 1 : 0
  name  = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  count      = length(aws_iam_role.rds_monitoring)
  role       = aws_iam_role.rds_monitoring[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  # checkov:skip=CKV_AWS_133:checkov cannot resolve each.value through local.rds; the mapper refuses backup_retention_days < 1
  # checkov:skip=CKV_AWS_353:Performance Insights is on for every class that offers it; RDS refuses it on db.t*.micro/small
  # checkov:skip=CKV_AWS_157:multi_az is the Spec's availability choice (databases[].provider_config.multi_az)
  for_each                              = local.rds
  identifier                            = "${local.name}-${each.key}"
  engine                                = each.value.engine
  engine_version                        = each.value.engine_version
  instance_class                        = each.value.instance_class
  allocated_storage                     = each.value.allocated_storage
  storage_encrypted                     = true
  kms_key_id                            = local.kms_key_arn
  multi_az                              = each.value.multi_az
  backup_retention_period               = each.value.backup_retention_days
  deletion_protection                   = var.production ? true : each.value.deletion_protection
  skip_final_snapshot                   = !(var.production || each.value.deletion_protection)
  final_snapshot_identifier             = "${local.name}-${each.key}-final"
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = local.db_log_exports[each.value.engine]
  performance_insights_enabled          = !can(regex(local.no_performance_insights, each.value.instance_class))
  performance_insights_kms_key_id       = can(regex(local.no_performance_insights, each.value.instance_class)) ? null : local.kms_key_arn
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring[0].arn
  username                              = "app_admin"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = local.kms_key_arn
  db_subnet_group_name                  = aws_db_subnet_group.this[0].name
  vpc_security_group_ids                = [aws_security_group.data.id]
  publicly_accessible                   = false
  performance_insights_retention_period = can(regex(local.no_performance_insights, each.value.instance_class)) ? null : 7
}

resource "aws_rds_cluster" "this" {
  # checkov:skip=CKV_AWS_133:checkov cannot resolve each.value through local.aurora; the mapper refuses backup_retention_days < 1
  # checkov:skip=CKV2_AWS_8:automated backups with point-in-time restore (backup_retention_period) cover it; AWS Backup plans are an account-level choice
  for_each                            = local.aurora
  cluster_identifier                  = "${local.name}-${each.key}"
  engine                              = each.value.engine
  engine_mode                         = "provisioned"
  engine_version                      = each.value.engine_version
  storage_encrypted                   = true
  kms_key_id                          = local.kms_key_arn
  backup_retention_period             = each.value.backup_retention_days
  deletion_protection                 = var.production ? true : each.value.deletion_protection
  skip_final_snapshot                 = !(var.production || each.value.deletion_protection)
  final_snapshot_identifier           = "${local.name}-${each.key}-final"
  copy_tags_to_snapshot               = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = local.db_log_exports[each.value.engine]
  master_username                     = "app_admin"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = local.kms_key_arn
  db_subnet_group_name                = aws_db_subnet_group.this[0].name
  vpc_security_group_ids              = [aws_security_group.data.id]

  serverlessv2_scaling_configuration {
    min_capacity = each.value.min_capacity
    max_capacity = each.value.max_capacity
  }
}

# One writer per Aurora cluster, plus a reader in another zone when multi_az is set.
resource "aws_rds_cluster_instance" "writer" {
  for_each                        = local.aurora
  identifier                      = "${local.name}-${each.key}-1"
  cluster_identifier              = aws_rds_cluster.this[each.key].id
  instance_class                  = each.value.instance_class
  engine                          = aws_rds_cluster.this[each.key].engine
  engine_version                  = aws_rds_cluster.this[each.key].engine_version
  auto_minor_version_upgrade      = true
  performance_insights_enabled    = true
  performance_insights_kms_key_id = local.kms_key_arn
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring[0].arn
  publicly_accessible             = false
}

resource "aws_rds_cluster_instance" "reader" {
  for_each                        = { for k, db in local.aurora : k => db if db.multi_az }
  identifier                      = "${local.name}-${each.key}-2"
  cluster_identifier              = aws_rds_cluster.this[each.key].id
  instance_class                  = each.value.instance_class
  engine                          = aws_rds_cluster.this[each.key].engine
  engine_version                  = aws_rds_cluster.this[each.key].engine_version
  auto_minor_version_upgrade      = true
  performance_insights_enabled    = true
  performance_insights_kms_key_id = local.kms_key_arn
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring[0].arn
  publicly_accessible             = false
  depends_on                      = [aws_rds_cluster_instance.writer]
}

resource "aws_elasticache_subnet_group" "this" {
  count      = length(var.elasticache_clusters) > 0 ? 1 : 0
  name       = local.name
  subnet_ids = local.private_subnet_ids
}

resource "aws_elasticache_replication_group" "this" {
  # checkov:skip=CKV_AWS_31:TLS is always on; clients authenticate with users/IAM managed by the apps, so no AUTH token sits in Terraform state
  # checkov:skip=CKV2_AWS_50:automatic failover needs a replica: it is on whenever cluster_size > 1
  for_each                   = { for c in var.elasticache_clusters : c.name => c }
  replication_group_id       = "${local.name}-${each.key}"
  description                = "Redis ${each.key} of ${local.name}"
  engine                     = "redis"
  engine_version             = each.value.engine_version
  node_type                  = each.value.node_type
  num_cache_clusters         = each.value.num_cache_clusters
  automatic_failover_enabled = each.value.num_cache_clusters > 1
  multi_az_enabled           = each.value.num_cache_clusters > 1
  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auto_minor_version_upgrade = true
  subnet_group_name          = aws_elasticache_subnet_group.this[0].name
  security_group_ids         = [aws_security_group.data.id]
}

resource "aws_dynamodb_table" "this" {
  # checkov:skip=CKV2_AWS_16:tables default to on-demand capacity (billing_mode PAY_PER_REQUEST), which scales without Auto Scaling
  for_each                    = { for t in var.ddb_table_configuration : t.name => t }
  name                        = "${local.name}-${each.key}"
  billing_mode                = each.value.billing_mode
  read_capacity               = each.value.billing_mode == "PROVISIONED" ? each.value.read_capacity : null
  write_capacity              = each.value.billing_mode == "PROVISIONED" ? each.value.write_capacity : null
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key != "" ? each.value.range_key : null
  deletion_protection_enabled = var.production

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  dynamic "attribute" {
    for_each = each.value.range_key != "" ? [each.value.range_key] : []
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute != "" ? [each.value.ttl_attribute] : []
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18:server access logs need a log bucket outside the environment; CloudTrail data events are the audit trail
  # checkov:skip=CKV_AWS_144:cross-region replication needs a second region, which a Spec does not have
  # checkov:skip=CKV2_AWS_62:event notifications are wired by the apps that consume them, not a security control
  for_each      = { for b in var.bucket_configuration : b.name => b }
  bucket        = "${local.name}-${each.key}"
  force_destroy = each.value.force_destroy && !var.production
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = { for b in var.bucket_configuration : b.name => b }
  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = { for b in var.bucket_configuration : b.name => b }
  bucket   = aws_s3_bucket.this[each.key].id

  rule {
    bucket_key_enabled = true
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = { for b in var.bucket_configuration : b.name => b if b.versioning }
  bucket   = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

# Every bucket drops unfinished multipart uploads; objects expire when the Spec says so.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = { for b in var.bucket_configuration : b.name => b }
  bucket   = aws_s3_bucket.this[each.key].id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = each.value.lifecycle_days > 0 ? [each.value.lifecycle_days] : []
    content {
      id     = "expire"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }
    }
  }
}
