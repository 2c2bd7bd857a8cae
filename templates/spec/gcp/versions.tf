terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
  }

  # Partial configuration: the executor passes bucket, key ({zone}/{project}-{env}-{region}/
  # terraform.tfstate), endpoint and use_lockfile with -backend-config.
  backend "s3" {}
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}

locals {
  name = "${var.project_name}-${var.environment}"
}
