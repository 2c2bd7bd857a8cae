terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: the executor passes bucket, key ({zone}/{project}-{env}-{region}/
  # terraform.tfstate), endpoint and use_lockfile with -backend-config.
  backend "s3" {}
}

provider "azurerm" {
  subscription_id = var.subscription_id
  # Storage accounts allow no shared keys: the provider signs data-plane calls with Entra ID.
  storage_use_azuread = true
  features {}
}

locals {
  name = "${var.project_name}-${var.environment}"
  # Globally unique, 3-24 lowercase alphanumerics (storage accounts, Key Vaults).
  compact = "${substr(replace(local.name, "-", ""), 0, 14)}${substr(md5("${var.subscription_id}/${local.name}"), 0, 8)}"
}

data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}
