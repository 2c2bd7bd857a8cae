# A new VPC (public + private subnets per zone, NAT egress) or an existing VPC by id.

data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394:slice() takes the first vpc_availability_zones zones; a new zone only widens the list, never the subnets made
  state = "available"
}

locals {
  azs       = slice(data.aws_availability_zones.available.names, 0, var.vpc_availability_zones)
  nat_count = var.provision_vpc && var.vpc_enable_nat_gateway ? (var.vpc_single_nat_gateway ? 1 : length(local.azs)) : 0
  vpc_id    = var.provision_vpc ? aws_vpc.this[0].id : var.existing_vpc_id
  vpc_cidr  = var.provision_vpc ? var.vpc_cidr : data.aws_vpc.existing[0].cidr_block
  private_subnet_ids = (
    var.provision_vpc ? aws_subnet.private[*].id : data.aws_subnets.existing_private[0].ids
  )
}

resource "aws_vpc" "this" {
  count                = var.provision_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = local.name }
}

resource "aws_subnet" "private" {
  count             = var.provision_vpc ? length(local.azs) : 0
  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  tags = {
    Name                              = "${local.name}-private-${local.azs[count.index]}"
    "kubernetes.io/role/internal-elb" = "1"
  }
}

resource "aws_subnet" "public" {
  count                   = var.provision_vpc ? length(local.azs) : 0
  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index + 8)
  map_public_ip_on_launch = false # NAT gateways and load balancers bring their own addresses
  tags = {
    Name                     = "${local.name}-public-${local.azs[count.index]}"
    "kubernetes.io/role/elb" = "1"
  }
}

# No rules: nothing uses the VPC's default security group, so it admits nothing.
resource "aws_default_security_group" "this" {
  count  = var.provision_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
}

# Flow logs of every interface, kept a year in a log group encrypted with the environment's key.
resource "aws_cloudwatch_log_group" "flow_logs" {
  count             = var.provision_vpc ? 1 : 0
  name              = "/alethia/${local.name}/vpc-flow-logs"
  retention_in_days = 365
  kms_key_id        = local.kms_key_arn
}

resource "aws_iam_role" "flow_logs" {
  count = var.provision_vpc ? 1 : 0
  name  = "${local.name}-flow-logs"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = var.aws_account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.provision_vpc ? 1 : 0
  name  = "write-flow-logs"
  role  = aws_iam_role.flow_logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow_logs[0].arn}:*"
    }]
  })
}

resource "aws_flow_log" "this" {
  count           = var.provision_vpc ? 1 : 0
  vpc_id          = aws_vpc.this[0].id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn    = aws_iam_role.flow_logs[0].arn
}

resource "aws_internet_gateway" "this" {
  count  = var.provision_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = { Name = local.name }
}

resource "aws_route_table" "public" {
  count  = var.provision_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }
}

resource "aws_route_table_association" "public" {
  count          = var.provision_vpc ? length(local.azs) : 0
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count  = local.nat_count
  domain = "vpc"
}

resource "aws_nat_gateway" "this" {
  count         = local.nat_count
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${local.name}-nat-${count.index}" }
}

resource "aws_route_table" "private" {
  count  = var.provision_vpc ? length(local.azs) : 0
  vpc_id = aws_vpc.this[0].id

  dynamic "route" {
    for_each = local.nat_count > 0 ? [aws_nat_gateway.this[min(count.index, local.nat_count - 1)].id] : []
    content {
      cidr_block     = "0.0.0.0/0"
      nat_gateway_id = route.value
    }
  }
}

resource "aws_route_table_association" "private" {
  count          = var.provision_vpc ? length(local.azs) : 0
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

data "aws_vpc" "existing" {
  count = var.provision_vpc ? 0 : 1
  id    = var.existing_vpc_id
}

# In an existing VPC the cluster and data services use the subnets tagged for internal load
# balancers, the convention EKS itself relies on.
data "aws_subnets" "existing_private" {
  count = var.provision_vpc ? 0 : 1

  filter {
    name   = "vpc-id"
    values = [var.existing_vpc_id]
  }

  tags = {
    "kubernetes.io/role/internal-elb" = "1"
  }
}

# Databases and caches answer on their own ports, to the VPC only, and call nobody.
resource "aws_security_group" "data" {
  name        = "${local.name}-data"
  description = "Databases and caches: reachable from inside the VPC only."
  vpc_id      = local.vpc_id

  dynamic "ingress" {
    for_each = { postgres = 5432, mysql = 3306, redis = 6379 }
    content {
      description = "VPC-internal ${ingress.key} clients"
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = [local.vpc_cidr]
    }
  }

  egress {
    description = "Replies and replication inside the VPC only"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [local.vpc_cidr]
  }
}
