"""The gateway through a real Envoy: every REST route, the event stream, errors, identities.

Each test talks HTTP to Envoy (or gRPC / gRPC-Web to the same port) exactly as the Console
or a runner would; the spec and snapshot services behind it are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.infra import free_port
from tests.fixtures.specs import identity_dict

from .conftest import spec_body
from .harness import GIT_TOKEN, REPOSITORY, ZONE_A, ZONE_B, GatewayStack, Reply

OPENAPI = Path(__file__).resolve().parents[2] / "alethia" / "gateway" / "openapi.json"


async def create_spec(
    gw: GatewayStack, identity_id: str, who: str = "alice", zone: str = ZONE_A
) -> dict[str, Any]:
    reply = await gw.request("POST", "/api/specs", who=who, body=spec_body(identity_id, zone))
    assert reply.status == 200, reply.text
    return dict(reply.body)


async def queue(gw: GatewayStack, spec_id: str, who: str = "alice", **extra: Any) -> Reply:
    return await gw.request("POST", "/api/jobs", who=who, body={"spec_id": spec_id, "type": "PLAN", **extra})


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, data) of each frame; comment lines (keepalives) are skipped."""
    out: list[tuple[str, dict[str, Any]]] = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        assert set(fields) <= {"id", "data", "event"}, frame
        out.append((fields.get("id", ""), json.loads(fields["data"])))
    return out


# ------------------------------------------------------------------------------ routes


async def test_identity_and_spec_routes(gw: GatewayStack, identity_id: str) -> None:
    listed = await gw.request("GET", "/api/identities", who="alice")
    assert listed.status == 200 and identity_id in [i["id"] for i in listed.body["identities"]]
    one = await gw.request("GET", f"/api/identities/{identity_id}", who="bob")
    assert one.status == 200 and one.body["provider"] == "aws"

    body = spec_body(identity_id)
    # camelCase is accepted on input (proto3 JSON); snake_case is what comes back.
    body["projectName"] = body.pop("project_name")
    created = await gw.request("POST", "/api/specs", who="alice", body=body)
    assert created.status == 200, created.text
    spec = created.body
    assert spec["project_name"] == body["projectName"] and spec["revision"] == "1"
    assert "projectName" not in spec and spec["provider"] == "aws"

    got = await gw.request("GET", f"/api/specs/{spec['id']}", who="alice")
    assert got.status == 200 and got.body["id"] == spec["id"]
    listed = await gw.request("GET", f"/api/specs?zone_id={ZONE_A}&page_size=500", who="alice")
    assert spec["id"] in [s["id"] for s in listed.body["specs"]]

    changed = {**body, "cluster": {**body["cluster"], "node_max_size": 7}}
    updated = await gw.request(
        "PUT", f"/api/specs/{spec['id']}?expected_revision=1", who="alice", body=changed
    )
    assert updated.status == 200, updated.text
    assert updated.body["revision"] == "2" and updated.body["cluster"]["node_max_size"] == 7

    snap = await gw.request("GET", f"/api/specs/{spec['id']}/snapshot", who="alice")
    assert snap.status == 200 and snap.body["spec_revision"] == "2" and len(snap.body["config_hash"]) == 64
    assert json.loads(snap.body["snapshot_json"])["zone_id"] == ZONE_A

    deleted = await gw.request("DELETE", f"/api/specs/{spec['id']}?expected_revision=2", who="alice")
    # Never deployed: deleted, nothing abandoned (proto3 JSON leaves out false and empty fields).
    assert deleted.status == 200 and not deleted.body.get("abandoned") and not deleted.body.get("state_key")
    gone = await gw.request("GET", f"/api/specs/{spec['id']}", who="alice")
    assert gone.status == 404 and gone.body["code"] == grpc.StatusCode.NOT_FOUND.value[0]


