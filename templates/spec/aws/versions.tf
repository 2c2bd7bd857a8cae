terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.99"
    }
  }

  # Partial configuration: the executor passes bucket, key ({zone}/{project}-{env}-{region}/
  # terraform.tfstate), endpoint and use_lockfile with -backend-config.
  backend "s3" {}
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = var.tags
  }
}

locals {
  name = "${var.project_name}-${var.environment}"
}
