# SQS queues (with optional dead-letter queues), SNS topics and their subscriptions. An sqs
# subscription whose endpoint names a queue of this Spec is wired to that queue.

locals {
  queue_names = [for q in var.sqs_queues : q.name]
  sns_subscriptions = {
    for pair in flatten([
      for t in var.sns_topics : [for s in t.subscriptions : { key = "${t.name}/${s.name}", topic = t.name, sub = s }]
    ]) : pair.key => pair
  }
  sqs_from_sns = toset([
    for k, v in local.sns_subscriptions : v.sub.endpoint
    if v.sub.protocol == "sqs" && contains(local.queue_names, v.sub.endpoint)
  ])
}

resource "aws_sqs_queue" "dlq" {
  for_each                  = { for q in var.sqs_queues : q.name => q if q.max_receive_count > 0 }
  name                      = "${local.name}-${each.key}-dlq${each.value.fifo ? ".fifo" : ""}"
  fifo_queue                = each.value.fifo
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_key_arn
}

resource "aws_sqs_queue" "this" {
  for_each                   = { for q in var.sqs_queues : q.name => q }
  name                       = "${local.name}-${each.key}${each.value.fifo ? ".fifo" : ""}"
  fifo_queue                 = each.value.fifo
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  message_retention_seconds  = each.value.message_retention_seconds
  delay_seconds              = each.value.delay_seconds
  kms_master_key_id          = local.kms_key_arn
  redrive_policy = each.value.max_receive_count > 0 ? jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  }) : null
}

resource "aws_sns_topic" "this" {
  for_each          = { for t in var.sns_topics : t.name => t }
  name              = "${local.name}-${each.key}"
  kms_master_key_id = local.kms_key_arn
}

resource "aws_sns_topic_subscription" "this" {
  for_each  = local.sns_subscriptions
  topic_arn = aws_sns_topic.this[each.value.topic].arn
  protocol  = each.value.sub.protocol
  endpoint = (
    each.value.sub.protocol == "sqs" && contains(local.queue_names, each.value.sub.endpoint)
    ? aws_sqs_queue.this[each.value.sub.endpoint].arn
    : each.value.sub.endpoint
  )
}

resource "aws_sqs_queue_policy" "from_sns" {
  for_each  = local.sqs_from_sns
  queue_url = aws_sqs_queue.this[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "sns.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.this[each.key].arn
      Condition = { ArnLike = { "aws:SourceArn" = "arn:aws:sns:${var.region}:${var.aws_account_id}:${local.name}-*" } }
    }]
  })
}
