"""Scenario 9: service-to-service authentication, every RPC of every service.

All four services run with ``ALETHIA_SERVICE_TOKEN`` set (the runner talks to the snapshot
service and the mapper with it). Every RPC named in the contracts is called with no
credentials, a wrong token, a token with one character changed and the right token in
the wrong scheme: each is refused with ``UNAUTHENTICATED`` before the servicer runs
(rows written 0). With the right token the same calls reach the servicer (any answer
but ``UNAUTHENTICATED``). Health stays open for probes. Compose turns the setting on for
every service.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alethia.executor.v1 import executor_pb2
from alethia.mapper.v1 import mapper_pb2
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from tests.fixtures.specs import minimal_spec_dict
from tests.harness import PLAN, REPO_ROOT, Pipeline

TOKEN = "auth-token-reliability-4b8d2e6f"
# Calls that would change the service's life (Drain stops the runner) are only made unauthenticated.
NOT_WITH_THE_RIGHT_TOKEN = {"alethia.executor.v1.ExecutorService/Drain"}


def _methods(pb2: Any) -> list[tuple[str, Any]]:
    return [(svc.full_name, m) for svc in pb2.DESCRIPTOR.services_by_name.values() for m in svc.methods]


async def _call(
    address: str, service: str, method: Any, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    req_cls = message_factory.GetMessageClass(method.input_type)
    resp_cls = message_factory.GetMessageClass(method.output_type)
    path = f"/{service}/{method.name}"
    async with grpc.aio.insecure_channel(address) as ch:
        try:
            if method.server_streaming:
                call = ch.unary_stream(path, request_serializer=req_cls.SerializeToString,
                                       response_deserializer=resp_cls.FromString)  # fmt: skip
                async for _ in call(req_cls(), metadata=metadata, timeout=5):
                    break
            else:
                call = ch.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                      response_deserializer=resp_cls.FromString)  # fmt: skip
                await call(req_cls(), metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_every_service_refuses_calls_without_the_token(make_pipeline: Any) -> None:
    p: Pipeline = await make_pipeline(service_token=TOKEN)
    runner = await p.start_runner(runner_concurrency=1)
    targets = [
        (p.specs.address, _methods(specs_pb2)),
        (p.snapshot.address, _methods(snapshot_pb2)),
        (p.mapper.address, _methods(mapper_pb2)),
        (runner.address, _methods(executor_pb2)),
    ]
    bad_credentials = [
        (),
        (("authorization", "Bearer wrong"),),
        (("authorization", f"Bearer {TOKEN[:-1]}x"),),
        (("authorization", TOKEN),),  # no scheme
        (("authorization", f"Basic {TOKEN}"),),
    ]
    spec = await p.create_spec("auth", repos=True)
    jobs_before = len((await p.jobs.ListJobs(snapshot_pb2.ListJobsRequest(page_size=500))).jobs)
    specs_before = len((await p.spec_stub.ListSpecs(specs_pb2.ListSpecsRequest(page_size=500))).specs)

    refused = calls = reached = 0
    wrong: list[str] = []
    for address, methods in targets:
        for service, method in methods:
            for md in bad_credentials:
                calls += 1
                code = await _call(address, service, method, md)
                if code == grpc.StatusCode.UNAUTHENTICATED:
                    refused += 1
                else:
                    wrong.append(f"{service}/{method.name} {md}: {code.name}")
            if f"{service}/{method.name}" in NOT_WITH_THE_RIGHT_TOKEN:
                continue
            code = await _call(address, service, method, (("authorization", f"Bearer {TOKEN}"),))
            if code == grpc.StatusCode.UNAUTHENTICATED:
                wrong.append(f"{service}/{method.name} refused the right token")
            reached += 1
    assert wrong == [], wrong
    assert refused == calls

    # Real requests without the token write nothing.
    async with grpc.aio.insecure_channel(p.specs.address) as ch:
        data = minimal_spec_dict("aws", project_name="auth-intruder", cloud_identity_id=p.identity_id)
        try:
            await specs_pb2_grpc.SpecServiceStub(ch).CreateSpec(
                specs_pb2.CreateSpecRequest(spec=spec_from_dict(data))
            )
            raise AssertionError("CreateSpec without the token succeeded")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(p.snapshot.address) as ch:
        try:
            await snapshot_pb2_grpc.SnapshotServiceStub(ch).QueueJob(
                snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, idempotency_key="intruder")
            )
            raise AssertionError("QueueJob without the token succeeded")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len((await p.jobs.ListJobs(snapshot_pb2.ListJobsRequest(page_size=500))).jobs) == jobs_before
    assert len((await p.spec_stub.ListSpecs(specs_pb2.ListSpecsRequest(page_size=500))).specs) == specs_before

    # Health stays open for load balancers and probes.
    for address in (p.specs.address, p.snapshot.address, p.mapper.address, runner.address):
        async with grpc.aio.insecure_channel(address) as ch:
            h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
            assert h.status == health_pb2.HealthCheckResponse.SERVING

    # docker-compose.yml requires the token for every service that serves or calls gRPC.
    compose = yaml.safe_load(await asyncio.to_thread(Path(REPO_ROOT / "docker-compose.yml").read_text))
    # The gateway is the exception the other way round: it forwards the user's own token and
    # must never hold the service token (a gateway compromise must not be every zone's key).
    gateway_env = compose["services"]["gateway"].get("environment") or {}
    assert "ALETHIA_SERVICE_TOKEN" not in gateway_env and "ALETHIA_RUNNER_TOKEN" not in gateway_env
    grpc_services = [
        name
        for name, svc in compose["services"].items()
        if name != "gateway"
        and (
            any("ALETHIA_" in str(k) and "ADDR" in str(k) for k in (svc.get("environment") or {}))
            or "services." in json.dumps(svc.get("command", ""))
        )
    ]
    assert grpc_services
    missing = [
        n
        for n in grpc_services
        if "ALETHIA_SERVICE_TOKEN" not in (compose["services"][n].get("environment") or {})
    ]
    assert missing == [], missing
    print(
        "RELIABILITY auth",
        json.dumps({"rpcs": sum(len(m) for _, m in targets), "calls_without_valid_token": calls,
                    "unauthenticated": refused, "reached_with_token": reached, "rows_written": 0}),
    )  # fmt: skip
