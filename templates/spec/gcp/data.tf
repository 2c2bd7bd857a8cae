# Cloud SQL instances (private IP, TLS only), Memorystore for Redis (AUTH + TLS), Firestore
# databases and Cloud Storage buckets, with the Spec's customer key when it gives one. Cloud
# SQL generates no user password here: users are created by the apps (IAM database
# authentication), so no password is ever in variables, state or outputs. Production
# environments always get deletion protection.

locals {
  # Audit and diagnostics flags of PostgreSQL instances (IAM sign-in first).
  postgres_flags = {
    "cloudsql.iam_authentication" = "on"
    "cloudsql.enable_pgaudit"     = "on"
    log_checkpoints               = "on"
    log_connections               = "on"
    log_disconnections            = "on"
    log_lock_waits                = "on"
    log_duration                  = "on"
    log_hostname                  = "on"
    log_min_messages              = "error"
    log_statement                 = "ddl"
  }
}

resource "google_sql_database_instance" "this" {
  # checkov:skip=CKV_GCP_6:TLS is required (ssl_mode ENCRYPTED_ONLY); client certificates are handled by the Cloud SQL connectors apps use with IAM sign-in
  # checkov:skip=CKV2_GCP_20:binary logging (point-in-time recovery) is on for every mysql instance with backups; checkov cannot evaluate the engine condition
  # checkov:skip=CKV_GCP_51:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_52:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_53:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_54:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_108:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_109:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_110:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_111:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV2_GCP_13:set for every postgres instance by local.postgres_flags; checkov cannot evaluate the engine-conditional dynamic block
  # checkov:skip=CKV_GCP_79:the engine version is the Spec's choice (databases[].engine_version); CreateSpec checks the format
  for_each            = { for db in var.cloud_sql_databases : db.name => db }
  name                = "${local.name}-${each.key}"
  region              = var.region
  database_version    = each.value.database_version
  deletion_protection = var.production ? true : each.value.deletion_protection
  encryption_key_name = var.encryption_key != "" ? var.encryption_key : null

  settings {
    # Without an edition, Postgres 16+ gets Enterprise Plus, which refuses custom tiers.
    edition           = startswith(each.value.tier, "db-perf-optimized-") ? "ENTERPRISE_PLUS" : "ENTERPRISE"
    tier              = each.value.tier
    disk_size         = each.value.disk_size_gb
    disk_autoresize   = true
    availability_type = each.value.availability_type
    user_labels = merge(var.labels, {
      engine       = each.value.engine
      min_capacity = tostring(each.value.min_capacity)
      max_capacity = tostring(each.value.max_capacity)
    })

    ip_configuration {
      ipv4_enabled    = false
      private_network = local.network_id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = each.value.backup_enabled
      binary_log_enabled             = each.value.engine == "mysql" ? each.value.backup_enabled : null
      point_in_time_recovery_enabled = each.value.engine == "postgres" ? each.value.backup_enabled : null
      backup_retention_settings {
        retained_backups = each.value.backup_retention_days
        retention_unit   = "COUNT"
      }
    }

    dynamic "database_flags" {
      for_each = each.value.engine == "postgres" ? local.postgres_flags : {}
      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_redis_instance" "this" {
  for_each       = { for c in var.memorystore_instances : c.name => c }
  name           = "${local.name}-${each.key}"
  region         = var.region
  tier           = each.value.tier
  memory_size_gb = each.value.memory_size_gb
  redis_version  = each.value.redis_version
  replica_count  = each.value.tier == "STANDARD_HA" ? each.value.replica_count : null
  # Read replicas only with more than one replica (CreateSpec checks the size they need).
  read_replicas_mode      = each.value.tier == "STANDARD_HA" && each.value.replica_count > 1 ? "READ_REPLICAS_ENABLED" : "READ_REPLICAS_DISABLED"
  authorized_network      = local.network_id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  customer_managed_key    = var.encryption_key != "" ? var.encryption_key : null
  labels                  = var.labels

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_firestore_database" "this" {
  for_each                          = { for t in var.firestore_databases : t.name => t }
  name                              = "${local.name}-${each.key}"
  location_id                       = var.region
  type                              = each.value.type
  point_in_time_recovery_enablement = each.value.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.production ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
}

# The partition/sort key pair becomes a composite index of the collection named after the table.
resource "google_firestore_index" "this" {
  for_each   = { for t in var.firestore_databases : t.name => t if t.sort_key != "" && t.type == "FIRESTORE_NATIVE" }
  database   = google_firestore_database.this[each.key].name
  collection = each.key

  fields {
    field_path = each.value.partition_key
    order      = "ASCENDING"
  }

  fields {
    field_path = each.value.sort_key
    order      = "ASCENDING"
  }
}

resource "google_storage_bucket" "this" {
  # checkov:skip=CKV_GCP_62:access logs need a log bucket outside the environment; Cloud Audit Logs record data access
  # checkov:skip=CKV_GCP_78:versioning is the Spec's choice (storage_buckets[].versioning)
  for_each                    = { for b in var.cloud_storage_buckets : b.name => b }
  name                        = "${local.name}-${each.key}"
  location                    = upper(var.region)
  storage_class               = each.value.storage_class
  force_destroy               = each.value.force_destroy && !var.production
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = each.value.versioning
  }

  dynamic "encryption" {
    for_each = var.encryption_key != "" ? [var.encryption_key] : []
    content {
      default_kms_key_name = encryption.value
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.lifecycle_days > 0 ? [each.value.lifecycle_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }
}
