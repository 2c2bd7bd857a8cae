"""Stage 5, the executor: a runner that plans, applies and destroys with real Terraform.

It owns no tables. It claims jobs from the snapshot service (RunnerService), renders
tfvars through the mapper, runs Terraform in a per-job working directory against the S3
state backend, stores artifacts in the artifact bucket, streams the live log to NATS and
runs the post-apply steps. See runner.py, jobs.py, terraform.py for the invariants.
"""
