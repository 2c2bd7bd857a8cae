# Sandbox-only knob: makes `terraform apply` take a while so cancellation can be tested.
# The value is a typed number, so the local-exec command cannot carry anything else.
variable "sandbox_delay_seconds" {
  type        = number
  default     = 0
  description = "Seconds the sandbox apply sleeps (TF_VAR_sandbox_delay_seconds); 0 in normal use."

  validation {
    condition     = var.sandbox_delay_seconds >= 0 && var.sandbox_delay_seconds <= 3600
    error_message = "sandbox_delay_seconds must be between 0 and 3600."
  }
}

# No input: created once, so later plans of the same Spec stay "no changes".
resource "terraform_data" "sandbox_delay" {
  provisioner "local-exec" {
    command = "sleep ${var.sandbox_delay_seconds}"
  }
}
