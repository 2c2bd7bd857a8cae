"""Scenario 8: nothing secret anywhere after a full run, and the git token gate never opens wrongly.

A PLAN and the DEPLOY of that plan run through the whole pipeline (service token on, a
known git token for the apps repository, the sandbox's sensitive outputs, an S3 secret
key). Then everything the pipeline wrote is scanned for every secret (raw, and the base64
``x-access-token:<token>`` form git's HTTP header would carry):

- every row of every table of both services' databases,
- every message (data and headers) in both NATS streams,
- every object in both buckets (the Terraform state itself excepted for the sensitive
  output values: Terraform keeps outputs in state by design; the state bucket is the
  protected store, see docs/security.md), as stored and decompressed (zip members, gzip);
- every artifact decrypted with the runners' key ring, zip members too (the plan file's
  embedded state excepted for sensitive output values, like the state object: that is
  what the artifact encryption protects),
- every log line of the services and the runner (captured at DEBUG), the job messages the
  API returns, the runner's leftover work files and the apps repository's history.

occurrences 0, with positive controls that prove the scan sees what it should.

``GetGitToken`` is then asked with no lease, another job's lease, random tokens, an
expired lease, a finished job's lease and an unknown job: refused every time, with one
message that tells the caller nothing.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import secrets
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from alethia.messaging import DISPATCH_STREAM, EVENTS_STREAM
from alethia.snapshot.v1 import snapshot_pb2
from tests.fixtures.s3 import TEST_S3_TERRAFORM
from tests.harness import (
    DEPLOY,
    GIT_TOKEN,
    PLAN,
    RUNNING,
    S3_SECRET,
    SUCCEEDED,
    LogCapture,
    Pipeline,
    stream_messages,
)

SERVICE_TOKEN = "svc-token-reliability-7c1e9a0b2d4f"


def _forms(secret: str) -> list[bytes]:
    """The secret as bytes, and as git's Basic auth header value would carry it."""
    header = base64.b64encode(f"x-access-token:{secret}".encode())
    return [secret.encode(), header]


def _count(blobs: list[bytes], secrets_: dict[str, list[bytes]]) -> dict[str, int]:
    return {name: sum(b.count(f) for b in blobs for f in forms) for name, forms in secrets_.items()}


async def _table_rows(url: str) -> list[bytes]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        out = []
        for t in tables:
            for r in await conn.fetch(f'SELECT t::text AS row FROM "{t}" t'):
                out.append(r["row"].encode())
            # bytea columns (the outbox payload) print as hex in ::text: scan their raw bytes too.
            cols = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND data_type = 'bytea'",
                t,
            )
            for c in cols:
                for r in await conn.fetch(f'SELECT "{c["column_name"]}" AS b FROM "{t}"'):
                    out.append(bytes(r["b"] or b""))
        return out
    finally:
        await conn.close()


def _is_container(blob: bytes) -> bool:
    return zipfile.is_zipfile(io.BytesIO(blob)) or blob[:2] == b"\x1f\x8b"


def _decompressed(blob: bytes) -> list[bytes]:
    """The blob, plus every zip member (a plan file is a zip) or its gunzipped bytes."""
    out = [blob]
    if zipfile.is_zipfile(io.BytesIO(blob)):
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            out += [z.read(name) for name in z.namelist()]
    elif blob[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(blob))
    return out


