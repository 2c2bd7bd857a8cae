"""Wiring of the runner: Terraform discovery, NATS, the other services, the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

from alethia import messaging, runner_vars
from alethia.crypto import KeyRing, KeyRingError
from alethia.errors import FailedPrecondition
from alethia.events.v1 import events_pb2
from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService, create_server
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from services.executor.artifacts import ArtifactStore
from services.executor.childenv import ChildEnvironments
from services.executor.guard import shared_guard
from services.executor.jobs import ExecutorContext
from services.executor.plandirs import KeptPlans
from services.executor.postapply import parse_url_rewrites
from services.executor.recovery import Pusher, Recovery, RecoveryKeeper, RecoveryLoop
from services.executor.runner import Runner
from services.executor.server import ExecutorServicer
from services.executor.settings import ExecutorSettings
from services.executor.statelock import StateBucket
from services.executor.terraform import Terraform, go_runtime_env, resolve_binary
from services.executor.workspace import PluginCache, S3Backend, backend_env

log = logging.getLogger(__name__)

SERVICE_NAME = executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name


@dataclass
class ExecutorService(RunningService):
    """The running service plus the runner, so tests can watch it and drain it."""

    runner: Runner | None = None
    recovery: RecoveryLoop | None = None


def _host(listen: str) -> str:
    host = listen.rsplit(":", 1)[0].strip("[]")
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


# How long the start waits for NATS; past it the runner serves by polling and connects later.
NATS_FIRST_TRY_SECONDS = 5.0


async def _nats(settings: ExecutorSettings) -> tuple[object | None, object | None]:
    """NATS connection and JetStream, or (None, None): polling alone still runs jobs."""
    try:
        # messaging.connect retries forever: bounded here so a NATS outage never blocks the start.
        nc = await asyncio.wait_for(
            messaging.connect(settings.nats_url, name=f"alethia-runner-{settings.runner_id}"),
            NATS_FIRST_TRY_SECONDS,
        )
        js = nc.jetstream()
        # The snapshot service creates the streams; a runner may only look (its NATS user
        # has no right to manage streams).
        await messaging.check_streams(js)
        return nc, js
    except Exception as exc:
        log.warning("NATS unavailable at %s (%s): no live logs or dispatch wake-ups, polling only",
                    messaging.display_url(settings.nats_url), exc)  # fmt: skip
        return None, None


async def _attach_nats_later(settings: ExecutorSettings, ctx: ExecutorContext, runner: Runner) -> object:
    """NATS was down at start: connect in the background, then turn on live logs and wake-ups."""
    nc = await messaging.connect(settings.nats_url, name=f"alethia-runner-{settings.runner_id}")
    js = nc.jetstream()  # type: ignore[attr-defined]
    while True:
        try:
            await messaging.check_streams(js)
            break
        except Exception as exc:  # JetStream not ready yet, or the streams not created yet
            log.debug("nats: creating streams failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1.0)
    ctx.js = js  # jobs started from now on publish live logs
    runner.js = js  # the next wait for work subscribes to dispatch
    log.info("runner %s: NATS reachable at %s; live logs and dispatch wake-ups on", settings.runner_id,
             messaging.display_url(settings.nats_url))  # fmt: skip
    return nc


async def start(settings: ExecutorSettings) -> ExecutorService:
    """Find Terraform, connect, start the runner loop and serve ExecutorService."""
    runner_id = settings.runner_id or f"{socket.gethostname()}-{os.getpid()}"
    settings = settings.model_copy(update={"runner_id": runner_id})
    # Misconfiguration fails the start, not every job later.
    parse_url_rewrites(settings.git_url_rewrite)
    egress = runner_vars.parse_egress_cidrs(settings.runner_egress_cidrs, settings.runner_egress_allow_any)
    if not (Path(settings.templates_dir) / settings.template_set).is_dir():
        raise FailedPrecondition(f"no template set at {Path(settings.templates_dir) / settings.template_set}")
    binary = resolve_binary(settings.terraform_path, os.environ.get("PATH"))
    # The watchdog of this runner's Terraform processes waits the same grace as a cancel.
    shared_guard(settings.terraform_grace_seconds, os.environ.get("PATH", ""))
    work_root = (
        Path(settings.work_dir) if settings.work_dir else Path(tempfile.gettempdir()) / "alethia-runner"
    )
    work_root.mkdir(parents=True, exist_ok=True)
    plugin_cache = PluginCache(
        Path(settings.plugin_cache_dir) if settings.plugin_cache_dir else work_root / "plugin-cache"
    )
    backend = S3Backend(
        bucket=settings.s3_state_bucket,
        region=settings.s3_region,
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_state_access_key or settings.s3_access_key,
        secret_key=settings.s3_state_secret_key or settings.s3_secret_key,
        # auto: AWS S3 always supports SSE; another store only when told (SeaweedFS does).
        encrypt=settings.s3_state_encrypt == "true"
        or (settings.s3_state_encrypt == "auto" and not settings.s3_endpoint),
        kms_key_id=settings.s3_state_kms_key_id,
    )
    # The runner's environment is read here, once: children get only what they need.
    child_env = ChildEnvironments.build(
        os.environ,
        backend_env(backend),
        {**plugin_cache.env(), **go_runtime_env(settings.terraform_gogc, settings.terraform_gomemlimit)},
        passthrough=[n.strip() for n in settings.child_env_passthrough.split(",") if n.strip()],
    )
    version = await Terraform(work_root, binary, env=child_env.terraform).version()
    try:
        keyring = KeyRing.from_reference(settings.artifact_key, os.environ)
    except KeyRingError as exc:
        raise FailedPrecondition(str(exc)) from None
    artifacts = ArtifactStore(
        settings.s3_artifact_bucket,
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        keyring=keyring,
    )
    # The runner presents its own credential (RunnerService accepts only runners); the
    # shared service token stands in where no runner token is configured.
    token = settings.runner_token or settings.service_token or None
    snapshot_channel = connect(settings.snapshot_addr, token)
    mapper_channel = connect(settings.mapper_addr, token)
    runner_stub = snapshot_pb2_grpc.RunnerServiceStub(snapshot_channel)
    snapshot_stub = snapshot_pb2_grpc.SnapshotServiceStub(snapshot_channel)
    mapper_stub = mapper_pb2_grpc.MapperServiceStub(mapper_channel)

    async def render_tfvars(snapshot_json: str) -> tuple[str, str]:
        try:
            resp = await mapper_stub.RenderTfvars(
                mapper_pb2.RenderTfvarsRequest(snapshot_json=snapshot_json), timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            raise FailedPrecondition(f"mapping the snapshot to tfvars failed: {err}") from None
        return resp.template or resp.provider, resp.tfvars_json

    async def get_job(job_id: str) -> snapshot_pb2.Job:
        try:
            return await snapshot_stub.GetJob(snapshot_pb2.GetJobRequest(id=job_id), timeout=15)
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            raise FailedPrecondition(f"plan job {job_id} could not be read: {err}") from None

    async def record_recovery(rec: Recovery) -> None:
        await runner_stub.RecordStateRecovery(
            snapshot_pb2.RecordStateRecoveryRequest(
                job_id=rec.job_id,
                location=rec.location(),
                resources_applied=rec.resources_applied,
                lock_id=rec.lock_id,
                runner_id=runner_id,
                detail=f"working directory {rec.workdir}" if rec.workdir else "",
            ),
            timeout=15,
        )

    async def resolve_recovery(rec: Recovery, what: str) -> None:
        await runner_stub.ResolveStateRecovery(
            snapshot_pb2.ResolveStateRecoveryRequest(job_id=rec.job_id, runner_id=runner_id, resolution=what),
            timeout=15,
        )

    async def find_lock_holder(workspace: str, lock_id: str) -> str:
        try:
            job = await runner_stub.FindStateLockHolder(
                snapshot_pb2.FindStateLockHolderRequest(workspace=workspace, lock_id=lock_id), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise
        return f"{job.id} ({events_pb2.JobType.Name(job.type)}, {events_pb2.JobStatus.Name(job.status)})"

    kept_plans = KeptPlans(work_root / "kept-plans", settings.kept_plans, settings.kept_plan_max_age_seconds)
    # Whatever an earlier life of this runner kept half-way, or too long, goes now.
    removed = await asyncio.to_thread(kept_plans.clean_on_start)
    if removed:
        log.info("runner %s: removed %d stale kept plan directories", runner_id, len(removed))
    state_bucket = StateBucket(backend)
    keeper = RecoveryKeeper(
        Path(settings.recovery_dir) if settings.recovery_dir else work_root / "recovered-state", artifacts
    )
    recovery = RecoveryLoop(
        keeper,
        Pusher(
            binary=binary,
            backend=backend,
            state_bucket=state_bucket,
            work_root=work_root,
            env=child_env.terraform,
            grace_seconds=settings.terraform_grace_seconds,
            artifacts=artifacts,
        ),
        record_recovery,
        resolve_recovery,
        interval=settings.recovery_retry_seconds,
    )

    nc, js = await _nats(settings)
    ctx = ExecutorContext(
        binary=binary,
        terraform_version=version,
        templates_dir=Path(settings.templates_dir),
        template_set=settings.template_set,
        work_root=work_root,
        plugin_cache=plugin_cache,
        backend=backend,
        artifacts=artifacts,
        render_tfvars=render_tfvars,
        get_job=get_job,
        js=js,
        git_url_rewrite=settings.git_url_rewrite,
        terraform_grace_seconds=settings.terraform_grace_seconds,
        state_bucket=state_bucket,
        keeper=keeper,
        record_recovery=record_recovery,
        on_state_kept=recovery.wake,
        find_lock_holder=find_lock_holder,
        runner_tfvars=runner_vars.runner_tfvars_json(egress),
        child_env=child_env,
        runner_id=runner_id,
        kept_plans=kept_plans,
    )
    runner = Runner(
        ctx,
        runner_stub,
        runner_id,
        concurrency=settings.runner_concurrency,
        lease_seconds=settings.runner_lease_seconds,
        poll_seconds=settings.runner_poll_seconds,
        js=js,
    )
    servicer = ExecutorServicer(runner, version, binary.display, settings.runner_drain_grace_seconds)
    server, port, health = await create_server(
        [lambda s: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
        settings.executor_listen,
        authenticator=settings.authenticator(),
    )
    runner.start()
    # Kept states left by an earlier life of this runner are pushed back from the start.
    recovery.start()
    late_nats = (
        asyncio.create_task(_attach_nats_later(settings, ctx, runner), name="runner-nats-connect")
        if js is None
        else None
    )
    log.info("runner %s: Terraform %s (%s), concurrency %d, listening on %d",
             runner_id, version, binary.display, settings.runner_concurrency, port)  # fmt: skip

    async def stop_runner() -> None:
        await runner.drain(settings.runner_drain_grace_seconds)
        await recovery.stop()

    async def close_connections() -> None:
        conns = [nc]
        if late_nats is not None:
            if late_nats.done() and not late_nats.cancelled() and late_nats.exception() is None:
                conns.append(late_nats.result())
            else:
                late_nats.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await late_nats
        for conn in conns:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)  # type: ignore[attr-defined]
        await snapshot_channel.close()
        await mapper_channel.close()

    return ExecutorService(
        server=server,
        port=port,
        health=health,
        host=_host(settings.executor_listen),
        closers=[close_connections, stop_runner],
        runner=runner,
        recovery=recovery,
    )
