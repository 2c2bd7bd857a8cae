# Reliability tests' cheap template: the sandbox's variables and backend, one resource.
# Plans of it cost a fraction of the full sandbox, so hundreds of jobs fit in a test run;
# the values still arrive through terraform.tfvars.json exactly as for the real templates.
resource "terraform_data" "workspace" {
  input = {
    name    = "${var.project_name}-${var.environment}"
    region  = var.region
    spec_id = var.spec_id
  }
}
