"""``alethia demo``: the whole pipeline once, from an empty machine to applied infrastructure.

Brings up the embedded stack in a temporary data directory (free ports, its own token,
none of the caller's ``ALETHIA_*`` infrastructure settings), creates a cloud identity and
the example Spec of a provider (AWS by default), plans, deploys exactly that plan on the sandbox templates with real
Terraform, then copies what the post-apply steps produced (the kubeconfig artifact and a
checkout of the apps repository the manifests were pushed to) into a results directory
that outlives the stack. The stack is always stopped and its data removed, also when a
step fails or the user presses Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alethia.cli.client import Api
from alethia.cli.progress import follow_live
from alethia.cli.render import job_table, job_to_dict, status_name
from alethia.cli.specs import DEFAULT_CREDENTIALS_REF
from alethia.cli.target import Target
from alethia.crypto import KeyRing
from alethia.errors import AlethiaError, InvalidArgument
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from alethia.specfile import load_spec_file
from alethia.specs.v1 import specs_pb2
from alethia.stack.infra import write_private
from alethia.stack.supervisor import (
    DEFAULT_S3_ACCESS_KEY,
    DEFAULT_S3_SECRET_KEY,
    EXAMPLES_DIR,
    Stack,
    StackConfig,
    ensure_local_repository,
)

# Settings the demo keeps from the caller: where binaries are, nothing about infrastructure.
KEEP_ENV = ("ALETHIA_TERRAFORM_PATH", "ALETHIA_NATS_SERVER_BIN", "ALETHIA_WEED_BIN", "ALETHIA_LOG_LEVEL")
# A well-formed account of each provider (AWS account, GCP project, Azure subscription).
DEMO_ACCOUNTS = {
    "aws": "123456789012",
    "gcp": "acme-payments-prod",
    "azure": "00000000-0000-4000-8000-000000000000",
}


class DemoFailed(AlethiaError):
    """A step of the demo did not succeed; the message says which and why."""


@dataclass
class DemoResult:
    """What the demo produced (also its ``--json`` output)."""

    spec_id: str = ""
    plan_job: dict[str, Any] = field(default_factory=dict)
    deploy_job: dict[str, Any] = field(default_factory=dict)
    kubeconfig: str = ""
    apps_checkout: str = ""
    apps_files: list[str] = field(default_factory=list)
    results_dir: str = ""
    data_dir: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "spec_id": self.spec_id,
            "plan_job": self.plan_job,
            "deploy_job": self.deploy_job,
            "kubeconfig": self.kubeconfig,
            "apps_checkout": self.apps_checkout,
            "apps_files": self.apps_files,
            "results_dir": self.results_dir,
            "data_dir": self.data_dir,
            "seconds": round(self.seconds, 1),
        }


def demo_env() -> dict[str, str]:
    """The caller's environment without Alethia infrastructure settings (the demo is self-contained)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_") or k in KEEP_ENV}


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C does: through the ``finally`` that tears down."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(
    console: Console,
    results_dir: Path | None = None,
    keep_data: bool = False,
    provider: str = "aws",
    example: Path | None = None,
) -> DemoResult:
    """Run the demo end to end; raises :class:`AlethiaError` (or ``KeyboardInterrupt``) on failure.

    ``example`` defaults to ``examples/<provider>.yaml``.
    """
    if provider not in DEMO_ACCOUNTS:
        raise InvalidArgument.one("provider", f"must be one of {', '.join(DEMO_ACCOUNTS)}")
    example = example or EXAMPLES_DIR / f"{provider}.yaml"
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="alethia-demo-data-"))
    results = results_dir or Path(tempfile.mkdtemp(prefix="alethia-demo-"))
    results.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        StackConfig(data_dir=data_dir, free_ports=True, env=demo_env()),
        say=lambda msg: console.print(f"[dim]stack:[/] {msg}"),
    )
    result = DemoResult(results_dir=str(results), data_dir=str(data_dir))
    with _sigterm_as_interrupt():
        try:
            console.rule("[bold]1. the embedded stack")
            console.print(f"stack data in {data_dir} (removed at the end)", markup=False)
            info = stack.start()
            console.print(
                f"up in {time.monotonic() - started:.1f}s: "
                + ", ".join(f"{name} {addr}" for name, addr in info.services.items())
            )
            target = Target(dict(info.services), stack.service_token(), data_dir)
            asyncio.run(_pipeline(console, target, stack, provider, example, results, result))
        finally:
            console.rule("[bold]shutting down")
            stack.stop()
            if keep_data:
                console.print(f"stack data kept in {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


async def _pipeline(
    console: Console,
    target: Target,
    stack: Stack,
    provider: str,
    example: Path,
    results: Path,
    result: DemoResult,
) -> None:
    async with Api(target) as api:
        console.rule(f"[bold]2. a cloud identity and the example Spec {example.name} (stage 1)")
        identity = await api.create_identity(
            specs_pb2.CloudIdentity(
                name="demo",
                provider=provider,
                account_id=DEMO_ACCOUNTS[provider],
                credentials_ref=DEFAULT_CREDENTIALS_REF[provider],
            )
        )
        console.print(f"identity {identity.id} ({provider} account {identity.account_id})")
        spec = load_spec_file(example)
        spec.cloud_identity_id = identity.id
        for repo in spec.repositories:
            ensure_local_repository(stack.data.git, repo.url)
        created = await api.create_spec(spec)
        result.spec_id = created.id
        console.print(
            f"spec {created.id}: {created.zone_id}/{created.project_name}-{created.environment}-{created.region} "
            f"({len(created.databases)} databases, {len(created.caches)} caches, "
            f"{len(created.queues)} queues, {len(created.storage_buckets)} buckets)"
        )

        console.rule("[bold]3. plan (stages 2-5: snapshot, mapping, terraform plan)")
        plan = await _run_job(console, api, created.id, events_pb2.PLAN)
        result.plan_job = job_to_dict(plan)

        console.rule("[bold]4. deploy that plan (terraform apply of the saved plan, post-apply)")
        deployed = await _run_job(console, api, created.id, events_pb2.DEPLOY, plan.id)
        result.deploy_job = job_to_dict(deployed)
        _print_outputs(console, deployed)

    console.rule("[bold]5. what the post-apply steps produced")
    _collect_artifacts(console, stack, deployed, created, results, result)


async def _run_job(
    console: Console, api: Api, spec_id: str, job_type: int, plan_job_id: str = ""
) -> snapshot_pb2.Job:
    job = await api.queue_job(spec_id, job_type, plan_job_id)
    console.print(f"queued {events_pb2.JobType.Name(job_type)} job {job.id}")  # type: ignore[arg-type]
    final = await follow_live(api, job, console)
    console.print(job_table(final, show_outputs=False))
    if status_name(final.status) != "SUCCEEDED":
        raise DemoFailed(
            f"{events_pb2.JobType.Name(job_type)} job {final.id} ended {status_name(final.status)}: {final.error}"
        )  # type: ignore[arg-type]
    return final


def _print_outputs(console: Console, job: snapshot_pb2.Job) -> None:
    table = Table("output", "value", title="Terraform outputs")
    for out in job.outputs:
        value = "(sensitive)" if out.sensitive else out.value_json
        table.add_row(out.name, value)
    console.print(table)


def _collect_artifacts(
    console: Console,
    stack: Stack,
    job: snapshot_pb2.Job,
    spec: specs_pb2.Spec,
    results: Path,
    result: DemoResult,
) -> None:
    """Copy the kubeconfig artifact and a checkout of the apps repository into ``results``."""
    (results / "outputs.json").write_text(json.dumps(job_to_dict(job)["outputs"], indent=2) + "\n")
    kube = next((a for a in job.artifacts if a.name == "kubeconfig.yaml"), None)
    if kube is not None:
        import boto3

        env = stack.config.env
        # The embedded store's admin key (generated per data dir), else the given settings.
        creds = stack.s3.admin if stack.s3 is not None else None
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.s3_endpoint,
            aws_access_key_id=creds.access_key
            if creds
            else env.get("ALETHIA_S3_ACCESS_KEY", DEFAULT_S3_ACCESS_KEY),
            aws_secret_access_key=(
                creds.secret_key if creds else env.get("ALETHIA_S3_SECRET_KEY", DEFAULT_S3_SECRET_KEY)
            ),
            region_name="us-east-1",
        )
        bucket = env.get("ALETHIA_S3_ARTIFACT_BUCKET", "alethia-artifacts")
        target = results / "kubeconfig.yaml"
        # Artifacts are stored encrypted: open it with the data directory's key ring.
        sealed = s3.get_object(Bucket=bucket, Key=kube.key)["Body"].read()
        ring = KeyRing.from_reference(
            env.get("ALETHIA_ARTIFACT_KEY") or f"file:{stack.data.artifact_keyring_file}", env
        )
        write_private(target, ring.open(job.id, "kubeconfig.yaml", sealed).decode())
        result.kubeconfig = str(target)
        console.print(f"kubeconfig: artifact s3://{bucket}/{kube.key}, copied to {target}")
    else:
        console.print("kubeconfig: no kubeconfig artifact on the deploy job")
    for step in job.post_apply_steps:
        console.print(f"post-apply {step.name}: {step.status} {step.detail}")
    for repo in spec.repositories:
        bare = ensure_local_repository(stack.data.git, repo.url)
        if bare is None:
            continue
        checkout = results / "apps"
        shutil.rmtree(checkout, ignore_errors=True)
        cloned = subprocess.run(
            ["git", "clone", "--quiet", str(bare), str(checkout)], capture_output=True, text=True
        )
        if cloned.returncode != 0:
            console.print(f"apps repository {repo.url}: nothing pushed ({cloned.stderr.strip()})")
            continue
        files = sorted(
            str(p.relative_to(checkout)) for p in checkout.rglob("*") if p.is_file() and ".git" not in p.parts
        )
        result.apps_checkout = str(checkout)
        result.apps_files = files
        console.print(
            f"apps manifests: pushed to {repo.url} (branch {repo.branch or 'main'}), "
            f"a local bare repository; checked out to {checkout}:"
        )
        for f in files:
            console.print(f"  {f}")
