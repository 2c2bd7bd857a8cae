"""Deleting a Spec that may still have infrastructure is refused unless it was destroyed or abandoned.

The spec service asks the real snapshot service (it owns the jobs); jobs are moved through
the real RunnerService (claim, complete) as a runner would, without Terraform (the
executor end-to-end test does the same with real Terraform).
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from alethia.errors import AlethiaError
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2
from alethia.specs.v1 import specs_pb2
from tests.fixtures.specs import minimal_spec_dict
from tests.specs.conftest import Pipeline, SpecsEnv, rpc_error


async def _job(p: Pipeline, spec_id: str, jtype: int, status: int, plan: str = "") -> snapshot_pb2.Job:
    """Queue a job, claim it as a runner and complete it with ``status``."""
    job = await p.jobs.QueueJob(
        snapshot_pb2.QueueJobRequest(
            spec_id=spec_id, type=jtype, plan_job_id=plan, idempotency_key=uuid.uuid4().hex, requested_by="t"
        )
    )
    claim = await p.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="runner-t"))
    assert claim.claimed and claim.job.id == job.id
    result = snapshot_pb2.JobResult(status=status)
    return await p.runner.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=result))  # type: ignore[no-any-return]


async def _deployed(p: Pipeline, project: str) -> tuple[specs_pb2.Spec, snapshot_pb2.Job]:
    spec = await p.specs.create(
        minimal_spec_dict("aws", cloud_identity_id=p.identity_id, project_name=project)
    )
    plan = await _job(p, spec.id, events_pb2.PLAN, events_pb2.SUCCEEDED)
    deploy = await _job(p, spec.id, events_pb2.DEPLOY, events_pb2.SUCCEEDED, plan.id)
    return spec, deploy


async def _delete(p: Pipeline, spec_id: str, abandon: bool = False) -> Any:
    return await p.specs.stub.DeleteSpec(specs_pb2.DeleteSpecRequest(id=spec_id, abandon=abandon))


async def _exists(p: Pipeline, spec_id: str) -> bool:
    try:
        await p.specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=spec_id))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return False
    return True


async def test_delete_refused_while_deployed_then_allowed_after_destroy(pipeline: Pipeline) -> None:
    p = pipeline
    spec, deploy = await _deployed(p, "shop")
    before = await p.specs.counts()
    err: AlethiaError = await rpc_error(_delete(p, spec.id))
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION
    workspace = "zone-acme/shop-dev-us-east-1"
    assert workspace in err.message and deploy.id in err.message and "--abandon" in err.message
    [violation] = err.preconditions
    assert violation.type == "INFRASTRUCTURE" and violation.subject == f"workspace/{workspace}"
    assert f"s3://team-state/{workspace}/terraform.tfstate" in violation.description
    assert await p.specs.counts() == before
    # A DESTROY that FAILED leaves infrastructure behind: still refused.
    await _job(p, spec.id, events_pb2.DESTROY, events_pb2.FAILED)
    assert (await rpc_error(_delete(p, spec.id))).code == grpc.StatusCode.FAILED_PRECONDITION
    # A DESTROY that succeeded: the delete goes through, nothing abandoned.
    await _job(p, spec.id, events_pb2.DESTROY, events_pb2.SUCCEEDED)
    resp = await _delete(p, spec.id)
    assert not resp.abandoned and resp.state_key == "" and resp.last_deploy_job_id == deploy.id
    assert not await _exists(p, spec.id)


async def test_a_deploy_after_the_destroy_counts_again(pipeline: Pipeline) -> None:
    p = pipeline
    spec, _ = await _deployed(p, "again")
    await _job(p, spec.id, events_pb2.DESTROY, events_pb2.SUCCEEDED)
    # A DEPLOY that failed halfway may have created resources.
    redeploy = await _job(p, spec.id, events_pb2.DEPLOY, events_pb2.FAILED)
    err = await rpc_error(_delete(p, spec.id))
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION and redeploy.id in err.message


async def test_abandon_deletes_and_says_where_the_state_stays(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    p = pipeline
    spec, deploy = await _deployed(p, "legacy")
    with caplog.at_level("WARNING", logger="services.specs.catalog"):
        resp = await _delete(p, spec.id, abandon=True)
    assert resp.abandoned
    assert (resp.workspace, resp.state_bucket, resp.state_key) == (
        "zone-acme/legacy-dev-us-east-1",
        "team-state",
        "zone-acme/legacy-dev-us-east-1/terraform.tfstate",
    )
    assert resp.last_deploy_job_id == deploy.id
    assert any("abandoned" in r.getMessage() and resp.state_key in r.getMessage() for r in caplog.records)
    assert not await _exists(p, spec.id)


async def test_never_deployed_spec_deletes_and_active_jobs_block_even_abandon(pipeline: Pipeline) -> None:
    p = pipeline
    spec = await p.specs.create(
        minimal_spec_dict("aws", cloud_identity_id=p.identity_id, project_name="fresh")
    )
    await _job(p, spec.id, events_pb2.PLAN, events_pb2.SUCCEEDED)  # a plan changes nothing
    queued = await p.jobs.QueueJob(
        snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=events_pb2.PLAN, idempotency_key="q1")
    )
    for abandon in (False, True):
        err = await rpc_error(_delete(p, spec.id, abandon))
        assert err.code == grpc.StatusCode.FAILED_PRECONDITION
        assert [v.subject for v in err.preconditions] == [f"jobs/{queued.id}"]
    await p.jobs.CancelJob(snapshot_pb2.CancelJobRequest(id=queued.id))
    resp = await _delete(p, spec.id)
    assert not resp.abandoned
    assert not await _exists(p, spec.id)


async def test_delete_is_refused_when_the_job_history_cannot_be_read(specs: SpecsEnv) -> None:
    # The ``specs`` fixture's snapshot address has nothing listening.
    spec = await specs.create_full("aws")
    before = await specs.counts()
    err = await rpc_error(specs.stub.DeleteSpec(specs_pb2.DeleteSpecRequest(id=spec.id, abandon=True)))
    assert err.code == grpc.StatusCode.UNAVAILABLE and "nothing was deleted" in err.message
    assert await specs.counts() == before


class _QueueInTheWindow:
    """The real reader, plus a QueueJob by someone else right after the first answer."""

    def __init__(self, reader: Any, p: Pipeline, spec_id: str) -> None:
        self.reader, self.p, self.spec_id = reader, p, spec_id
        self.sneaked: list[str] = []

    async def state(self, spec_id: str) -> snapshot_pb2.InfrastructureState:
        answer = await self.reader.state(spec_id)
        if not self.sneaked:
            job = await self.p.jobs.QueueJob(
                snapshot_pb2.QueueJobRequest(
                    spec_id=self.spec_id, type=events_pb2.DEPLOY, idempotency_key="late"
                )
            )
            self.sneaked.append(job.id)
        return answer  # type: ignore[no-any-return]

    async def cancel(self, job_id: str) -> None:
        await self.reader.cancel(job_id)

    async def close(self) -> None:
        await self.reader.close()


async def test_a_job_queued_during_the_delete_is_cancelled(pipeline: Pipeline) -> None:
    from alethia.database import create_engine
    from services.specs.catalog import SpecCatalog
    from services.specs.infrastructure import GrpcInfrastructureReader

    p = pipeline
    spec = await p.specs.create(
        minimal_spec_dict("aws", cloud_identity_id=p.identity_id, project_name="late")
    )
    engine = create_engine(p.specs.url)
    reader = _QueueInTheWindow(GrpcInfrastructureReader(p.snapshot_addr), p, spec.id)
    try:
        outcome = await SpecCatalog(engine, reader).delete_spec(spec.id, 0)
    finally:
        await reader.close()
        await engine.dispose()
    assert not outcome.abandoned and len(reader.sneaked) == 1
    late = await p.jobs.GetJob(snapshot_pb2.GetJobRequest(id=reader.sneaked[0]))
    assert late.status == events_pb2.CANCELLED  # it never runs for a Spec that is gone
    assert not await _exists(p, spec.id)
