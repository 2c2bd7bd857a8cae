# DNS and WAF: the domain in the Spec's Azure DNS zone served through Azure Front Door
# (Premium, for managed rule sets) with a WAF policy. The ingress origin is attached by the
# platform's GitOps step once the cluster's ingress exists.

locals {
  front_door = var.dns_enabled && var.front_door_waf_enabled
  # The domain relative to its zone ("" at the apex), for the validation record's name.
  dns_label = var.domain_name == var.dns_zone_name ? "" : trimsuffix(var.domain_name, ".${var.dns_zone_name}")
  # Front Door needs a version per managed rule set; the current ones by name.
  rule_set_versions = {
    Microsoft_DefaultRuleSet    = "2.1"
    Microsoft_BotManagerRuleSet = "1.1"
    DefaultRuleSet              = "1.0"
    BotProtection               = "preview-0.1"
  }
}

data "azurerm_dns_zone" "this" {
  count = var.dns_enabled ? 1 : 0
  name  = var.dns_zone_name
}

resource "azurerm_cdn_frontdoor_profile" "this" {
  count               = local.front_door ? 1 : 0
  name                = "${local.name}-fd"
  resource_group_name = azurerm_resource_group.this.name
  sku_name            = "Premium_AzureFrontDoor"
  tags                = var.tags
}

resource "azurerm_cdn_frontdoor_firewall_policy" "this" {
  count               = local.front_door ? 1 : 0
  name                = "${replace(local.name, "-", "")}waf"
  resource_group_name = azurerm_resource_group.this.name
  sku_name            = azurerm_cdn_frontdoor_profile.this[0].sku_name
  mode                = var.front_door_waf_mode
  enabled             = true

  dynamic "managed_rule" {
    for_each = toset(var.front_door_waf_rule_sets)
    content {
      type    = managed_rule.value
      version = lookup(local.rule_set_versions, managed_rule.value, "1.0")
      action  = "Block"
    }
  }
}

resource "azurerm_cdn_frontdoor_custom_domain" "this" {
  count                    = local.front_door ? 1 : 0
  name                     = replace(var.domain_name, ".", "-")
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.this[0].id
  dns_zone_id              = data.azurerm_dns_zone.this[0].id
  host_name                = var.domain_name

  tls {
    certificate_type = "ManagedCertificate"
  }
}

resource "azurerm_dns_txt_record" "frontdoor_validation" {
  count               = local.front_door ? 1 : 0
  name                = local.dns_label == "" ? "_dnsauth" : "_dnsauth.${local.dns_label}"
  zone_name           = data.azurerm_dns_zone.this[0].name
  resource_group_name = data.azurerm_dns_zone.this[0].resource_group_name
  ttl                 = 3600

  record {
    value = azurerm_cdn_frontdoor_custom_domain.this[0].validation_token
  }
}

resource "azurerm_cdn_frontdoor_security_policy" "this" {
  count                    = local.front_door ? 1 : 0
  name                     = "${local.name}-waf"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.this[0].id

  security_policies {
    firewall {
      cdn_frontdoor_firewall_policy_id = azurerm_cdn_frontdoor_firewall_policy.this[0].id

      association {
        patterns_to_match = ["/*"]
        domain {
          cdn_frontdoor_domain_id = azurerm_cdn_frontdoor_custom_domain.this[0].id
        }
      }
    }
  }
}

locals {
  waf_policy_id = local.front_door ? azurerm_cdn_frontdoor_firewall_policy.this[0].id : ""
}
