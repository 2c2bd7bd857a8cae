# Sandbox: Terraform's built-in terraform_data only, so it runs offline with real state.
terraform {
  required_version = ">= 1.5"

  # Partial configuration: the executor passes bucket, key, endpoint and credentials with
  # -backend-config, the same as for the real templates.
  backend "s3" {}
}
