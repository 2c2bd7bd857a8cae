# EKS with one managed node group sized from the Spec, add-ons, control plane logs,
# envelope encryption of Kubernetes secrets, and access entries for the Spec's admins and the
# runner (the creator's implicit admin is off, so an admin that is also the creator does not
# collide with its explicit entry). The API is public only for the Spec's authorised CIDRs.
# An IAM OIDC provider gives the ingress (AWS Load Balancer) controller an identity to attach
# the WAF web ACL with.

resource "aws_iam_role" "cluster" {
  name = "${local.name}-eks-cluster"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
}

locals {
  # The Spec's CIDRs plus the runner's egress (runner.auto.tfvars.json): post-apply steps
  # reach the API from the runner.
  api_cidrs  = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
  api_public = var.eks_endpoint_public_access && length(local.api_cidrs) > 0
  # The runner installs ArgoCD after apply: it is a cluster admin like the Spec's admins.
  cluster_admins = toset(concat(var.eks_cluster_admins, [data.aws_iam_session_context.current.issuer_arn]))
}

resource "aws_eks_cluster" "this" {
  # checkov:skip=CKV_AWS_39:the public endpoint is on only with authorised CIDRs (the Spec's or the runner's), for the runner's post-apply steps
  # checkov:skip=CKV_AWS_38:public_access_cidrs are the Spec's and the runner's CIDRs (never 0.0.0.0/0: CreateSpec refuses it, the runner unless explicitly allowed)
  name                      = "${local.name}-eks"
  version                   = var.eks_cluster_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = local.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = local.api_public
    public_access_cidrs     = local.api_public ? local.api_cidrs : null
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = false
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = local.kms_key_arn
    }
  }

  depends_on = [aws_iam_role_policy_attachment.cluster]
}

resource "aws_iam_role" "node" {
  name = "${local.name}-eks-node"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.node.name
  policy_arn = each.value
}

resource "aws_eks_node_group" "default" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = local.private_subnet_ids
  instance_types  = var.eks_instance_types
  capacity_type   = var.eks_capacity_type
  disk_size       = var.eks_node_disk_size

  scaling_config {
    min_size     = var.eks_node_min_size
    max_size     = var.eks_node_max_size
    desired_size = var.eks_node_desired_size
  }

  # The cluster autoscaler owns the current size once the group exists.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_eks_addon" "this" {
  for_each     = toset(var.eks_addons)
  cluster_name = aws_eks_cluster.this.name
  addon_name   = each.value
  depends_on   = [aws_eks_node_group.default]
}

resource "aws_eks_access_entry" "admin" {
  for_each      = local.cluster_admins
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
}

resource "aws_eks_access_policy_association" "admin" {
  for_each      = local.cluster_admins
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.key].principal_arn
  policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# IAM roles for service accounts: the cluster's OIDC issuer as an identity provider.
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

locals {
  oidc_issuer = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
}

# The ingress controller (kube-system/aws-load-balancer-controller) manages the load
# balancers and attaches the WAF web ACL (waf_policy_id) to them.
resource "aws_iam_role" "lb_controller" {
  name = "${local.name}-lb-controller"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = "system:serviceaccount:kube-system:aws-load-balancer-controller"
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "lb_controller" {
  # checkov:skip=CKV_AWS_355:only read-only Describe/List calls IAM cannot scope by resource use "*"; writes are bound to the cluster tag or to ARNs
  name = "load-balancers-and-waf"
  role = aws_iam_role.lb_controller.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "Discover"
        Effect = "Allow"
        Action = [
          "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
          "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
          "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeCoipPools",
          "ec2:GetCoipPoolUsage", "ec2:DescribeVpcPeeringConnections", "ec2:GetSecurityGroupsForVpc",
          "elasticloadbalancing:Describe*", "acm:ListCertificates", "shield:GetSubscriptionState",
        ]
        Resource = "*"
      },
      {
        Sid      = "ReadCertificates"
        Effect   = "Allow"
        Action   = ["acm:DescribeCertificate"]
        Resource = "arn:aws:acm:${var.region}:${var.aws_account_id}:certificate/*"
      },
      {
        # Creating: only with the controller's cluster tag on the new resource.
        Sid    = "CreateTagged"
        Effect = "Allow"
        Action = [
          "ec2:CreateSecurityGroup", "ec2:CreateTags", "elasticloadbalancing:CreateLoadBalancer",
          "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags",
        ]
        Resource  = "*"
        Condition = { StringEquals = { "aws:RequestTag/elbv2.k8s.aws/cluster" = aws_eks_cluster.this.name } }
      },
      {
        # Changing and deleting: only what carries this cluster's tag (what the controller made).
        Sid    = "ManageTagged"
        Effect = "Allow"
        Action = [
          "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup",
          "ec2:DeleteTags", "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
          "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule", "elasticloadbalancing:RemoveTags",
          "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
          "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
          "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
          "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
          "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
          "elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
          "elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule",
          "elasticloadbalancing:SetWebAcl",
        ]
        Resource  = "*"
        Condition = { StringEquals = { "aws:ResourceTag/elbv2.k8s.aws/cluster" = aws_eks_cluster.this.name } }
      },
      {
        Sid    = "AttachTheWebAcl"
        Effect = "Allow"
        Action = ["wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"]
        Resource = [
          "arn:aws:wafv2:${var.region}:${var.aws_account_id}:regional/webacl/${local.name}-waf/*",
          "arn:aws:elasticloadbalancing:${var.region}:${var.aws_account_id}:loadbalancer/app/*",
        ]
      },
    ]
  })
}
