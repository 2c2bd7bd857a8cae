# Secret Manager secrets: names and metadata (as annotations) only, never a version/value.

resource "google_secret_manager_secret" "this" {
  for_each    = { for s in var.secret_manager_secrets : s.name => s }
  secret_id   = "${local.name}-${each.key}"
  annotations = each.value.metadata
  labels      = var.labels

  replication {
    auto {}
  }
}
