"""The snapshot service over gRPC with the real spec service, real NATS and a real database.

Freeze, plan-hash validation, idempotency, WatchJob, the git token gate, and the latency
of QueueJob/ClaimJob (printed as measurements, never asserted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import select

from alethia.errors import AlethiaError
from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_STREAM, EVENTS_STREAM, job_subject
from alethia.rpc.client import connect
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import NatsServer
from services.snapshot import store
from services.snapshot.app import SnapshotService, start
from services.snapshot.settings import SnapshotSettings
from tests.conftest import PostgresFactory
from tests.fixtures.specs import ACCOUNT_IDS, create_identity, full_spec_dict, start_specs

PLAN, DEPLOY = events_pb2.PLAN, events_pb2.DEPLOY
GIT_SECRET = "ghp_SNAPSHOTTEST_0a1b2c3d4e5f6a7b8c9d"


@dataclass
class Stack:
    snapshot: snapshot_pb2_grpc.SnapshotServiceStub
    runner: snapshot_pb2_grpc.RunnerServiceStub
    specs: specs_pb2_grpc.SpecServiceStub
    service: SnapshotService
    channel: grpc.aio.Channel
    identity_id: str
    nats_url: str
    runner_nats_url: str = ""


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
async def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_factory: PostgresFactory,
    nats_server: NatsServer,
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("snapshot-svc")
    if request.param == "postgres":  # create() runs its own event loop: keep it off ours
        db = await asyncio.to_thread(postgres_factory.create)
    else:
        db = f"sqlite+aiosqlite:///{tmp / 'snap.db'}"
    tokens = tmp / "git-tokens.json"
    tokens.write_text(json.dumps({"git.example.com": GIT_SECRET}))
    specs_svc = await start_specs(f"sqlite+aiosqlite:///{tmp / 'specs.db'}")
    svc = await start(
        SnapshotSettings(
            database_url=db,
            listen="127.0.0.1:0",
            specs_addr=specs_svc.address,
            nats_url=nats_server.url_for("snapshot"),  # its own NATS user, as in the stack
            git_tokens_file=str(tokens),
            relay_poll_seconds=0.2,
            rescue_interval_seconds=0.3,
        )
    )
    channel = connect(svc.address)
    spec_channel = connect(specs_svc.address)
    spec_stub = specs_pb2_grpc.SpecServiceStub(spec_channel)
    identity = await create_identity(spec_stub, "aws")
    assert svc.link is not None
    await asyncio.wait_for(svc.link.ready.wait(), 20)
    yield Stack(
        snapshot_pb2_grpc.SnapshotServiceStub(channel),
        snapshot_pb2_grpc.RunnerServiceStub(channel),
        spec_stub,
        svc,
        channel,
        identity.id,
        nats_server.url,
        nats_server.url_for("runner"),
    )
    await channel.close()
    await spec_channel.close()
    await svc.stop(1)
    await specs_svc.stop(1)


@pytest.fixture(autouse=True)
async def _no_live_jobs_left(stack: Stack) -> AsyncIterator[None]:
    """Cancel every job a test leaves QUEUED or RUNNING: the stack is shared by the module,
    and a leftover job would be the next one some other test claims (order dependence)."""
    yield
    for status in (events_pb2.QUEUED, events_pb2.RUNNING):
        token = ""
        while True:
            page = await stack.snapshot.ListJobs(
                snapshot_pb2.ListJobsRequest(status=status, page_size=500, page_token=token)
            )
            for job in page.jobs:
                with contextlib.suppress(grpc.aio.AioRpcError):  # it may have ended meanwhile
                    await stack.snapshot.CancelJob(snapshot_pb2.CancelJobRequest(id=job.id))
            token = page.next_page_token
            if not token:
                break


async def new_spec(st: Stack, **overrides: Any) -> specs_pb2.Spec:
    """A full AWS Spec in a workspace of its own (unique project name)."""
    data = full_spec_dict("aws", cloud_identity_id=st.identity_id, **overrides)
    data.setdefault("project_name", "p")
    data["project_name"] = f"{data['project_name']}-{uuid.uuid4().hex[:6]}"
    for repo in data.get("repositories") or []:
        repo["path"] = f"clusters/{data['project_name']}"  # a GitOps path has one owner
    return await st.specs.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data)))


async def update_spec(st: Stack, spec: specs_pb2.Spec, **changes: Any) -> specs_pb2.Spec:
    """Save the Spec again with ``changes`` applied to a copy (a path like ``network.cidr_block``)."""
    new = specs_pb2.Spec()
    new.CopyFrom(spec)
    for path, value in changes.items():
        target: Any = new
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        setattr(target, parts[-1], value)
    return await st.specs.UpdateSpec(specs_pb2.UpdateSpecRequest(spec=new, expected_revision=spec.revision))


async def rpc_error(coro: Any) -> AlethiaError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await coro
    return from_rpc_error(exc.value)


async def run_to(
    st: Stack, job_id: str, status: int = events_pb2.SUCCEEDED, runner: str = "r"
) -> snapshot_pb2.Job:
    """Claim ``job_id`` (it must be the next claimable job) and complete it with ``status``."""
    claim = await st.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id=runner))
    assert claim.claimed and claim.job.id == job_id
    result = snapshot_pb2.JobResult(status=status)
    return await st.runner.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=result))


async def test_health_reports_both_services(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    for name in ("alethia.snapshot.v1.SnapshotService", "alethia.snapshot.v1.RunnerService"):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_queued_job_is_frozen_and_identical_resave_keeps_the_hash(stack: Stack) -> None:
    spec = await new_spec(stack)
    preview = await stack.snapshot.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
    job = await stack.snapshot.QueueJob(
        snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, requested_by="alice")
    )
    assert job.status == events_pb2.QUEUED and job.queue_position == 1
    assert (job.config_hash, job.snapshot_json) == (preview.config_hash, preview.snapshot_json)
    snap = json.loads(job.snapshot_json)
    assert snap["git_access_token"] == "" and snap["spec_id"] == spec.id
    # Provider and account come from the cloud identity, through GetSpec.
    assert (snap["provider"], snap["cloud_account_id"]) == ("aws", ACCOUNT_IDS["aws"])
    assert [d["name"] for d in snap["databases"]] == ["ledger", "sessions"]
    assert job.workspace == f"zone-acme/{spec.project_name}-prod-us-east-1"

    resaved = await update_spec(stack, spec)  # same values, next revision
    assert resaved.revision == spec.revision + 1
    again = await stack.snapshot.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
    assert again.config_hash == preview.config_hash and again.spec_revision == resaved.revision

    await update_spec(stack, resaved, network__cidr_block="10.77.0.0/16")
    changed = await stack.snapshot.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
    assert changed.config_hash != preview.config_hash
    frozen = await stack.snapshot.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
    assert (frozen.config_hash, frozen.snapshot_json) == (job.config_hash, job.snapshot_json)
    assert frozen.spec_revision == spec.revision
    assert json.loads(frozen.snapshot_json)["network"]["cidr_block"] == "10.20.0.0/16"
    await stack.snapshot.CancelJob(snapshot_pb2.CancelJobRequest(id=job.id))


async def test_stale_deploy_is_refused_fresh_is_accepted_and_a_plan_applies_once(stack: Stack) -> None:
    spec = await new_spec(stack)
    plan = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
    # A plan that has not succeeded cannot be applied.
    early = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
        )
    )
    assert early.code == grpc.StatusCode.FAILED_PRECONDITION and "SUCCEEDED" in early.message
    await run_to(stack, plan.id)

    edited = await update_spec(
        stack, spec, network__cidr_block="10.30.0.0/16", databases__0__instance_class="db.r6g.large"
    )
    stale = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
        )
    )
    assert stale.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "re-plan" in stale.message
    assert "network.cidr_block" in stale.message and "databases[0].instance_class" in stale.message
    assert [(p.type, p.subject, p.description) for p in stale.preconditions] == [
        ("PLAN_HASH", "databases[0].instance_class", "changed since the plan"),
        ("PLAN_HASH", "network.cidr_block", "changed since the plan"),
    ]
    assert "10.30" not in stale.message and "r6g" not in stale.message  # paths, never values

    # Put the values back: the hash matches the plan again and the deploy is accepted.
    await update_spec(
        stack, edited, network__cidr_block="10.20.0.0/16", databases__0__instance_class="db.serverless"
    )
    deploy = await stack.snapshot.QueueJob(
        snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
    )
    assert deploy.status == events_pb2.QUEUED
    assert (deploy.snapshot_json, deploy.config_hash) == (plan.snapshot_json, plan.config_hash)
    pending = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
        )
    )
    assert pending.code == grpc.StatusCode.FAILED_PRECONDITION and deploy.id in pending.message

    await run_to(stack, deploy.id)
    applied = await stack.snapshot.GetJob(snapshot_pb2.GetJobRequest(id=plan.id))
    assert applied.applied_by_job_id == deploy.id
    twice = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
        )
    )
    assert twice.code == grpc.StatusCode.FAILED_PRECONDITION and "already applied" in twice.message

    other = await new_spec(stack)
    foreign = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=other.id, type=DEPLOY, plan_job_id=plan.id)
        )
    )
    assert foreign.code == grpc.StatusCode.INVALID_ARGUMENT and foreign.violations[0].field == "plan_job_id"


async def test_concurrent_deploys_of_one_plan_queue_only_one(stack: Stack) -> None:
    spec = await new_spec(stack)
    plan = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
    await run_to(stack, plan.id)
    results = await asyncio.gather(
        *(
            stack.snapshot.QueueJob(
                snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=DEPLOY, plan_job_id=plan.id)
            )
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, snapshot_pb2.Job)]
    refused = [from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(refused) == 4
    assert {e.code for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    await stack.snapshot.CancelJob(snapshot_pb2.CancelJobRequest(id=ok[0].id))


async def test_queue_job_rejects_bad_input_and_writes_nothing(stack: Stack) -> None:
    spec = await new_spec(stack)
    missing = await rpc_error(
        stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=str(uuid.uuid4()), type=PLAN))
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND
    bad = await rpc_error(stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id)))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and [v.field for v in bad.violations] == ["type"]
    plan_on_plan = await rpc_error(
        stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, plan_job_id="x"))
    )
    assert [v.field for v in plan_on_plan.violations] == ["plan_job_id"]
    listed = await stack.snapshot.ListJobs(snapshot_pb2.ListJobsRequest(spec_id=spec.id))
    assert list(listed.jobs) == []
    nojob = await rpc_error(stack.snapshot.GetJob(snapshot_pb2.GetJobRequest(id="nope")))
    assert nojob.code == grpc.StatusCode.NOT_FOUND


async def test_the_same_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    spec = await new_spec(stack)
    key = f"click-{uuid.uuid4()}"
    req = snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, idempotency_key=key)
    jobs = await asyncio.gather(*(stack.snapshot.QueueJob(req) for _ in range(6)))
    assert len({j.id for j in jobs}) == 1 and jobs[0].idempotency_key == key
    listed = await stack.snapshot.ListJobs(snapshot_pb2.ListJobsRequest(spec_id=spec.id))
    assert [j.id for j in listed.jobs] == [jobs[0].id]
    other = await rpc_error(
        stack.snapshot.QueueJob(
            snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=events_pb2.DESTROY, idempotency_key=key)
        )
    )
    assert other.code == grpc.StatusCode.INVALID_ARGUMENT and other.violations[0].field == "idempotency_key"
    await stack.snapshot.CancelJob(snapshot_pb2.CancelJobRequest(id=jobs[0].id))


async def _watch(st: Stack, job_id: str, include_logs: bool = False) -> list[events_pb2.JobEvent]:
    call = st.snapshot.WatchJob(snapshot_pb2.WatchJobRequest(id=job_id, include_logs=include_logs))
    return [ev async for ev in call]


async def test_watch_job_streams_from_the_start_to_the_terminal_event(stack: Stack) -> None:
    import nats

    spec = await new_spec(stack)
    job = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
    live = asyncio.create_task(asyncio.wait_for(_watch(stack, job.id), 30))
    claim = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="w"))
    assert claim.job.id == job.id
    # Runners publish Terraform's log lines straight to the job's subject.
    nc = await nats.connect(stack.nats_url)
    log_ev = events_pb2.JobEvent(event_id=str(uuid.uuid4()), job_id=job.id, type="log")
    log_ev.log.message = "Plan: 3 to add"
    await nc.jetstream().publish(job_subject(job.id, "log"), log_ev.SerializeToString())
    await nc.close()
    result = snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
    result.changes.add = 3
    await stack.runner.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=result))

    events = await live
    assert [e.type for e in events] == ["queued", "started", "planned", "succeeded"]
    assert events[2].changes.add == 3 and events[-1].status == events_pb2.SUCCEEDED
    assert all(e.job_id == job.id and e.workspace == job.workspace for e in events)
    # Watching a finished job replays it (with logs when asked) and ends.
    replay = await asyncio.wait_for(_watch(stack, job.id, include_logs=True), 30)
    types = [e.type for e in replay]
    # The runner's log line goes straight to NATS, "started" through the outbox: only the
    # log's place before the completion is certain.
    assert [t for t in types if t != "log"] == ["queued", "started", "planned", "succeeded"]
    assert types.count("log") == 1 and types.index("log") < types.index("planned")
    assert replay[types.index("log")].log.message == "Plan: 3 to add"
    missing = await rpc_error(_watch(stack, "no-such-job"))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_watch_drops_undecodable_and_mistyped_messages_with_one_warning(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """What a runner can put on its log subject never shows as a job state, and never a traceback."""
    from alethia.messaging import connect as nats_connect

    spec = await new_spec(stack)
    job = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
    claim = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="w"))
    assert claim.job.id == job.id
    nc = await nats_connect(stack.runner_nats_url, "hostile-runner")
    js = nc.jetstream()
    subject = job_subject(job.id, "log")
    fake_end = events_pb2.JobEvent(
        event_id="x1", job_id=job.id, type="succeeded", status=events_pb2.SUCCEEDED
    )
    other_job = events_pb2.JobEvent(event_id="x2", job_id="another-job", type="log")
    good = events_pb2.JobEvent(event_id="x3", job_id=job.id, type="log")
    good.log.message = "a real line"
    for payload in (b"\xff\xfe not a protobuf \x00\x01", fake_end.SerializeToString(), other_job.SerializeToString(),
                    good.SerializeToString()):  # fmt: skip
        await js.publish(subject, payload)
    await nc.close()
    result = snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
    await stack.runner.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=claim.lease, result=result))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="services.snapshot.watch"):
        events = await asyncio.wait_for(_watch(stack, job.id, include_logs=True), 30)
    assert [e.type for e in events if e.type != "log"] == ["queued", "started", "planned", "succeeded"]
    assert [e.log.message for e in events if e.type == "log"] == ["a real line"]
    assert [e.event_id for e in events if e.type == "succeeded"] != ["x1"], "the forged end was not shown"
    dropped = [r for r in caplog.records if r.name == "services.snapshot.watch"]
    assert len(dropped) == 3 and all(r.levelno == logging.WARNING and not r.exc_info for r in dropped)
    assert all(len(r.getMessage().splitlines()) == 1 for r in dropped)


async def _stream_payloads(nats_url: str) -> list[bytes]:
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    out: list[bytes] = []
    for stream in (EVENTS_STREAM, DISPATCH_STREAM):
        info = await js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except Exception:  # deleted/acked (work queue) messages leave gaps
                continue
            out.append((msg.data or b"") + repr(msg.headers).encode())
    await nc.close()
    return out


async def test_git_token_only_for_the_lease_holder_and_never_stored_or_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = await new_spec(stack)
    job = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
    claim = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="g", lease_seconds=1))
    assert claim.job.id == job.id

    wrong = await rpc_error(
        stack.runner.GetGitToken(snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token="guess"))
    )
    got = await stack.runner.GetGitToken(
        snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token=claim.lease.token)
    )
    assert got.token == GIT_SECRET and got.repository_url == "https://git.example.com/platform/apps.git"

    # No heartbeat: the 1 s lease runs out and the background rescuer queues the plan again.
    for _ in range(100):
        current = await stack.snapshot.GetJob(snapshot_pb2.GetJobRequest(id=job.id))
        if current.status == events_pb2.QUEUED:
            break
        await asyncio.sleep(0.1)
    assert current.status == events_pb2.QUEUED and [e.attempt for e in current.attempt_errors] == [1]
    expired = await rpc_error(
        stack.runner.GetGitToken(
            snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token=claim.lease.token)
        )
    )
    assert wrong.code == expired.code == grpc.StatusCode.PERMISSION_DENIED
    assert wrong.message == expired.message

    second = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="g2"))
    assert second.job.id == job.id and second.lease.attempt == 2
    again = await stack.runner.GetGitToken(
        snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token=second.lease.token)
    )
    assert again.token == GIT_SECRET
    await stack.runner.CompleteJob(
        snapshot_pb2.CompleteJobRequest(
            lease=second.lease, result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
        )
    )
    finished = await rpc_error(
        stack.runner.GetGitToken(
            snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token=second.lease.token)
        )
    )
    assert finished.code == grpc.StatusCode.PERMISSION_DENIED and finished.message == wrong.message
    events = await asyncio.wait_for(_watch(stack, job.id), 30)  # every event of the job is in the stream
    assert [e.type for e in events] == ["queued", "started", "requeued", "started", "planned", "succeeded"]

    assert stack.service.queue is not None
    async with stack.service.queue.sessions() as session:
        for table in (store.provision_jobs, store.job_outbox):
            rows = (await session.execute(select(table))).all()
            assert rows and GIT_SECRET not in repr(rows)
    payloads = await _stream_payloads(stack.nats_url)
    assert payloads and not any(GIT_SECRET.encode() in p for p in payloads)
    assert GIT_SECRET not in caplog.text


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * (len(values) - 1)))]


async def test_measure_queue_and_claim_latency(stack: Stack, request: pytest.FixtureRequest) -> None:
    n = 30
    specs = [await new_spec(stack) for _ in range(n)]
    queue_ms, claim_ms, build_ms = [], [], []
    for spec in specs:
        t0 = time.perf_counter()
        await stack.snapshot.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
        build_ms.append((time.perf_counter() - t0) * 1000)
    for spec in specs:
        t0 = time.perf_counter()
        await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN))
        queue_ms.append((time.perf_counter() - t0) * 1000)
    leases = []
    t_all = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        claim = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="m"))
        claim_ms.append((time.perf_counter() - t0) * 1000)
        assert claim.claimed
        leases.append(claim.lease)
    claims_per_s = n / (time.perf_counter() - t_all)
    for lease in leases:
        await stack.runner.CompleteJob(
            snapshot_pb2.CompleteJobRequest(
                lease=lease, result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
            )
        )
    assert len({lease.job_id for lease in leases}) == n
    db = request.node.callspec.params.get("stack", "?")
    print(
        f"\n[measure] {db}: BuildSnapshot (GetSpec + freeze) p50 {statistics.median(build_ms):.1f} ms; "
        f"QueueJob p50 {statistics.median(queue_ms):.1f} ms p95 {_pct(queue_ms, 0.95):.1f} ms; "
        f"ClaimJob p50 {statistics.median(claim_ms):.1f} ms p95 {_pct(claim_ms, 0.95):.1f} ms; "
        f"sequential claims {claims_per_s:.0f}/s (n={n}, over gRPC)"
    )


async def test_complete_and_claim_completes_then_claims_the_next_job(stack: Stack) -> None:
    """One call per job: the result is committed with its events, then the next claim is made."""
    first_spec, second_spec = await new_spec(stack), await new_spec(stack)
    first = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=first_spec.id, type=PLAN))
    second = await stack.snapshot.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=second_spec.id, type=PLAN))
    claim = await stack.runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="cc"))
    assert claim.claimed and claim.job.id == first.id

    # Bad claim arguments are refused, naming the field, before the completion is written.
    bad = await rpc_error(
        stack.runner.CompleteAndClaimJob(
            snapshot_pb2.CompleteAndClaimJobRequest(
                lease=claim.lease,
                result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED),
                next=snapshot_pb2.ClaimJobRequest(runner_id="cc", lease_seconds=-1),
            )
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and bad.violations[0].field == "next.lease_seconds"
    still = await stack.snapshot.GetJob(snapshot_pb2.GetJobRequest(id=first.id))
    assert still.status == events_pb2.RUNNING

    request = snapshot_pb2.CompleteAndClaimJobRequest(
        lease=claim.lease,
        result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED),
        next=snapshot_pb2.ClaimJobRequest(runner_id="cc", lease_seconds=60),
    )
    resp = await stack.runner.CompleteAndClaimJob(request)
    assert resp.job.id == first.id and resp.job.status == events_pb2.SUCCEEDED
    assert resp.job.snapshot_json == first.snapshot_json
    assert resp.next.claimed and resp.next.job.id == second.id and resp.next.lease.token
    assert resp.next.job.status == events_pb2.RUNNING and resp.next.job.snapshot_json == second.snapshot_json
    # The claim is a real lease: heartbeats renew it, the old lease no longer acts.
    beat = await stack.runner.Heartbeat(snapshot_pb2.HeartbeatRequest(lease=resp.next.lease))
    assert beat.expires_at.seconds > 0
    # A retried completion is answered alike and claims nothing more (the queue is empty).
    again = await stack.runner.CompleteAndClaimJob(request)
    assert again.job.id == first.id and again.job.status == events_pb2.SUCCEEDED and not again.next.claimed
    lost = await rpc_error(
        stack.runner.CompleteJob(
            snapshot_pb2.CompleteJobRequest(
                lease=claim.lease, result=snapshot_pb2.JobResult(status=events_pb2.FAILED)
            )
        )
    )
    assert lost.code == grpc.StatusCode.FAILED_PRECONDITION
    done = await stack.runner.CompleteAndClaimJob(
        snapshot_pb2.CompleteAndClaimJobRequest(
            lease=resp.next.lease,
            result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED),
            next=snapshot_pb2.ClaimJobRequest(runner_id="cc"),
        )
    )
    assert done.job.id == second.id and done.job.status == events_pb2.SUCCEEDED and not done.next.claimed
