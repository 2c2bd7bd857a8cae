# Secrets Manager entries: names and metadata only. Values are written out of band (or by
# the service that owns them); Terraform never sees one.

resource "aws_secretsmanager_secret" "this" {
  for_each                = { for s in var.secrets_manager_secrets : s.name => s }
  name                    = "${local.name}/${each.key}"
  description             = lookup(each.value.metadata, "description", null)
  recovery_window_in_days = 7
  tags                    = { for k, v in each.value.metadata : k => v if k != "description" }
}
