"""gRPC servicers of the snapshot service: protobuf <-> domain translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from alethia.errors import NotFound
from alethia.events.v1 import events_pb2
from alethia.rpc.auth import current_caller, zone_of_workspace
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from services.snapshot.events import timestamp
from services.snapshot.job_queue import Claim, JobQueue, JobResult, RecoveryReport, Row
from services.snapshot.relay import NatsLink
from services.snapshot.snapshot import job_snapshot_text
from services.snapshot.watch import watch_job


def _to_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)  # type: ignore[no-any-return]


def _fill(target: Message, value: dict[str, Any] | None) -> None:
    if value:
        json_format.ParseDict(value, target, ignore_unknown_fields=True)


def _set_time(field: Any, value: datetime | None) -> None:
    ts = timestamp(value)
    if ts is not None:
        field.CopyFrom(ts)


def _snapshot_text(row: Row) -> str:
    return job_snapshot_text(
        str(row["id"]), str(row["config_hash"]), row["snapshot"], str(row["plan_job_id"] or "")
    )


def job_to_proto(row: Row, queue_position: int = 0) -> snapshot_pb2.Job:
    """A job row as the ``Job`` message (the snapshot as canonical JSON)."""
    job = snapshot_pb2.Job(
        id=row["id"],
        spec_id=row["spec_id"],
        type=events_pb2.JobType.Value(row["type"]),
        status=events_pb2.JobStatus.Value(row["status"]),
        plan_job_id=row["plan_job_id"] or "",
        config_hash=row["config_hash"],
        spec_revision=int(row["spec_revision"]),
        workspace=row["workspace"],
        snapshot_json=_snapshot_text(row),
        queue_position=queue_position,
        error=row["error"] or "",
        attempt=int(row["attempt"]),
        max_attempts=int(row["max_attempts"]),
        runner_id=row["runner_id"] or "",
        requested_by=row["requested_by"] or "",
        cancel_requested=bool(row["cancel_requested"]),
        idempotency_key=row["idempotency_key"] or "",
        applied_by_job_id=row["applied_by_job_id"] or "",
        lock_id=row.get("lock_id") or "",
        state_lock_id=row.get("state_lock_id") or "",
        resources_applied=int(row.get("resources_applied") or 0),
    )
    _fill(job.changes, row["changes"])
    _fill(job.cost, row["cost"])
    for out in row["outputs"] or []:
        _fill(job.outputs.add(), out)
    for art in row["artifacts"] or []:
        _fill(job.artifacts.add(), art)
    for step in row["post_apply_steps"] or []:
        _fill(job.post_apply_steps.add(), step)
    for err in row["attempt_errors"] or []:
        ae = job.attempt_errors.add(
            attempt=int(err["attempt"]), runner_id=err["runner_id"], error=err["error"]
        )
        _set_time(ae.time, datetime.fromisoformat(err["time"]))
    _set_time(job.create_time, row["create_time"])
    _set_time(job.start_time, row["start_time"])
    _set_time(job.end_time, row["end_time"])
    return job


def claim_to_proto(claim: Claim | None) -> snapshot_pb2.ClaimJobResponse:
    """A claim (or None: nothing claimable) as the ``ClaimJobResponse`` message."""
    if claim is None:
        return snapshot_pb2.ClaimJobResponse(claimed=False)
    lease = snapshot_pb2.Lease(job_id=claim.job["id"], token=claim.lease_token, attempt=claim.job["attempt"])
    _set_time(lease.expires_at, claim.expires_at)
    resp = snapshot_pb2.ClaimJobResponse(claimed=True, job=job_to_proto(claim.job), lease=lease)
    for art in claim.plan_artifacts:
        _fill(resp.plan_artifacts.add(), art)
    return resp


def result_from_proto(result: snapshot_pb2.JobResult) -> JobResult:
    """A runner's ``JobResult`` as the domain type."""
    status = (
        events_pb2.JobStatus.Name(result.status) if result.status in events_pb2.JobStatus.values() else ""
    )
    return JobResult(
        status=status,
        changes=_to_dict(result.changes) if result.HasField("changes") else None,
        cost=_to_dict(result.cost) if result.HasField("cost") else None,
        artifacts=[_to_dict(a) for a in result.artifacts],
        outputs=[_to_dict(o) for o in result.outputs],
        error=result.error,
        post_apply_steps=[_to_dict(s) for s in result.post_apply_steps],
        resources_applied=result.resources_applied,
        state_lock_id=result.state_lock_id,
    )


