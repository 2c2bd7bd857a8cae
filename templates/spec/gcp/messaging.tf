# Pub/Sub: each queue of the Spec arrives as a topic of kind "queue" with one pull
# subscription; each topic of the Spec with its pull/push subscriptions. Subscriptions with
# max_delivery_attempts > 0 dead-letter into a "<topic>-dead-letter" topic.

locals {
  pubsub_subscriptions = {
    for pair in flatten([
      for t in var.pubsub_topics : [for s in t.subscriptions : { key = "${t.name}/${s.name}", topic = t.name, sub = s }]
    ]) : pair.key => pair
  }
  dead_letter_topics = toset(distinct([
    for k, v in local.pubsub_subscriptions : v.topic if v.sub.max_delivery_attempts > 0
  ]))
}

resource "google_pubsub_topic" "this" {
  for_each                   = { for t in var.pubsub_topics : t.name => t }
  name                       = "${local.name}-${each.key}"
  message_retention_duration = each.value.message_retention_duration != "" ? each.value.message_retention_duration : null
  kms_key_name               = var.encryption_key != "" ? var.encryption_key : null
  labels                     = merge(var.labels, { kind = each.value.kind })
}

resource "google_pubsub_topic" "dead_letter" {
  for_each     = local.dead_letter_topics
  name         = "${local.name}-${each.key}-dead-letter"
  kms_key_name = var.encryption_key != "" ? var.encryption_key : null
  labels       = var.labels
}

resource "google_pubsub_subscription" "this" {
  for_each                = local.pubsub_subscriptions
  name                    = "${local.name}-${each.value.sub.name}"
  topic                   = google_pubsub_topic.this[each.value.topic].id
  ack_deadline_seconds    = each.value.sub.ack_deadline_seconds
  enable_message_ordering = [for t in var.pubsub_topics : t.enable_message_ordering if t.name == each.value.topic][0]
  labels                  = var.labels

  dynamic "push_config" {
    for_each = each.value.sub.type == "push" ? [each.value.sub.push_endpoint] : []
    content {
      push_endpoint = push_config.value
    }
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.sub.max_delivery_attempts > 0 ? [each.value.sub.max_delivery_attempts] : []
    content {
      dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.topic].id
      max_delivery_attempts = dead_letter_policy.value
    }
  }
}
