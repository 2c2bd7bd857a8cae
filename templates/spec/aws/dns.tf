# DNS: a certificate for the domain (and its subdomains), validated in the Spec's Route 53
# zone. WAF: a regional WAFv2 web ACL with AWS managed rule groups and an optional rate
# rule, for the ingress load balancer (the controller attaches it by the output ARN).

resource "aws_acm_certificate" "this" {
  count                     = var.dns_enabled ? 1 : 0
  domain_name               = var.domain_name
  subject_alternative_names = ["*.${var.domain_name}"]
  validation_method         = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = {
    for o in(var.dns_enabled ? aws_acm_certificate.this[0].domain_validation_options : []) :
    o.domain_name => o
  }
  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 60
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count                   = var.dns_enabled ? 1 : 0
  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_wafv2_web_acl" "this" {
  count = var.dns_enabled && var.waf_enabled ? 1 : 0
  name  = "${local.name}-waf"
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = var.waf_rate_limit > 0 ? [var.waf_rate_limit] : []
    content {
      name     = "rate-limit"
      priority = 1

      action {
        block {}
      }

      statement {
        rate_based_statement {
          limit              = rule.value
          aggregate_key_type = "IP"
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-rate-limit"
        sampled_requests_enabled   = true
      }
    }
  }

  dynamic "rule" {
    for_each = { for i, name in var.waf_managed_rules : name => i }
    content {
      name     = rule.key
      priority = rule.value + 10

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          name        = rule.key
          vendor_name = "AWS"
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.key
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-waf"
    sampled_requests_enabled   = true
  }
}

# WAF request logs (the name prefix is WAF's requirement), a year, encrypted.
resource "aws_cloudwatch_log_group" "waf" {
  count             = length(aws_wafv2_web_acl.this)
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = 365
  kms_key_id        = local.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count                   = length(aws_wafv2_web_acl.this)
  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
}