async def test_job_routes_and_requested_by_is_the_verified_subject(
    gw: GatewayStack, identity_id: str
) -> None:
    spec = await create_spec(gw, identity_id)
    job = await queue(gw, spec["id"], requested_by="someone-else", idempotency_key=f"k-{spec['id']}")
    assert job.status == 200, job.text
    assert job.body["type"] == "PLAN" and job.body["status"] == "QUEUED"
    assert job.body["requested_by"] == "alice@example.com"  # the token's subject, not the body's text
    job_id = job.body["id"]

    got = await gw.request("GET", f"/api/jobs/{job_id}", who="alice")
    assert got.status == 200 and got.body["queue_position"] >= 1
    filtered = await gw.request("GET", f"/api/jobs?spec_id={spec['id']}&status=QUEUED", who="alice")
    assert [j["id"] for j in filtered.body["jobs"]] == [job_id]
    none = await gw.request("GET", f"/api/jobs?spec_id={spec['id']}&status=SUCCEEDED", who="alice")
    assert none.body["jobs"] == []

    cancelled = await gw.request("POST", f"/api/jobs/{job_id}/cancel", who="alice", body={})
    assert cancelled.status == 200 and cancelled.body["status"] == "CANCELLED"


# ------------------------------------------------------------------------------ events


