# DNS: a global static IP for the cluster's ingress with A records for the domain and its
# subdomains in the Spec's Cloud DNS zone. WAF: a Cloud Armor policy with preconfigured rules
# and an optional per-IP throttle, referenced by the ingress BackendConfig (waf_policy_id).

resource "google_compute_global_address" "ingress" {
  count = var.dns_enabled ? 1 : 0
  name  = "${local.name}-ingress"
}

resource "google_dns_record_set" "ingress" {
  for_each     = var.dns_enabled ? toset([var.domain_name, "*.${var.domain_name}"]) : toset([])
  managed_zone = var.dns_managed_zone
  name         = "${each.value}."
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_global_address.ingress[0].address]
}

resource "google_compute_security_policy" "this" {
  count = var.dns_enabled && var.cloud_armor_enabled ? 1 : 0
  name  = "${local.name}-armor"

  dynamic "rule" {
    for_each = { for i, name in var.cloud_armor_preconfigured_rules : name => i }
    content {
      action   = "deny(403)"
      priority = 1000 + rule.value
      match {
        expr {
          expression = "evaluatePreconfiguredWaf('${rule.key}')"
        }
      }
      description = "Preconfigured WAF rule ${rule.key}"
    }
  }

  # Log4Shell (CVE-2021-44228) probes, whatever rules the Spec picks.
  rule {
    action   = "deny(403)"
    priority = 999
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('cve-canary')"
      }
    }
    description = "Block Log4j2 message lookups"
  }

  dynamic "rule" {
    for_each = var.cloud_armor_rate_limit > 0 ? [var.cloud_armor_rate_limit] : []
    content {
      action   = "throttle"
      priority = 900
      match {
        versioned_expr = "SRC_IPS_V1"
        config {
          src_ip_ranges = ["*"]
        }
      }
      rate_limit_options {
        conform_action = "allow"
        exceed_action  = "deny(429)"
        enforce_on_key = "IP"
        rate_limit_threshold {
          count        = rule.value
          interval_sec = 60
        }
      }
      description = "Per-IP rate limit"
    }
  }

  rule {
    action   = "allow"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    description = "Default allow"
  }
}

locals {
  waf_policy_id = var.dns_enabled && var.cloud_armor_enabled ? google_compute_security_policy.this[0].id : ""
}
