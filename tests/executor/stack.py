"""The whole pipeline in-process for end-to-end executor tests.

Real spec service, snapshot service (job queue, outbox relay, rescuer), mapper and runner
on port 0, with real Postgres, NATS JetStream, SeaweedFS S3 and Terraform. The apps
repository is a local bare git repository reached through ``ALETHIA_GIT_URL_REWRITE``
while the Spec keeps its https URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import nats

from alethia.events.v1 import events_pb2
from alethia.messaging import EVENTS_STREAM, job_subjects
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from services.executor.settings import ExecutorSettings
from tests.fixtures.s3 import TEST_S3_RUNNER, TEST_S3_TERRAFORM, keyring_reference, open_artifact
from tests.fixtures.specs import create_identity, full_spec_dict, start_specs

GIT_TOKEN = "ghp_E2eSecretToken0123456789abcdef"
S3_ACCESS = TEST_S3_RUNNER.access_key
S3_SECRET = TEST_S3_RUNNER.secret_key
REPO_URL = "https://git.example.com/platform/apps.git"
OTHER_GIT_HOST = "git.elsewhere.example"
TERMINAL = {events_pb2.SUCCEEDED, events_pb2.FAILED, events_pb2.CANCELLED, events_pb2.ERRORED}


@dataclass
class Stack:
    tmp: Path
    s3_endpoint: str
    nats_url: str
    specs_db: str
    snapshot_db: str
    lease_seconds: int = 6
    services: list[RunningService] = field(default_factory=list)
    executor: Any = None
    channels: list[Any] = field(default_factory=list)
    identity_id: str = ""
    bare_repo: Path = Path()

    async def start(self, with_runner: bool = True, **runner_settings: Any) -> Stack:
        from services.mapper.app import start as start_mapper
        from services.mapper.settings import MapperSettings
        from services.snapshot.app import start as start_snapshot
        from services.snapshot.settings import SnapshotSettings

        self.bare_repo = self.tmp / "git" / "platform" / "apps.git"
        self.bare_repo.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            subprocess.run, ["git", "init", "-q", "--bare", str(self.bare_repo)], check=True
        )
        from alethia.stack.infra import free_port

        snapshot_addr = f"127.0.0.1:{free_port()}"  # the specs service asks it before a delete
        # A second allowed host for which no git token was issued (the snapshot service's
        # token is bound to git.example.com).
        self.specs = await start_specs(
            self.specs_db, snapshot_addr=snapshot_addr, git_allowed_hosts=f"git.example.com,{OTHER_GIT_HOST}"
        )
        self.services.append(self.specs)
        self.mapper = await start_mapper(MapperSettings(listen="127.0.0.1:0"))
        self.services.append(self.mapper)
        self.snapshot = await start_snapshot(
            SnapshotSettings(
                database_url=self.snapshot_db,
                listen=snapshot_addr,
                specs_addr=self.specs.address,
                nats_url=self.nats_url,
                lease_seconds=float(self.lease_seconds),
                rescue_interval_seconds=0.5,
                relay_poll_seconds=0.2,
                git_token=GIT_TOKEN,
                git_token_host="git.example.com",
            )
        )
        self.services.append(self.snapshot)
        ch = connect(self.specs.address)
        self.channels.append(ch)
        self.spec_stub = specs_pb2_grpc.SpecServiceStub(ch)
        ch2 = connect(self.snapshot.address)
        self.channels.append(ch2)
        self.jobs = snapshot_pb2_grpc.SnapshotServiceStub(ch2)
        self.identity_id = (await create_identity(self.spec_stub, "aws")).id
        if with_runner:
            await self.start_runner(**runner_settings)
        return self

    def runner_settings(self, **overrides: Any) -> ExecutorSettings:
        values: dict[str, Any] = {
            "executor_listen": "127.0.0.1:0",
            "snapshot_addr": self.snapshot.address,
            "mapper_addr": self.mapper.address,
            "nats_url": self.nats_url,
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": S3_ACCESS,
            "s3_secret_key": S3_SECRET,
            "runner_concurrency": 2,
            "runner_lease_seconds": self.lease_seconds,
            "runner_poll_seconds": 1.0,
            "runner_drain_grace_seconds": 5.0,
            "terraform_grace_seconds": 10.0,
            "work_dir": str(self.tmp / "work"),
            "plugin_cache_dir": str(self.tmp / "plugin-cache"),
            "git_url_rewrite": f"https://git.example.com/=file://{self.tmp / 'git'}/",
            "artifact_key": keyring_reference(self.tmp / "keys"),
            "s3_state_access_key": TEST_S3_TERRAFORM.access_key,
            "s3_state_secret_key": TEST_S3_TERRAFORM.secret_key,
            "s3_state_encrypt": "true",
            "runner_id": "runner-inproc",
        }
        values.update(overrides)
        return ExecutorSettings(**values)

    def runner_env(self, **overrides: Any) -> dict[str, str]:
        """Environment for a runner subprocess (``python -m services.executor``)."""
        s = self.runner_settings(**overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
        for name, value in s.model_dump().items():
            if name in ExecutorSettings.model_fields or name in ("snapshot_addr", "mapper_addr", "nats_url"):
                env[f"ALETHIA_{name.upper()}"] = str(value)
        return env

    async def start_runner(self, **overrides: Any) -> Any:
        from services.executor.app import start as start_executor

        self.executor = await start_executor(self.runner_settings(**overrides))
        return self.executor

    async def stop(self) -> None:
        if self.executor is not None:
            await self.executor.stop(1)
        for svc in reversed(self.services):
            await svc.stop(1)
        for ch in self.channels:
            await ch.close()

    # ------------------------------------------------------------------ helpers

    async def create_spec(self, project: str, repo_url: str = REPO_URL, **overrides: Any) -> specs_pb2.Spec:
        """A full AWS Spec (apps repository included) in its own workspace."""
        data = full_spec_dict("aws", project_name=project, cloud_identity_id=self.identity_id, **overrides)
        data["repositories"] = [{"url": repo_url, "branch": "main", "path": f"clusters/{project}"}]
        return await self.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))

    async def queue(self, spec_id: str, jtype: int, plan_job_id: str = "") -> snapshot_pb2.Job:
        return await self.jobs.QueueJob(
            snapshot_pb2.QueueJobRequest(
                spec_id=spec_id,
                type=jtype,  # type: ignore[arg-type]
                plan_job_id=plan_job_id,
                idempotency_key=uuid.uuid4().hex,
                requested_by="e2e",
            )
        )

    async def wait(
        self, job_id: str, within: float = 90.0, statuses: Iterable[int] = TERMINAL
    ) -> snapshot_pb2.Job:
        want = set(statuses)
        deadline = time.monotonic() + within
        while True:
            job = await self.jobs.GetJob(snapshot_pb2.GetJobRequest(id=job_id))
            if job.status in want:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {events_pb2.JobStatus.Name(job.status)}: {job.error}"
                )
            await asyncio.sleep(0.1)

    async def run(self, spec_id: str, jtype: int, plan_job_id: str = "") -> snapshot_pb2.Job:
        job = await self.queue(spec_id, jtype, plan_job_id)
        return await self.wait(job.id)

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=S3_ACCESS,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )

    def get_object(self, bucket: str, key: str) -> bytes:
        """An object as stored (artifacts are encrypted: see :meth:`artifact`)."""
        return bytes(self.s3().get_object(Bucket=bucket, Key=key)["Body"].read())

    def artifact(self, key: str) -> bytes:
        """An artifact of the artifact bucket, decrypted with the runners' key ring."""
        return open_artifact(key, self.get_object("alethia-artifacts", key))

    def keys(self, bucket: str, prefix: str) -> list[str]:
        resp = self.s3().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    async def events(self, job_id: str) -> list[events_pb2.JobEvent]:
        """Every event of a job on JetStream (log lines included), in stream order."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(job_subjects(job_id), ordered_consumer=True, stream=EVENTS_STREAM)
            out = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except Exception:
                    break
                ev = events_pb2.JobEvent()
                ev.ParseFromString(msg.data)
                out.append(ev)
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()


def spawn_runner(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.executor"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return proc


def state_doc(stack: Stack, key: str) -> dict[str, Any]:
    return dict(json.loads(stack.get_object("alethia-state", key)))


async def git_out(repo: Path, *args: str) -> bytes:
    """stdout of ``git -C repo args`` (fails the test on a git error)."""
    proc = await asyncio.to_thread(
        subprocess.run, ["git", "-C", str(repo), *args], capture_output=True, check=True
    )
    return bytes(proc.stdout)


async def database_text(url: str) -> str:
    """Every row of every table of a Postgres database, as JSON text (for leak checks)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        parts = []
        for t in tables:
            rows = await conn.fetch(f'SELECT row_to_json(x)::text AS j FROM "{t["tablename"]}" x')
            parts += [r["j"] for r in rows]
        return "\n".join(parts)
    finally:
        await conn.close()