async def test_event_stream_live_to_the_end_and_resume(gw: GatewayStack, identity_id: str) -> None:
    spec = await create_spec(gw, identity_id)
    job_id = (await queue(gw, spec["id"])).body["id"]
    assert gw.http is not None

    async def read_stream(headers: dict[str, str], query: str = "") -> tuple[int, str, str]:
        async with gw.http.get(  # type: ignore[union-attr]
            f"{gw.url}/api/jobs/{job_id}/events{query}", headers=headers
        ) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

    # The stream is open while the job is queued; the runner finishes it meanwhile.
    reader = asyncio.create_task(read_stream({"Authorization": f"Bearer {gw.tokens['alice']}"}))
    await asyncio.sleep(gw.events_keepalive * 1.5)  # quiet long enough for one keepalive line
    assert not reader.done()
    await gw.finish_job(job_id, events_pb2.SUCCEEDED)
    status, ctype, text = await asyncio.wait_for(reader, 30)
    assert status == 200 and ctype.startswith("text/event-stream")
    assert ": keepalive\n\n" in text
    events = sse_events(text)
    types = [data["type"] for _, data in events]
    assert types[0] == "queued" and types[-1] == "succeeded" and "started" in types
    assert all(eid == data["event_id"] and data["job_id"] == job_id for eid, data in events)

    # Last-Event-ID resumes after that event; EventSource's ?access_token= works too.
    after_first = events[0][0]
    status, _, text = await read_stream({"Last-Event-ID": after_first}, f"?access_token={gw.tokens['alice']}")
    assert status == 200
    assert [eid for eid, _ in sse_events(text)] == [eid for eid, _ in events[1:]]

    # Envoy logs the request without its query string: the token never reaches the access log.
    deadline = asyncio.get_running_loop().time() + 15  # Envoy flushes its log file about once a second
    while f"/api/jobs/{job_id}/events" not in _read(gw.access_log):
        assert asyncio.get_running_loop().time() < deadline, "the events request never reached the access log"
        await asyncio.sleep(0.2)
    assert gw.tokens["alice"] not in _read(gw.access_log)
    assert "access_token" not in _read(gw.access_log)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def test_event_stream_refuses_others(gw: GatewayStack, identity_id: str) -> None:
    spec = await create_spec(gw, identity_id)
    job_id = (await queue(gw, spec["id"])).body["id"]
    hidden = await gw.request("GET", f"/api/jobs/{job_id}/events", who="bob")
    assert hidden.status == 404 and hidden.body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    anonymous = await gw.request("GET", f"/api/jobs/{job_id}/events", who=None)
    assert anonymous.status == 401 and anonymous.body["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    missing = await gw.request("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/events", who="alice")
    assert missing.status == 404
    await gw.request("POST", f"/api/jobs/{job_id}/cancel", who="alice", body={})


# ------------------------------------------------------------------------------ errors


async def test_error_bodies_and_status_codes(gw: GatewayStack, identity_id: str) -> None:
    bad = spec_body(identity_id, region="nowhere", network={"provision_network": True})
    invalid = await gw.request("POST", "/api/specs", who="alice", body=bad)
    assert invalid.status == 400 and invalid.body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    (details,) = invalid.body["details"]
    assert details["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    fields = {v["field"] for v in details["field_violations"]}
    assert {"region", "network.cidr_block"} <= fields

    spec = await create_spec(gw, identity_id)
    body = spec_body(identity_id, project_name=spec["project_name"])
    stale_rev = await gw.request(
        "PUT", f"/api/specs/{spec['id']}?expected_revision=5", who="alice", body=body
    )
    assert stale_rev.status == 409 and stale_rev.body["code"] == grpc.StatusCode.ABORTED.value[0]

    # A stale plan: 412 with the changed fields in the body.
    plan_id = (await queue(gw, spec["id"])).body["id"]
    await gw.finish_job(plan_id, events_pb2.SUCCEEDED)
    changed = {**body, "cluster": {**body["cluster"], "node_max_size": 9}}
    assert (
        await gw.request("PUT", f"/api/specs/{spec['id']}?expected_revision=1", who="alice", body=changed)
    ).status == 200
    stale = await gw.request(
        "POST",
        "/api/jobs",
        who="alice",
        body={"spec_id": spec["id"], "type": "DEPLOY", "plan_job_id": plan_id},
    )
    assert stale.status == 412, stale.text
    assert stale.body["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    (pf,) = stale.body["details"]
    assert pf["@type"] == "type.googleapis.com/google.rpc.PreconditionFailure"
    assert "cluster.node_max_size" in {v["subject"] for v in pf["violations"]}

    for who, message in (("expired", "expired"), ("forged", "kid"), (None, "missing")):
        refused = await gw.request("GET", "/api/specs", who=who)
        assert refused.status == 401 and refused.body["code"] == 16, refused.text
        assert message in refused.body["message"].lower()
    nowhere = await gw.request("GET", "/api/nothing-here", who="alice")
    assert nowhere.status == 404 and nowhere.body == {"code": 5, "message": "no such route"}
    not_json = await gw.request(
        "POST", "/api/specs", who="alice", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400


# ------------------------------------------------------------------------------ zones


async def test_a_user_of_zone_a_sees_nothing_of_zone_b(gw: GatewayStack, identity_id: str) -> None:
    b_spec = await create_spec(gw, identity_id, who="bob", zone=ZONE_B)
    b_job = (await queue(gw, b_spec["id"], who="bob")).body["id"]
    sid = b_spec["id"]

    specs = await gw.request("GET", "/api/specs?page_size=500", who="alice")
    assert specs.status == 200 and {s["zone_id"] for s in specs.body["specs"]} <= {ZONE_A}
    assert (await gw.request("GET", f"/api/specs?zone_id={ZONE_B}", who="alice")).body["specs"] == []
    jobs = await gw.request("GET", "/api/jobs?page_size=500", who="alice")
    assert all(j["workspace"].startswith(f"{ZONE_A}/") for j in jobs.body["jobs"])
    assert b_job not in [j["id"] for j in jobs.body["jobs"]]

    body = spec_body(identity_id, ZONE_B, project_name=b_spec["project_name"])
    for method, path, payload in (
        ("GET", f"/api/specs/{sid}", None),
        ("GET", f"/api/specs/{sid}/snapshot", None),
        ("PUT", f"/api/specs/{sid}?expected_revision=1", body),
        ("DELETE", f"/api/specs/{sid}", None),
        ("GET", f"/api/jobs/{b_job}", None),
        ("POST", f"/api/jobs/{b_job}/cancel", {}),
        ("POST", "/api/jobs", {"spec_id": sid, "type": "PLAN"}),
    ):
        reply = await gw.request(method, path, who="alice", body=payload)
        assert reply.status == 404, (method, path, reply.status, reply.text)
    created = await gw.request("POST", "/api/specs", who="alice", body=spec_body(identity_id, ZONE_B))
    assert created.status == 403 and "zone_id" in created.body["message"]
    identity = await gw.request(
        "POST",
        "/api/identities",
        who="alice",
        body={"name": "x", "provider": "aws", "account_id": "123456789012"},
    )
    assert identity.status == 403

    # Nothing of zone B changed: bob still sees his Spec at revision 1 and his job queued.
    assert (await gw.request("GET", f"/api/specs/{sid}", who="bob")).body["revision"] == "1"
    job = (await gw.request("GET", f"/api/jobs/{b_job}", who="bob")).body
    assert job["status"] == "QUEUED" and job["requested_by"] == "bob@example.com"
    assert len((await gw.request("GET", f"/api/jobs?spec_id={sid}", who="bob")).body["jobs"]) == 1

    # The CLI's path (gRPC straight to the service) applies the same identity and zones.
    direct = specs_pb2_grpc.SpecServiceStub(gw.channel(gw.specs.address, "alice"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await direct.GetSpec(specs_pb2.GetSpecRequest(id=sid))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await gw.request("POST", f"/api/jobs/{b_job}/cancel", who="bob", body={})


# ------------------------------------------------------------------------------ runners


async def test_runner_service_accepts_only_runners(gw: GatewayStack, identity_id: str) -> None:
    for who in ("alice", "admin", "service"):
        stub = snapshot_pb2_grpc.RunnerServiceStub(gw.channel(gw.snapshot.address, who))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="not-a-runner"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, who
    # A runner's credential is not a user's either.
    as_runner = specs_pb2_grpc.SpecServiceStub(gw.channel(gw.specs.address, "runner"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await as_runner.ListSpecs(specs_pb2.ListSpecsRequest())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Through the gateway, ClaimJob is not routed at all: a user passes jwt_authn and finds no
    # route; a runner's credential is not a user token, so the gateway refuses it first.
    for who, code in (("admin", grpc.StatusCode.UNIMPLEMENTED), ("runner", grpc.StatusCode.UNAUTHENTICATED)):
        via_gateway = snapshot_pb2_grpc.RunnerServiceStub(gw.channel(gw.url.removeprefix("http://"), who))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await via_gateway.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="r"))
        assert err.value.code() == code, who


async def test_git_token_route_answers_only_the_lease_holder(gw: GatewayStack, identity_id: str) -> None:
    reply = await gw.request(
        "POST", "/api/specs", who="alice", body=spec_body(identity_id, repositories=[REPOSITORY])
    )
    assert reply.status == 200, reply.text
    spec = reply.body
    job_id = (await queue(gw, spec["id"])).body["id"]
    runner = gw.runner_api()
    claim = await runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="gw-git-runner"))
    assert claim.claimed and claim.job.id == job_id
    path = f"/api/jobs/{job_id}/git-token"

    wrong_lease = await gw.request("POST", path, who="runner", body={"lease_token": "not-the-lease"})
    assert wrong_lease.status == 403 and GIT_TOKEN not in wrong_lease.text
    as_user = await gw.request("POST", path, who="admin", body={"lease_token": claim.lease.token})
    assert as_user.status == 403 and GIT_TOKEN not in as_user.text
    anonymous = await gw.request("POST", path, who=None, body={"lease_token": claim.lease.token})
    assert anonymous.status == 401 and GIT_TOKEN not in anonymous.text

    granted = await gw.request("POST", path, who="runner", body={"lease_token": claim.lease.token})
    assert granted.status == 200, granted.text
    assert granted.body["token"] == GIT_TOKEN

    await runner.CompleteJob(
        snapshot_pb2.CompleteJobRequest(
            lease=claim.lease, result=snapshot_pb2.JobResult(status=events_pb2.SUCCEEDED)
        )
    )
    after = await gw.request("POST", path, who="runner", body={"lease_token": claim.lease.token})
    assert after.status == 403 and GIT_TOKEN not in after.text


# ------------------------------------------------------------------------------ gRPC, gRPC-Web, CORS, docs


def _grpc_web_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def _grpc_web_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames, i = [], 0
    while i < len(body):
        flag, size = body[i], struct.unpack(">I", body[i + 1 : i + 5])[0]
        frames.append((flag, body[i + 5 : i + 5 + size]))
        i += 5 + size
    return frames


async def test_grpc_web_and_native_grpc_through_the_gateway(gw: GatewayStack, identity_id: str) -> None:
    spec = await create_spec(gw, identity_id)
    assert gw.http is not None
    request = specs_pb2.GetSpecRequest(id=spec["id"]).SerializeToString()
    async with gw.http.post(
        f"{gw.url}/alethia.specs.v1.SpecService/GetSpec",
        data=_grpc_web_frame(request),
        headers={
            "Content-Type": "application/grpc-web+proto",
            "X-Grpc-Web": "1",
            "Authorization": f"Bearer {gw.tokens['alice']}",
            "Origin": "https://console.example.com",
        },
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "https://console.example.com"
        frames = _grpc_web_frames(await resp.read())
    (flag, message), (tflag, trailers) = frames
    assert flag == 0 and tflag == 0x80 and b"grpc-status:0" in trailers.replace(b" ", b"")
    assert specs_pb2.Spec.FromString(message).project_name == spec["project_name"]

    # Native gRPC (h2c) to the same port, with the same user token.
    ch = gw.channel(gw.url.removeprefix("http://"), "alice")
    got = await specs_pb2_grpc.SpecServiceStub(ch).GetSpec(specs_pb2.GetSpecRequest(id=spec["id"]))
    assert got.id == spec["id"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await specs_pb2_grpc.SpecServiceStub(gw.channel(gw.url.removeprefix("http://"), "bob")).GetSpec(
            specs_pb2.GetSpecRequest(id=spec["id"])
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_cors_preflight(gw: GatewayStack) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = await gw.request(
        "OPTIONS", "/api/specs", who=None, headers={"Origin": "http://localhost:5173", **preflight}
    )
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"]
    other = await gw.request(
        "OPTIONS", "/api/specs", who=None, headers={"Origin": "https://evil.example", **preflight}
    )
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_openapi_document_is_served_and_covers_every_route(gw: GatewayStack) -> None:
    served = await gw.request("GET", "/api/openapi.json", who=None)
    assert served.status == 200 and served.headers["Content-Type"] == "application/json"
    assert served.body == json.loads(OPENAPI.read_text())
    operations = {(m.upper(), p) for p, item in served.body["paths"].items() for m in item}
    assert {
        ("POST", "/api/identities"), ("GET", "/api/identities"), ("GET", "/api/identities/{id}"),
        ("POST", "/api/specs"), ("GET", "/api/specs"), ("GET", "/api/specs/{id}"), ("PUT", "/api/specs/{id}"),
        ("DELETE", "/api/specs/{id}"), ("GET", "/api/specs/{spec_id}/snapshot"), ("POST", "/api/jobs"),
        ("GET", "/api/jobs"), ("GET", "/api/jobs/{id}"), ("POST", "/api/jobs/{id}/cancel"),
        ("GET", "/api/jobs/{id}/events"), ("POST", "/api/jobs/{job_id}/git-token"), ("GET", "/api/openapi.json"),
    } == operations  # fmt: skip
    # Every reference resolves, and path parameters are declared as the templates name them.
    text = served.text
    refs = set(re.findall(r'"\$ref": ?"#/components/(schemas|responses)/([^"]+)"', text))
    assert refs and all(name in served.body["components"][kind] for kind, name in refs)
    for path, item in served.body["paths"].items():
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), (path, declared)


async def test_reflection_v1_and_v1alpha(gw: GatewayStack) -> None:
    for service in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"):
        async with grpc.aio.insecure_channel(gw.specs.address) as ch:
            call = ch.stream_stream(
                f"/{service}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            stream = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = [s.name async for r in stream for s in r.list_services_response.service]
        assert "alethia.specs.v1.SpecService" in names and "grpc.reflection.v1.ServerReflection" in names


async def test_event_stream_without_nats_is_a_503(tmp_path: Path) -> None:
    """A snapshot service whose NATS cannot be reached: the job is queued (outbox), its event
    stream answers 503 with the JSON error before any stream starts."""
    dead_nats = f"nats://127.0.0.1:{free_port()}"
    gw = GatewayStack(tmp_path, dead_nats)
    try:
        await gw.start()
        ident = await gw.request("POST", "/api/identities", who="admin", body=identity_dict("aws"))
        spec = await create_spec(gw, ident.body["id"])
        job = await queue(gw, spec["id"])
        assert job.status == 200, job.text
        reply = await gw.request("GET", f"/api/jobs/{job.body['id']}/events", who="alice")
        assert reply.status == 503 and reply.headers["Content-Type"].startswith("application/json")
        assert reply.body["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
        assert "NATS" in reply.body["message"]
    finally:
        await gw.stop()
