# Cloud SQL instances (private IP), Memorystore for Redis, Firestore databases and Cloud
# Storage buckets. Cloud SQL generates no user password here: users are created by the apps
# (IAM database authentication), so no password is ever in variables, state or outputs.

resource "google_sql_database_instance" "this" {
  for_each            = { for db in var.cloud_sql_databases : db.name => db }
  name                = "${local.name}-${each.key}"
  region              = var.region
  database_version    = each.value.database_version
  deletion_protection = each.value.deletion_protection

  settings {
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
    }

    backup_configuration {
      enabled = each.value.backup_enabled
    }

    dynamic "database_flags" {
      for_each = each.value.engine == "postgres" ? ["on"] : []
      content {
        name  = "cloudsql.iam_authentication"
        value = database_flags.value
      }
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_redis_instance" "this" {
  for_each           = { for c in var.memorystore_instances : c.name => c }
  name               = "${local.name}-${each.key}"
  region             = var.region
  tier               = each.value.tier
  memory_size_gb     = each.value.memory_size_gb
  redis_version      = each.value.redis_version
  replica_count      = each.value.tier == "STANDARD_HA" ? each.value.replica_count : null
  read_replicas_mode = each.value.tier == "STANDARD_HA" ? "READ_REPLICAS_ENABLED" : "READ_REPLICAS_DISABLED"
  authorized_network = local.network_id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  labels             = var.labels

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_firestore_database" "this" {
  for_each                          = { for t in var.firestore_databases : t.name => t }
  name                              = "${local.name}-${each.key}"
  location_id                       = var.region
  type                              = each.value.type
  point_in_time_recovery_enablement = each.value.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = "DELETE_PROTECTION_DISABLED"
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
  for_each                    = { for b in var.cloud_storage_buckets : b.name => b }
  name                        = "${local.name}-${each.key}"
  location                    = upper(var.region)
  storage_class               = each.value.storage_class
  force_destroy               = each.value.force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = each.value.versioning
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
