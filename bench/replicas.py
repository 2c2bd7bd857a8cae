"""``snapshot_replicas``: two snapshot service replicas with two runners, against one replica.

Postgres only (the embedded SQLite stack runs one replica). A second ``python -m
services.snapshot`` process is started on the stack's database, and four runner processes
(concurrency 1): a pair that both talk to the stack's replica, and a pair split over the
two replicas. Rounds alternate: one replica (the first pair, QueueJob to the stack's
replica) and two replicas (the second pair, QueueJob alternating between the replicas);
the pair not in use is paused with SIGSTOP. Value: PLAN jobs/min with two replicas;
baseline: with one. Every event of every job is counted on a core NATS subscription
(which sees each publish, even one JetStream would deduplicate): ``events_exactly_once``
says whether each job had exactly one queued, started, planned and succeeded event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

from alethia.events.v1 import events_pb2
from alethia.rpc.client import connect
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from bench.harness import Samples
from bench.specs import full_spec
from tests.harness import Pipeline, ts_seconds

EVENT_TYPES = ("queued", "started", "planned", "succeeded")


async def snapshot_replicas(st: Pipeline, jobs: int, reps: int) -> dict[str, Any]:
    """Jobs/min with 2 snapshot replicas + 2 runners vs 1 replica + 2 runners; events counted."""
    import nats

    spec_ids = [
        (await st.create_spec(full_spec(f"repl{i}-{uuid.uuid4().hex[:6]}", st.identity_id))).id
        for i in range(jobs)
    ]
    st.stop_default_runner()
    seen: Counter[tuple[str, str]] = Counter()
    msg_ids: Counter[str] = Counter()
    nc = await nats.connect(st.nats_url, name="bench-replicas")

    async def on_event(msg: Any) -> None:
        _, _, job_id, kind = msg.subject.split(".", 3)
        seen[(job_id, kind)] += 1
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        if msg_id and kind != "log":  # the relay's events (runners publish the log lines)
            msg_ids[msg_id] += 1

    await nc.subscribe("alethia.jobs.*.*", cb=on_event)
    await nc.flush()
    replica_b = (await st.start_snapshot_replica()).address
    channel_b = connect(replica_b, st.service_token)
    stub_b = snapshot_pb2_grpc.SnapshotServiceStub(channel_b)
    queued: list[str] = []

    async def batch(stubs: list[snapshot_pb2_grpc.SnapshotServiceStub]) -> float:
        t0 = time.time()
        made = await asyncio.gather(
            *(
                stubs[i % len(stubs)].QueueJob(
                    snapshot_pb2.QueueJobRequest(
                        spec_id=s,
                        type=events_pb2.PLAN,
                        requested_by="bench",
                        idempotency_key=uuid.uuid4().hex,
                    )
                )
                for i, s in enumerate(spec_ids)
            )
        )
        queued.extend(j.id for j in made)
        done = await asyncio.gather(*(st.wait(j.id) for j in made))
        failed = [d for d in done if d.status != events_pb2.SUCCEEDED]
        if failed:
            raise RuntimeError(f"{len(failed)} replica jobs failed: {failed[0].error}")
        return max(ts_seconds(d.end_time) for d in done) - t0

    one: list[float] = []
    two: list[float] = []
    try:
        a = st.addresses["snapshot"]
        pair_one = await st.start_runners(["bench-r1a", "bench-r1b"], 1, [a, a])
        pair_two = await st.start_runners(["bench-r2a", "bench-r2b"], 1, [a, replica_b])
        for _ in range(reps):
            for p in pair_two:
                p.pause()
            one.append(await batch([st.jobs]))
            for p in pair_two:
                p.resume()
            for p in pair_one:
                p.pause()
            two.append(await batch([st.jobs, stub_b]))
            for p in pair_one:
                p.resume()
        await asyncio.sleep(1.0)  # the last terminal events are already in; let stragglers land
    finally:
        await channel_b.close()
        await nc.close()
        st.stop_children()
    wrong = [j for j in queued if any(seen[(j, k)] != 1 for k in EVENT_TYPES)]
    res = Samples(two, one).result("jobs/min", higher_is_better=True, per=jobs * 60)
    res["jobs"] = jobs
    res["baseline_is"] = "one snapshot replica, two runners"
    res["events_exactly_once"] = not wrong
    res["jobs_checked"] = len(queued)
    res["jobs_with_wrong_event_counts"] = len(wrong)
    res["duplicate_publishes"] = sum(n - 1 for n in msg_ids.values() if n > 1)
    return res
