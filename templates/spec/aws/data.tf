# Databases (RDS instances, or Aurora Serverless v2 for aurora-* engines), ElastiCache Redis,
# DynamoDB tables and S3 buckets. Master passwords are managed by RDS in Secrets Manager, so
# no password ever appears in variables, state or outputs.

locals {
  aurora = { for db in var.rds_config : db.name => db if startswith(db.engine, "aurora-") }
  rds    = { for db in var.rds_config : db.name => db if !startswith(db.engine, "aurora-") }
}

resource "aws_db_subnet_group" "this" {
  count      = length(var.rds_config) > 0 ? 1 : 0
  name       = local.name
  subnet_ids = local.private_subnet_ids
}

resource "aws_db_instance" "this" {
  for_each                    = local.rds
  identifier                  = "${local.name}-${each.key}"
  engine                      = each.value.engine
  engine_version              = each.value.engine_version
  instance_class              = each.value.instance_class
  allocated_storage           = each.value.allocated_storage
  storage_encrypted           = true
  multi_az                    = each.value.multi_az
  backup_retention_period     = each.value.backup_retention_days
  deletion_protection         = each.value.deletion_protection
  skip_final_snapshot         = !each.value.deletion_protection
  final_snapshot_identifier   = each.value.deletion_protection ? "${local.name}-${each.key}-final" : null
  username                    = "app_admin"
  manage_master_user_password = true
  db_subnet_group_name        = aws_db_subnet_group.this[0].name
  vpc_security_group_ids      = [aws_security_group.data.id]
}

resource "aws_rds_cluster" "this" {
  for_each                    = local.aurora
  cluster_identifier          = "${local.name}-${each.key}"
  engine                      = each.value.engine
  engine_mode                 = "provisioned"
  engine_version              = each.value.engine_version
  storage_encrypted           = true
  backup_retention_period     = each.value.backup_retention_days
  deletion_protection         = each.value.deletion_protection
  skip_final_snapshot         = !each.value.deletion_protection
  final_snapshot_identifier   = each.value.deletion_protection ? "${local.name}-${each.key}-final" : null
  master_username             = "app_admin"
  manage_master_user_password = true
  db_subnet_group_name        = aws_db_subnet_group.this[0].name
  vpc_security_group_ids      = [aws_security_group.data.id]

  serverlessv2_scaling_configuration {
    min_capacity = each.value.min_capacity
    max_capacity = each.value.max_capacity
  }
}

# One writer per Aurora cluster, plus a reader in another zone when multi_az is set.
resource "aws_rds_cluster_instance" "writer" {
  for_each           = local.aurora
  identifier         = "${local.name}-${each.key}-1"
  cluster_identifier = aws_rds_cluster.this[each.key].id
  instance_class     = each.value.instance_class
  engine             = aws_rds_cluster.this[each.key].engine
  engine_version     = aws_rds_cluster.this[each.key].engine_version
}

resource "aws_rds_cluster_instance" "reader" {
  for_each           = { for k, db in local.aurora : k => db if db.multi_az }
  identifier         = "${local.name}-${each.key}-2"
  cluster_identifier = aws_rds_cluster.this[each.key].id
  instance_class     = each.value.instance_class
  engine             = aws_rds_cluster.this[each.key].engine
  engine_version     = aws_rds_cluster.this[each.key].engine_version
  depends_on         = [aws_rds_cluster_instance.writer]
}

resource "aws_elasticache_subnet_group" "this" {
  count      = length(var.elasticache_clusters) > 0 ? 1 : 0
  name       = local.name
  subnet_ids = local.private_subnet_ids
}

resource "aws_elasticache_replication_group" "this" {
  for_each                   = { for c in var.elasticache_clusters : c.name => c }
  replication_group_id       = substr("${local.name}-${each.key}", 0, 40)
  description                = "Redis ${each.key} of ${local.name}"
  engine                     = "redis"
  engine_version             = each.value.engine_version
  node_type                  = each.value.node_type
  num_cache_clusters         = each.value.num_cache_clusters
  automatic_failover_enabled = each.value.num_cache_clusters > 1
  multi_az_enabled           = each.value.num_cache_clusters > 1
  at_rest_encryption_enabled = true
  transit_encryption_enabled = each.value.transit_encryption
  subnet_group_name          = aws_elasticache_subnet_group.this[0].name
  security_group_ids         = [aws_security_group.data.id]
}

resource "aws_dynamodb_table" "this" {
  for_each       = { for t in var.ddb_table_configuration : t.name => t }
  name           = "${local.name}-${each.key}"
  billing_mode   = each.value.billing_mode
  read_capacity  = each.value.billing_mode == "PROVISIONED" ? each.value.read_capacity : null
  write_capacity = each.value.billing_mode == "PROVISIONED" ? each.value.write_capacity : null
  hash_key       = each.value.hash_key
  range_key      = each.value.range_key != "" ? each.value.range_key : null

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
    enabled = true
  }
}

resource "aws_s3_bucket" "this" {
  for_each      = { for b in var.bucket_configuration : b.name => b }
  bucket        = "${local.name}-${each.key}"
  force_destroy = each.value.force_destroy
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = aws_s3_bucket.this
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = { for b in var.bucket_configuration : b.name => b if b.versioning }
  bucket   = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = { for b in var.bucket_configuration : b.name => b if b.lifecycle_days > 0 }
  bucket   = aws_s3_bucket.this[each.key].id

  rule {
    id     = "expire"
    status = "Enabled"

    filter {}

    expiration {
      days = each.value.lifecycle_days
    }
  }
}
