"""Side-by-side: end-to-end PLAN through the pipeline vs raw ``terraform init && terraform plan``.

Run: ``.venv/bin/python -m tests.executor.measure_plan [repetitions]`` (needs Postgres at
ALETHIA_TEST_POSTGRES_URL or 127.0.0.1:5432; starts its own NATS and SeaweedFS).

System: QueueJob(PLAN) -> job row's create_time..end_time (dispatch, claim, RenderTfvars,
workspace copy, init, plan, show -json, artifact uploads, CompleteJob). Baseline: in a
fresh copy of the same template with the same tfvars and backend settings, the raw
``terraform init`` then ``terraform plan -out``. Runs alternate so machine noise hits both.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from alethia.events.v1 import events_pb2
from alethia.stack.infra import NatsServer, SeaweedS3
from bench.harness import alternate_measured
from services.executor.settings import REPO_ROOT
from services.executor.terraform import resolve_binary
from services.executor.workspace import S3Backend, backend_config, backend_env
from tests.conftest import PostgresFactory
from tests.fixtures.s3 import TEST_S3_ADMIN, TEST_S3_RUNNER, TEST_S3_TERRAFORM
from tests.harness import E2E, S3_ACCESS, S3_SECRET, Pipeline


async def main(repetitions: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="measure-plan-"))
    factory = PostgresFactory()
    specs_db = await asyncio.to_thread(factory.create, "alethia_measure")
    jobs_db = await asyncio.to_thread(factory.create, "alethia_measure")
    s3 = SeaweedS3(
        tmp / "s3", admin=TEST_S3_ADMIN, runner=TEST_S3_RUNNER, terraform=TEST_S3_TERRAFORM
    ).start()
    nats = NatsServer(tmp / "nats").start()
    stack = Pipeline.quick(
        **E2E,
        tmp=tmp,
        s3_endpoint=s3.endpoint,
        nats_url=nats.url,
        specs_db=specs_db,
        snapshot_db=jobs_db,
        lease_seconds=6,
    )
    try:
        await stack.start(runner=True, runner_concurrency=1, runner_id="runner-inproc")
        spec = await stack.create_spec("measure", full=True, repos=True)
        first = await stack.run(spec.id, events_pb2.PLAN)  # warm-up (imports, first init)
        assert first.status == events_pb2.SUCCEEDED, first.error
        template_name, tfvars_json = await stack.tfvars(spec.id)
        template = REPO_ROOT / "templates" / "sandbox" / template_name
        backend = S3Backend("alethia-state", "us-east-1", s3.endpoint, S3_ACCESS, S3_SECRET)
        snap = json.loads(first.snapshot_json)
        key = f"{snap['zone_id']}/{snap['project_name']}-{snap['environment']}-{snap['region']}/terraform.tfstate"
        terraform = resolve_binary("").command[0]
        env = {**os.environ, **backend_env(backend), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        env.pop("TF_CLI_CONFIG_FILE", None)

        async def system() -> float:
            job = await stack.run(spec.id, events_pb2.PLAN)
            assert job.status == events_pb2.SUCCEEDED, job.error
            return (job.end_time.ToNanoseconds() - job.create_time.ToNanoseconds()) / 1e9

        async def baseline() -> float:
            work = Path(tempfile.mkdtemp(dir=tmp))
            shutil.copytree(template, work, dirs_exist_ok=True)
            (work / "terraform.tfvars.json").write_text(tfvars_json)
            t0 = time.perf_counter()
            for argv in (
                [
                    terraform,
                    "init",
                    "-input=false",
                    *(f"-backend-config={kv}" for kv in backend_config(backend, key)),
                ],
                [terraform, "plan", "-input=false", "-lock=false", "-out=plan.tfplan"],
            ):
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=work,
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                assert await proc.wait() == 0, argv
            elapsed = time.perf_counter() - t0
            shutil.rmtree(work, ignore_errors=True)
            return elapsed

        samples = await alternate_measured(system, baseline, repetitions)
        result = samples.result()
        result["what"] = "end-to-end PLAN (queue -> SUCCEEDED) vs raw terraform init && terraform plan"
        return result
    finally:
        await stack.stop()
        nats.stop()
        s3.stop()
        await asyncio.to_thread(factory.drop_all)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(json.dumps(asyncio.run(main(reps)), indent=2))
