"""Whether a Spec still has infrastructure: asked of the snapshot service, which owns the jobs.

The spec service never reads ``provision_jobs``; it calls
``SnapshotService.GetInfrastructureState`` and decides from the answer whether a delete
may go ahead (:func:`delete_decision`, pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from alethia.errors import AlethiaError, FailedPrecondition, PreconditionViolation, Unavailable
from alethia.events.v1 import events_pb2
from alethia.rpc.client import connect
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc


class InfrastructureReader(Protocol):
    """What the spec service needs from the job queue."""

    async def state(self, spec_id: str) -> snapshot_pb2.InfrastructureState: ...

    async def cancel(self, job_id: str) -> None: ...

    async def close(self) -> None: ...


class GrpcInfrastructureReader:
    """``SnapshotService.GetInfrastructureState`` over a channel to ``address``."""

    def __init__(self, address: str, auth_token: str | None = None, timeout: float = 10.0) -> None:
        self._address = address
        self._channel = connect(address, auth_token)
        self._stub = snapshot_pb2_grpc.SnapshotServiceStub(self._channel)
        self._timeout = timeout

    async def state(self, spec_id: str) -> snapshot_pb2.InfrastructureState:
        """The job history's verdict on the Spec's infrastructure; UNAVAILABLE when it cannot be asked."""
        try:
            return await self._stub.GetInfrastructureState(  # type: ignore[no-any-return]
                snapshot_pb2.GetInfrastructureStateRequest(spec_id=spec_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            err: AlethiaError = from_rpc_error(exc)
            if err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                err = Unavailable(
                    f"cannot tell whether the Spec still has infrastructure: the snapshot service at "
                    f"{self._address} is unavailable ({err.message}); nothing was deleted"
                )
            raise err from exc

    async def cancel(self, job_id: str) -> None:
        """Cancel a job (queued: at once; running: Terraform is stopped cleanly)."""
        try:
            await self._stub.CancelJob(snapshot_pb2.CancelJobRequest(id=job_id), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc

    async def close(self) -> None:
        await self._channel.close()


@dataclass(frozen=True)
class DeleteOutcome:
    """What a permitted delete leaves behind (``abandoned``: infrastructure may remain)."""

    abandoned: bool
    workspace: str
    state_bucket: str
    state_key: str
    last_deploy_job_id: str


def delete_decision(
    spec_id: str, workspace: str, state: snapshot_pb2.InfrastructureState, abandon: bool
) -> DeleteOutcome:
    """Allow the delete, or raise FAILED_PRECONDITION naming the workspace and the last DEPLOY.

    Refused while a job of the Spec is QUEUED or RUNNING (even with ``abandon``: a running
    apply would go on for a Spec that no longer exists), and while the Spec may still
    have infrastructure unless ``abandon`` is set.
    """
    workspace = state.workspace or workspace
    location = f"s3://{state.state_bucket}/{state.state_key}" if state.state_key else f"workspace {workspace}"
    if state.active_job_ids:
        raise FailedPrecondition(
            f"spec {spec_id} has jobs that are queued or running: cancel them "
            "(`alethia jobs cancel JOB_ID`) or let them end, then delete",
            [
                PreconditionViolation("JOB_ACTIVE", f"jobs/{job_id}", "queued or running")
                for job_id in state.active_job_ids
            ],
        )
    if state.may_have_infrastructure and not abandon:
        deploy = state.last_deploy_job_id
        status = events_pb2.JobStatus.Name(state.last_deploy_status) if deploy else ""
        what = f"last DEPLOY job {deploy} ({status})" if deploy else "a DESTROY that did not finish"
        raise FailedPrecondition(
            f"spec {spec_id} may still have infrastructure in workspace {workspace} ({what}); destroy it "
            f"first (`alethia destroy {spec_id} --wait`), or delete with abandon (`alethia spec delete "
            f"{spec_id} --abandon`) to leave the resources unmanaged and the state at {location}",
            [
                PreconditionViolation(
                    "INFRASTRUCTURE",
                    f"workspace/{workspace}",
                    f"{what}; no successful DESTROY since; state at {location}",
                )
            ],
        )
    return DeleteOutcome(
        abandoned=state.may_have_infrastructure,
        workspace=workspace,
        state_bucket=state.state_bucket if state.may_have_infrastructure else "",
        state_key=state.state_key if state.may_have_infrastructure else "",
        last_deploy_job_id=state.last_deploy_job_id,
    )