def recovery_to_proto(row: Row) -> snapshot_pb2.StateRecovery:
    """A ``state_recoveries`` row as the ``StateRecovery`` message."""
    rec = snapshot_pb2.StateRecovery(
        workspace=row["workspace"],
        job_id=row["job_id"],
        spec_id=row["spec_id"],
        state_key=row["state_key"],
        location=row["location"],
        resources_applied=int(row["resources_applied"]),
        lock_id=row["lock_id"] or "",
        runner_id=row["runner_id"] or "",
        detail=row["detail"] or "",
        resolved=row["resolve_time"] is not None,
        resolution=row["resolution"] or "",
    )
    _set_time(rec.create_time, row["create_time"])
    _set_time(rec.resolve_time, row["resolve_time"])
    return rec


def _enum_name(enum: Any, value: int) -> str:
    return str(enum.Name(value)) if value in enum.values() else ""


def _requested_by(client_value: str) -> str:
    """A user's job records the verified subject; only services and unauthenticated local
    setups may name someone else (a trusted tool acting for a person)."""
    caller = current_caller()
    if caller.kind in ("user", "runner"):
        return caller.requested_by
    return client_value or caller.requested_by


class SnapshotServicer(snapshot_pb2_grpc.SnapshotServiceServicer):
    """User-facing: previews, queueing, reading, cancelling and watching jobs.

    Zones: jobs and snapshots of a Spec outside the caller's zones are NOT_FOUND; lists
    show only the caller's zones (``current_caller``).
    """

    def __init__(self, queue: JobQueue, link: NatsLink, state_bucket: str = "") -> None:
        self.queue = queue
        self.link = link
        self.state_bucket = state_bucket

    async def visible_job(self, job_id: str) -> tuple[Row, int]:
        """The job and its queue position, or NOT_FOUND when it is outside the caller's zones."""
        row, position = await self.queue.get_job(job_id)
        if not current_caller().sees(zone_of_workspace(str(row["workspace"]))):
            raise NotFound(f"job {row['id']} not found")
        return row, position

    async def BuildSnapshot(
        self, request: snapshot_pb2.BuildSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.BuildSnapshotResponse:
        frozen = await self.queue.build_snapshot(request.spec_id)
        current_caller().visible(str(frozen.snapshot.get("zone_id", "")), f"spec {request.spec_id}")
        return snapshot_pb2.BuildSnapshotResponse(
            snapshot_json=frozen.text,
            config_hash=frozen.config_hash,
            spec_revision=frozen.spec_revision,
        )

    async def QueueJob(
        self, request: snapshot_pb2.QueueJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.Job:
        row, position = await self.queue.queue_job(
            request.spec_id,
            _enum_name(events_pb2.JobType, request.type),
            request.plan_job_id,
            request.idempotency_key,
            _requested_by(request.requested_by),
            check_zone=lambda zone: current_caller().visible(zone, f"spec {request.spec_id}"),
            lock_id=request.lock_id,
        )
        # A new job's zone was checked before it was written (check_zone); a retried key
        # answers an existing job, checked here on the row itself rather than read again.
        if not current_caller().sees(zone_of_workspace(str(row["workspace"]))):
            raise NotFound(f"job {row['id']} not found")
        return job_to_proto(row, position)

    async def GetJob(
        self, request: snapshot_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.Job:
        row, position = await self.visible_job(request.id)
        return job_to_proto(row, position)

    async def ListJobs(
        self, request: snapshot_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.ListJobsResponse:
        status = ""
        if request.status:  # an unknown number stays non-empty so the queue rejects it
            status = _enum_name(events_pb2.JobStatus, request.status) or str(request.status)
        rows, token = await self.queue.list_jobs(
            request.spec_id, status, request.page_size, request.page_token, current_caller().zone_filter()
        )
        return snapshot_pb2.ListJobsResponse(jobs=[job_to_proto(r) for r in rows], next_page_token=token)

    async def CancelJob(
        self, request: snapshot_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.Job:
        await self.visible_job(request.id)
        return job_to_proto(await self.queue.cancel_job(request.id))

    async def WatchJob(
        self, request: snapshot_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.JobEvent]:
        await self.visible_job(request.id)
        async for ev in watch_job(self.queue, self.link, request.id, request.include_logs):
            yield ev

    async def GetInfrastructureState(
        self, request: snapshot_pb2.GetInfrastructureStateRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.InfrastructureState:
        data = await self.queue.infrastructure_state(request.spec_id)
        if data["workspace"]:  # a Spec outside the caller's zones is not told about
            current_caller().visible(zone_of_workspace(str(data["workspace"])), f"spec {request.spec_id}")
        status = str(data["last_deploy_status"])
        return snapshot_pb2.InfrastructureState(
            spec_id=str(data["spec_id"]),
            workspace=str(data["workspace"]),
            state_key=str(data["state_key"]),
            state_bucket=self.state_bucket,
            may_have_infrastructure=bool(data["may_have_infrastructure"]),
            last_deploy_job_id=str(data["last_deploy_job_id"]),
            last_deploy_status=events_pb2.JobStatus.Value(status)
            if status
            else events_pb2.JOB_STATUS_UNSPECIFIED,
            last_destroy_job_id=str(data["last_destroy_job_id"]),
            active_job_ids=list(data["active_job_ids"]),  # type: ignore[call-overload]
        )


class RunnerServicer(snapshot_pb2_grpc.RunnerServiceServicer):
    """Runner-facing: claim, heartbeat, complete, and the runtime git token."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    async def ClaimJob(
        self, request: snapshot_pb2.ClaimJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.ClaimJobResponse:
        return claim_to_proto(await self.queue.claim_job(request.runner_id, request.lease_seconds))

    async def Heartbeat(
        self, request: snapshot_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.HeartbeatResponse:
        expires, cancel = await self.queue.heartbeat(
            request.lease.job_id, request.lease.token, request.state_lock_id
        )
        resp = snapshot_pb2.HeartbeatResponse(cancel_requested=cancel)
        _set_time(resp.expires_at, expires)
        return resp

    async def CompleteJob(
        self, request: snapshot_pb2.CompleteJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.Job:
        row = await self.queue.complete_job(
            request.lease.job_id, request.lease.token, result_from_proto(request.result)
        )
        return job_to_proto(row)

    async def CompleteAndClaimJob(
        self, request: snapshot_pb2.CompleteAndClaimJobRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.CompleteAndClaimJobResponse:
        row, claim = await self.queue.complete_and_claim(
            request.lease.job_id,
            request.lease.token,
            result_from_proto(request.result),
            request.next.runner_id,
            request.next.lease_seconds,
        )
        return snapshot_pb2.CompleteAndClaimJobResponse(job=job_to_proto(row), next=claim_to_proto(claim))

    async def GetGitToken(
        self, request: snapshot_pb2.GetGitTokenRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.GetGitTokenResponse:
        token, url = await self.queue.git_token(request.job_id, request.lease_token)
        return snapshot_pb2.GetGitTokenResponse(token=token, repository_url=url)

    async def RecordStateRecovery(
        self, request: snapshot_pb2.RecordStateRecoveryRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.StateRecovery:
        row = await self.queue.record_state_recovery(
            RecoveryReport(
                job_id=request.job_id,
                location=request.location,
                resources_applied=request.resources_applied,
                lock_id=request.lock_id,
                runner_id=request.runner_id,
                detail=request.detail,
            )
        )
        return recovery_to_proto(row)

    async def ResolveStateRecovery(
        self, request: snapshot_pb2.ResolveStateRecoveryRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.StateRecovery:
        row = await self.queue.resolve_state_recovery(request.job_id, request.runner_id, request.resolution)
        return recovery_to_proto(row)

    async def ListStateRecoveries(
        self, request: snapshot_pb2.ListStateRecoveriesRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.ListStateRecoveriesResponse:
        rows = await self.queue.list_state_recoveries(request.include_resolved, request.workspace)
        return snapshot_pb2.ListStateRecoveriesResponse(recoveries=[recovery_to_proto(r) for r in rows])

    async def FindStateLockHolder(
        self, request: snapshot_pb2.FindStateLockHolderRequest, context: grpc.aio.ServicerContext
    ) -> snapshot_pb2.Job:
        return job_to_proto(await self.queue.state_lock_holder(request.workspace, request.lock_id))
