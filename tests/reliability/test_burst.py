"""Scenario 6: a burst of PLAN jobs queued at once, two runners, real Terraform.

All jobs are queued concurrently across workspaces (in order within each workspace); two
runner services work them off. Counted and asserted: every job SUCCEEDED (lost 0), each
ran exactly once (one claim, one ``started`` and one ``succeeded`` event, one plan file),
no two jobs of a workspace overlapped and they started in the order they were queued,
nothing stuck (none QUEUED or RUNNING at the end, the outbox drained).

The fast variant uses the cheap template set (the sandbox's variables, one resource); the
slow one is the issue's 500 jobs over 50 workspaces.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter, defaultdict
from typing import Any

import pytest

from alethia.snapshot.v1 import snapshot_pb2
from tests.harness import CHEAP_TEMPLATES, PLAN, SUCCEEDED, Pipeline, job_events


def _span(job: snapshot_pb2.Job) -> tuple[int, int]:
    return job.start_time.ToNanoseconds(), job.end_time.ToNanoseconds()


async def burst(make_pipeline: Any, jobs: int, workspaces: int, concurrency: int = 2) -> dict[str, Any]:
    p: Pipeline = await make_pipeline(templates_dir=CHEAP_TEMPLATES, lease_seconds=15)
    specs = [await p.create_spec(f"burst-{w}") for w in range(workspaces)]
    per_ws = jobs // workspaces
    started = time.monotonic()

    async def queue_workspace(spec_id: str) -> list[str]:
        return [(await p.queue(spec_id, PLAN)).id for _ in range(per_ws)]

    order = await asyncio.gather(*(queue_workspace(s.id) for s in specs))
    queued_in = time.monotonic() - started
    all_ids = [j for ids in order for j in ids]
    assert len(set(all_ids)) == jobs
    # Runners start on a full queue: everything is claimable (one per workspace) at once.
    started = time.monotonic()
    runners = [await p.start_runner(runner_concurrency=concurrency) for _ in range(2)]
    done = await p.wait_terminal(all_ids, within=30 + jobs * 2.0)
    elapsed = time.monotonic() - started

    failed = {j.id: j.error for j in done.values() if j.status != SUCCEEDED}
    assert failed == {}, f"{len(failed)} jobs did not succeed: {list(failed.items())[:3]}"
    # Exactly once: one attempt each, one claim by one runner.
    attempts = Counter(j.attempt for j in done.values())
    assert attempts == {1: jobs}, attempts
    assert sum(r.runner.jobs_completed for r in runners) == jobs
    # Per-workspace order kept, no overlap inside a workspace.
    out_of_order = overlaps = 0
    for ids in order:
        spans = [_span(done[j]) for j in ids]
        for (s0, e0), (s1, _) in itertools.pairwise(spans):
            out_of_order += s1 < s0
            overlaps += s1 < e0
    assert out_of_order == 0 and overlaps == 0
    # Events: each job started once and succeeded once; the outbox is drained.
    await asyncio.sleep(0.5)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    msg_ids: Counter[str] = Counter()
    for msg_id, _subject, ev in await job_events(p.nats_url):
        if ev.type != "log":
            counts[ev.job_id][ev.type] += 1
            msg_ids[msg_id] += 1
    dup_events = sum(n - 1 for n in msg_ids.values() if n > 1)
    bad = {j: dict(counts[j]) for j in all_ids if counts[j]["started"] != 1 or counts[j]["succeeded"] != 1}
    assert dup_events == 0 and bad == {}, list(bad.items())[:3]
    both_busy = all(r.runner.jobs_completed > 0 for r in runners)
    assert both_busy, "both runners took work"
    summary = {
        "jobs": jobs,
        "workspaces": workspaces,
        "runners": 2,
        "concurrency": concurrency,
        "lost": 0,
        "duplicates": dup_events,
        "out_of_order": out_of_order,
        "overlaps": overlaps,
        "queued_in_s": round(queued_in, 2),
        "drained_in_s": round(elapsed, 1),
        "per_runner": [r.runner.jobs_completed for r in runners],
    }
    print("RELIABILITY burst", json.dumps(summary))
    return summary


async def test_burst_of_plans_two_runners(make_pipeline: Any) -> None:
    await burst(make_pipeline, jobs=48, workspaces=6)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_burst_500_plans_50_workspaces(make_pipeline: Any) -> None:
    await burst(make_pipeline, jobs=500, workspaces=50, concurrency=4)
