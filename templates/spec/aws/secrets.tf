# Secrets Manager entries: names and metadata only. Values are written out of band (or by
# the service that owns them); Terraform never sees one.

resource "aws_secretsmanager_secret" "this" {
  # checkov:skip=CKV2_AWS_57:values are written out of band by their owners, who rotate them; Terraform never holds a value to rotate
  for_each                = { for s in var.secrets_manager_secrets : s.name => s }
  name                    = "${local.name}/${each.key}"
  description             = lookup(each.value.metadata, "description", null)
  recovery_window_in_days = 7
  kms_key_id              = local.kms_key_arn
  tags                    = { for k, v in each.value.metadata : k => v if k != "description" }
}
