"""NATS is authenticated and authorised, as the embedded stack runs it (the test run's server).

Anonymous clients are refused. Each user publishes only what its role needs: the
snapshot service job events and dispatch (never ``log``), a runner only ``log`` events and
its pull consumer's fetch and acks, the ``cli`` user nothing. Forged messages are refused
by the server (a permissions violation) and never reach the streams.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats
import pytest

from alethia import messaging
from alethia.events.v1 import events_pb2


async def _client(server: Any, user: str, errors: list[str]) -> Any:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        server.url_for(user), inbox_prefix=f"_INBOX.{user}", error_cb=on_error, allow_reconnect=False
    )


async def test_anonymous_and_wrong_password_are_refused(nats_server: Any) -> None:
    for url in (nats_server.address, messaging.user_url(nats_server.address, "runner", "guess")):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_each_user_publishes_only_what_its_role_needs(nats_server: Any) -> None:
    admin = await nats.connect(nats_server.url)
    await messaging.ensure_streams(admin.jetstream())
    job = f"auth-{uuid.uuid4().hex[:8]}"
    errors: list[str] = []
    snapshot = await _client(nats_server, "snapshot", errors)
    runner = await _client(nats_server, "runner", errors)
    cli = await _client(nats_server, "cli", errors)
    seen: list[str] = []

    async def on_message(msg: Any) -> None:
        seen.append(msg.subject)

    watch = await cli.subscribe(messaging.job_subjects(job), cb=on_message)
    await cli.flush()  # the subscription is on the server before anything is published
    try:
        snap_js, run_js = snapshot.jetstream(), runner.jetstream(timeout=1.0)
        ev = events_pb2.JobEvent(event_id=uuid.uuid4().hex, job_id=job, type="queued").SerializeToString()
        await snap_js.publish(messaging.job_subject(job, "queued"), ev)
        await run_js.publish(messaging.job_subject(job, "log"), b"a log line")
        await messaging.check_streams(run_js)  # a runner may look at the streams ...
        refused = {
            "runner forges an event": (run_js, messaging.job_subject(job, "succeeded")),
            "runner forges a dispatch": (run_js, messaging.DISPATCH_SUBJECT),
            "snapshot writes a log line": (snap_js, messaging.job_subject(job, "log")),
        }
        for what, (js, subject) in refused.items():
            with pytest.raises(nats.errors.TimeoutError):
                await js.publish(subject, b"forged", timeout=0.5)
            assert any(subject in e for e in errors), what
        with pytest.raises(nats.errors.TimeoutError):  # ... but not manage them
            await run_js.delete_stream(messaging.EVENTS_STREAM)
        await cli.publish(messaging.job_subject(job, "succeeded"), b"forged")  # the CLI only subscribes
        await cli.flush()
        await asyncio.sleep(0.3)
        assert any('publish to "alethia.jobs.' in e for e in errors)
        stored = await _stored_subjects(admin, job)
        assert stored == [messaging.job_subject(job, "queued"), messaging.job_subject(job, "log")]
        # Core NATS delivers at most once (one full-suite run saw the cli miss `queued`; the
        # product reads events through JetStream consumers): what matters here is that every
        # message the cli user saw was a stored, legitimate one, and that it sees them at all.
        assert seen and set(seen) <= set(stored), "the cli user saw only what was published, nothing forged"
    finally:
        await watch.unsubscribe()
        for c in (snapshot, runner, cli, admin):
            await c.close()


async def _stored_subjects(nc: Any, job: str) -> list[str]:
    sub = await nc.jetstream().subscribe(messaging.job_subjects(job), ordered_consumer=True)
    out = []
    while True:
        try:
            out.append((await sub.next_msg(timeout=0.5)).subject)
        except nats.errors.TimeoutError:
            break
    await sub.unsubscribe()
    return out
