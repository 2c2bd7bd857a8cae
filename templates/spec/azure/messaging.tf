# Service Bus: one Standard namespace with the Spec's queues and topics; a subscription whose
# endpoint names a queue forwards to it.

resource "azurerm_servicebus_namespace" "this" {
  # checkov:skip=CKV_AZURE_204:private endpoints need the Premium tier; Standard is reachable over TLS with Entra ID only
  # checkov:skip=CKV_AZURE_201:customer-managed keys need the Premium tier
  # checkov:skip=CKV_AZURE_199:double encryption needs the Premium tier
  count               = length(var.service_bus_queues) + length(var.service_bus_topics) > 0 ? 1 : 0
  name                = "${local.name}-bus"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "Standard"
  minimum_tls_version = "1.2"
  local_auth_enabled  = false # Entra ID only: no SAS keys
  tags                = var.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_servicebus_queue" "this" {
  for_each                             = { for q in var.service_bus_queues : q.name => q }
  name                                 = each.key
  namespace_id                         = azurerm_servicebus_namespace.this[0].id
  max_delivery_count                   = each.value.max_delivery_count
  lock_duration                        = each.value.lock_duration
  default_message_ttl                  = each.value.default_message_ttl
  requires_session                     = each.value.requires_session
  dead_lettering_on_message_expiration = true
}

resource "azurerm_servicebus_topic" "this" {
  for_each     = { for t in var.service_bus_topics : t.name => t }
  name         = each.key
  namespace_id = azurerm_servicebus_namespace.this[0].id
}

locals {
  service_bus_subscriptions = {
    for pair in flatten([
      for t in var.service_bus_topics : [for s in t.subscriptions : { key = "${t.name}/${s.name}", topic = t.name, sub = s }]
    ]) : pair.key => pair
  }
}

resource "azurerm_servicebus_subscription" "this" {
  for_each           = local.service_bus_subscriptions
  name               = each.value.sub.name
  topic_id           = azurerm_servicebus_topic.this[each.value.topic].id
  max_delivery_count = 10
  forward_to         = each.value.sub.endpoint != "" ? azurerm_servicebus_queue.this[each.value.sub.endpoint].name : null
}
