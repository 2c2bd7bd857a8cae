"""Scenario 2: NATS killed and restarted in the middle of a burst of QueueJob calls.

The test's own ``nats-server`` is SIGKILLed while jobs are being queued and started again
(same port, same JetStream store) a couple of seconds later. QueueJob never needs NATS (the
outbox holds the events), runners fall back to polling ClaimJob. Counted and asserted:
every queued job SUCCEEDED (lost 0); the outbox drains (unpublished 0); every event row of
the outbox is in the stream exactly once (missing 0, duplicates 0 — ``Nats-Msg-Id``
de-duplication); each job has exactly one ``queued``, ``started`` and ``succeeded`` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import nats
import pytest
from sqlalchemy import select

from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_SUBJECT
from alethia.stack.infra import NatsServer
from services.snapshot import store
from services.snapshot.relay import OutboxRelay
from tests.harness import CHEAP_TEMPLATES, PLAN, SUCCEEDED, Pipeline, job_events


def _relay(p: Pipeline) -> OutboxRelay:
    relay = p.snapshot.relay
    assert relay is not None
    return relay


async def _outbox_events(p: Pipeline) -> list[str]:
    sessions = _relay(p).sessions
    async with sessions() as session:
        res = await session.execute(
            select(store.job_outbox.c.msg_id).where(store.job_outbox.c.subject.like("alethia.jobs.%"))
        )
        return [r[0] for r in res.all()]


async def _unpublished(p: Pipeline) -> int:
    async with _relay(p).sessions() as session:
        return await store.unpublished_count(session)


async def _duplicate_dispatches(p: Pipeline, job_ids: list[str], copies: int) -> int:
    nc = await nats.connect(p.nats_url)
    try:
        js = nc.jetstream()
        sent = 0
        for jid in job_ids:
            job = await p.get(jid)
            payload = events_pb2.Dispatch(job_id=jid, workspace=job.workspace).SerializeToString()
            for _ in range(copies):
                await js.publish(DISPATCH_SUBJECT, payload)
                sent += 1
        return sent
    finally:
        await nc.close()


async def nats_restart(make_pipeline: Any, nats: NatsServer, jobs: int, outages: int) -> dict[str, Any]:
    p: Pipeline = await make_pipeline(templates_dir=CHEAP_TEMPLATES, lease_seconds=15)
    specs = [await p.create_spec(f"natsburst-{w}") for w in range(6)]
    for _ in range(2):
        await p.start_runner(runner_concurrency=2)
    queued: list[str] = []
    errors: list[str] = []

    async def queue_all() -> None:
        for i in range(jobs):
            try:
                queued.append((await p.queue(specs[i % len(specs)].id, PLAN)).id)
            except Exception as exc:  # counted: QueueJob must not need NATS
                errors.append(repr(exc))
            await asyncio.sleep(0.02)

    burst = asyncio.create_task(queue_all())
    down_for = []
    for k in range(outages):
        # Kill NATS once part of the burst is in, keep it down, start it on the same store.
        while len(queued) < (k + 1) * jobs // (outages + 1) and not burst.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert nats.process is not None
        nats.process.kill()
        t0 = time.monotonic()
        await asyncio.sleep(2.0)
        nats.start()
        down_for.append(round(time.monotonic() - t0, 2))
    await burst
    assert errors == [], errors[:3]
    # Idempotent consumers: every job's wake-up delivered twice more (no Nats-Msg-Id, so no
    # de-duplication by the stream); the atomic claim must still run each job once.
    injected = await _duplicate_dispatches(p, queued, copies=2)
    done = await p.wait_terminal(queued, within=60 + jobs * 2)
    failed = {j.id: j.error for j in done.values() if j.status != SUCCEEDED}
    assert failed == {}, list(failed.items())[:3]
    ran_twice = [j.id for j in done.values() if j.attempt != 1]
    assert ran_twice == []

    deadline = time.monotonic() + 30
    while (left := await _unpublished(p)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    assert left == 0, f"{left} outbox rows never published"

    expected = await _outbox_events(p)
    stream: Counter[str] = Counter()
    per_job: dict[str, Counter[str]] = {j: Counter() for j in queued}
    for msg_id, _subject, ev in await job_events(p.nats_url):
        if ev.type == "log":
            continue
        stream[msg_id] += 1
        if ev.job_id in per_job:
            per_job[ev.job_id][ev.type] += 1
    missing = [m for m in expected if m not in stream]
    duplicates = sum(n - 1 for n in stream.values() if n > 1)
    assert missing == [] and duplicates == 0, (missing[:3], duplicates)
    wrong = {
        j: dict(c) for j, c in per_job.items() if (c["queued"], c["started"], c["succeeded"]) != (1, 1, 1)
    }
    assert wrong == {}, list(wrong.items())[:3]
    summary = {
        "jobs": jobs,
        "outages": outages,
        "down_s": down_for,
        "lost": 0,
        "events": len(expected),
        "missing": len(missing),
        "duplicates": duplicates,
        "duplicate_dispatches_injected": injected,
        "ran_twice": 0,
        "published_by_relay": _relay(p).published,
    }
    print("RELIABILITY nats-restart", json.dumps(summary))
    return summary


async def test_nats_restart_during_queue_burst(make_pipeline: Any, own_nats: NatsServer) -> None:
    await nats_restart(make_pipeline, own_nats, jobs=24, outages=1)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_nats_restarted_three_times_during_burst(make_pipeline: Any, own_nats: NatsServer) -> None:
    await nats_restart(make_pipeline, own_nats, jobs=120, outages=3)


async def test_runner_starts_while_nats_is_down(
    make_pipeline: Any, own_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner booted during a NATS outage serves by polling, then turns live logs on by itself."""
    import services.executor.app as executor_app

    monkeypatch.setattr(executor_app, "NATS_FIRST_TRY_SECONDS", 1.0)
    p: Pipeline = await make_pipeline(templates_dir=CHEAP_TEMPLATES, lease_seconds=15)
    spec = await p.create_spec("nats-late")
    assert own_nats.process is not None
    own_nats.process.kill()
    t0 = time.monotonic()
    runner = await asyncio.wait_for(p.start_runner(runner_concurrency=1), 30)
    started_in = time.monotonic() - t0
    first = await p.queue(spec.id, PLAN)
    first = (await p.wait_terminal([first.id], within=60))[first.id]
    assert first.status == SUCCEEDED, first.error  # polling alone ran it
    own_nats.start()
    deadline = time.monotonic() + 30
    while runner.runner.js is None:
        assert time.monotonic() < deadline, "the runner never connected to NATS"
        await asyncio.sleep(0.1)
    second = await p.queue(spec.id, PLAN)
    second = (await p.wait_terminal([second.id], within=60))[second.id]
    assert second.status == SUCCEEDED, second.error
    await asyncio.sleep(0.5)
    logs = Counter(ev.job_id for _, _, ev in await job_events(p.nats_url) if ev.type == "log")
    assert logs[second.id] > 0, "live logs are back once NATS is"
    print("RELIABILITY nats-down-at-runner-start",
          json.dumps({"runner_started_in_s": round(started_in, 1), "first_job": "SUCCEEDED by polling",
                      "live_log_lines_after_reconnect": logs[second.id]}))  # fmt: skip