def _files(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_no_secret_anywhere_after_a_full_run(make_pipeline: Any, pg_pair: tuple[str, str]) -> None:
    with LogCapture() as logs:
        p: Pipeline = await make_pipeline(lease_seconds=10, service_token=SERVICE_TOKEN)
        await p.start_runner(runner_concurrency=1)
        spec = await p.create_spec("secrets", full=True, repos=True)
        plan = await p.queue(spec.id, PLAN)
        plan = (await p.wait_terminal([plan.id], within=120))[plan.id]
        assert plan.status == SUCCEEDED, plan.error
        deploy = await p.queue(spec.id, DEPLOY, plan_job_id=plan.id)
        deploy = (await p.wait_terminal([deploy.id], within=180))[deploy.id]
        assert deploy.status == SUCCEEDED, deploy.error
        steps = {s.name: s.status for s in deploy.post_apply_steps}
        assert steps["gitops"] == "done", "the runner fetched the git token and pushed"
        await asyncio.sleep(0.5)  # the relay's last events

    state_key = "zone-acme/secrets-prod-us-east-1/terraform.tfstate"
    state = json.loads(p.get_object("alethia-state", state_key))
    sensitive = {
        name: json.dumps(o["value"]) if not isinstance(o["value"], str) else o["value"]
        for name, o in state["outputs"].items()
        if o.get("sensitive")
    }
    assert sensitive, "the sandbox has sensitive outputs"
    always = {
        "git token": _forms(GIT_TOKEN),
        "service token": _forms(SERVICE_TOKEN),
        "s3 secret": _forms(S3_SECRET),
        "terraform's s3 secret": _forms(TEST_S3_TERRAFORM.secret_key),
    }
    outputs = {f"output {k}": [v.encode()] for k, v in sensitive.items()}
    everything = always | outputs

    rows = [r for url in pg_pair for r in await _table_rows(url)]
    messages = []
    for stream in (EVENTS_STREAM, DISPATCH_STREAM):
        for subject, headers, data in await stream_messages(p.nats_url, stream):
            messages.append(subject.encode() + json.dumps(headers).encode() + data)
    artifact_keys = p.keys("alethia-artifacts")
    stored = [p.get_object("alethia-artifacts", k) for k in artifact_keys]
    artifacts = [part for blob in stored for part in _decompressed(blob)]
    # This run's own jobs (the session's bucket also holds other tests' objects, some
    # deliberately corrupted); every object of the bucket is scanned as stored above.
    own = [k for k in artifact_keys if k.split("/")[1] in (plan.id, deploy.id)]
    decrypted = {k: _decompressed(p.artifact(k)) for k in own}
    opened_plans = [part for k, parts in decrypted.items() if k.endswith("/plan.tfplan") for part in parts]
    opened_rest = [part for k, parts in decrypted.items() if not k.endswith("/plan.tfplan") for part in parts]
    state_objects = [p.get_object("alethia-state", k) for k in p.keys("alethia-state")]
    api = [j.SerializeToString() for j in (await p.get(plan.id), await p.get(deploy.id))]
    log_lines = [line.encode() for line in logs.lines]
    git = [
        (
            await asyncio.to_thread(
                subprocess.run, ["git", "-C", str(p.bare_repo), *args], capture_output=True, check=True
            )
        ).stdout
        for args in (["log", "-p", "--all"], ["config", "--list"])
    ]
    work = _files(p.tmp / "work")

    found = {
        "tables": _count(rows, everything),
        "nats": _count(messages, everything),
        "artifacts": _count(artifacts, everything),
        "artifacts decrypted": _count(opened_rest, everything),
        "plan files decrypted (tokens only)": _count(opened_plans, always),
        "state (tokens only)": _count(state_objects, always),
        "api": _count(api, everything),
        "logs": _count(log_lines, everything),
        "git": _count(git, everything),
        "work dirs": _count(work, everything),
    }
    leaks = {where: {k: n for k, n in c.items() if n} for where, c in found.items() if any(c.values())}
    assert leaks == {}, leaks
    # Positive controls: the scan looked at real data.
    assert rows and messages and artifacts and log_lines
    assert len(opened_plans) > 1, "the plan file was opened and its zip members scanned"
    assert not any(_is_container(b) for b in stored), "every artifact is stored encrypted"
    assert any(v.encode() in b for b in state_objects for v in sensitive.values()), "state holds the value"
    assert any(b"(sensitive)" in r for r in rows), "outputs are stored, redacted"
    assert b"clusters/secrets" in git[0]
    print(
        "RELIABILITY secrets",
        json.dumps(
            {
                "secrets": len(everything),
                "rows": len(rows),
                "nats_messages": len(messages),
                "objects": len(stored) + len(state_objects),
                "decrypted_parts": sum(len(v) for v in decrypted.values()),
                "log_lines": len(log_lines),
                "occurrences": 0,
            }
        ),
    )


async def test_git_token_refused_without_the_current_lease(make_pipeline: Any) -> None:
    # A long rescue interval: an expired lease stays on a RUNNING job, so the expiry check is what refuses.
    p: Pipeline = await make_pipeline(rescue_interval=60.0)
    specs = [await p.create_spec(f"gate-{i}", repos=True) for i in range(3)]
    for s in specs:
        await p.queue(s.id, PLAN)
    api = p.runner_api
    leases = []
    for _ in specs:
        resp = await api.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="probe", lease_seconds=2))
        assert resp.claimed
        leases.append(resp.lease)
    a, b, c = leases
    refused: list[str] = []
    granted = 0

    async def ask(job_id: str, token: str) -> str | None:
        nonlocal granted
        try:
            resp = await api.GetGitToken(snapshot_pb2.GetGitTokenRequest(job_id=job_id, lease_token=token))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT), exc
            assert GIT_TOKEN not in (exc.details() or "")
            refused.append(exc.details() or "")
            return None
        granted += 1
        return resp.token

    # Positive control: the holder of the current lease gets the token.
    assert await ask(a.job_id, a.token) == GIT_TOKEN
    granted = 0
    attempts = 0
    for _ in range(10):
        for job_id, token in (
            (a.job_id, ""),  # no lease
            (a.job_id, b.token),  # another job's lease
            (b.job_id, a.token),
            (a.job_id, secrets.token_urlsafe(32)),  # a guess
            (a.job_id, a.token[:-1]),  # almost
            ("00000000-0000-0000-0000-000000000000", a.token),  # no such job
            ("", a.token),
        ):
            attempts += 1
            assert await ask(job_id, token) is None
    # A finished job's lease.
    done = await api.CompleteJob(
        snapshot_pb2.CompleteJobRequest(lease=c, result=snapshot_pb2.JobResult(status=SUCCEEDED))
    )
    assert done.status == SUCCEEDED
    attempts += 1
    assert await ask(c.job_id, c.token) is None
    # An expired lease on a job still RUNNING (the rescuer has not swept it yet).
    await asyncio.sleep(2.3)
    assert (await p.get(a.job_id)).status == RUNNING
    attempts += 1
    assert await ask(a.job_id, a.token) is None
    assert granted == 0 and len(refused) == attempts
    messages = {m for m in refused if "required" not in m}
    assert len(messages) == 1, f"refusals differ, telling the caller why: {messages}"
    print(
        "RELIABILITY git-token-gate",
        json.dumps({"asked": attempts, "refused": len(refused), "granted": granted}),
    )
