"""Benchmarks through the whole pipeline with real Terraform: plan, deploy, pickup, scaling.

Each system measurement starts when ``QueueJob`` is sent and ends at the job row's
``end_time`` (when ``CompleteJob`` committed, artifacts already stored), so the benchmark's
own polling never counts. Each baseline is raw Terraform (:mod:`bench.raw_terraform`) on
the same template, tfvars, binary and S3 store, or raw NATS for the pickup latency.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from alethia.events.v1 import events_pb2
from bench.harness import Samples, alternate_measured, percentile
from bench.raw_terraform import RawTerraform
from bench.specs import full_spec, spec_with_components
from tests.harness import Pipeline, ts_seconds


def phase_medians(st: Pipeline, jtype: int, since: int = 0) -> dict[str, float]:
    """Median milliseconds of QueueJob, pickup and run of the jobs of ``jtype`` since index ``since``."""
    rows = st.phases.get(jtype, [])[since:]
    if not rows:
        return {}
    return {
        name: round(statistics.median(r[i] for r in rows) * 1000, 1)
        for i, name in enumerate(("queue_job_ms", "pickup_ms", "run_ms"))
    }


def _key(name: str) -> str:
    return f"bench-raw/{name}-{uuid.uuid4().hex[:8]}/terraform.tfstate"


async def plan_e2e_overhead(st: Pipeline, raw: RawTerraform, reps: int) -> dict[str, Any]:
    """QueueJob -> PLAN SUCCEEDED vs ``init && plan -out && show -json`` of the same directory."""
    spec = await st.create_spec(full_spec(f"plan-{uuid.uuid4().hex[:6]}", st.identity_id))
    template, tfvars = await st.tfvars(spec.id)
    key = _key("plan")
    # One untimed round: the runner's first-job costs (lazy imports, S3 client) are not overhead.
    await st.run_timed(spec.id, events_pb2.PLAN)

    async def system() -> float:
        return (await st.run_timed(spec.id, events_pb2.PLAN))[0]

    since = len(st.phases.get(events_pb2.PLAN, []))
    samples = await alternate_measured(system, lambda: raw.plan_cycle(template, tfvars, key), reps)
    res = samples.result("s")
    res["phases"] = phase_medians(st, events_pb2.PLAN, since)
    return res


async def deploy_e2e_overhead(st: Pipeline, raw: RawTerraform, reps: int) -> dict[str, dict[str, Any]]:
    """QueueJob(DEPLOY of a plan) -> SUCCEEDED vs raw Terraform, against two baselines.

    - ``deploy_e2e_overhead``: ``terraform apply plan.tfplan`` in the directory that planned
      it (already initialised): the least a person could type;
    - ``deploy_e2e_overhead_fresh``: ``init`` + ``apply plan.tfplan`` + ``output -json`` in a
      fresh directory: what applying a stored plan on another machine takes, outputs included.

    Each repetition deploys a new workspace (a fresh Spec, planned first, untimed) so every
    apply creates the same resources; each baseline applies into a fresh state key. The
    three alternate within each repetition, so machine noise hits them alike.
    """
    template = tfvars = ""
    system: list[float] = []
    warm: list[float] = []
    fresh: list[float] = []
    since = len(st.phases.get(events_pb2.DEPLOY, []))
    for _ in range(reps):
        spec = await st.create_spec(full_spec(f"deploy-{uuid.uuid4().hex[:6]}", st.identity_id))
        if not tfvars:
            template, tfvars = await st.tfvars(spec.id)
        _, plan = await st.run_timed(spec.id, events_pb2.PLAN)
        system.append((await st.run_timed(spec.id, events_pb2.DEPLOY, plan.id))[0])
        warm.append(await raw.apply_cycle(template, tfvars, _key("deploy")))
        fresh.append(await raw.apply_fresh_cycle(template, tfvars, _key("deploy-fresh")))
    phases = phase_medians(st, events_pb2.DEPLOY, since)
    out = {}
    for name, baseline, what in (
        ("deploy_e2e_overhead", warm, "apply plan.tfplan (initialised directory)"),
        ("deploy_e2e_overhead_fresh", fresh, "init + apply plan.tfplan + output -json (fresh directory)"),
    ):
        res = Samples(system, baseline).result("s")
        res["baseline_commands"] = what
        res["phases"] = phases
        out[name] = res
    return out


async def _nats_roundtrip(nc: Any, subject: str) -> float:
    got: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_msg(_msg: Any) -> None:
        if not got.done():
            got.set_result(time.perf_counter())

    sub = await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    t0 = time.perf_counter()
    await nc.publish(subject, b"x")
    t1 = await asyncio.wait_for(got, 5)
    await sub.unsubscribe()
    return t1 - t0


async def pickup_latency(st: Pipeline, reps: int) -> dict[str, dict[str, Any]]:
    """Job queued -> runner claimed, vs a raw NATS publish -> subscriber receive.

    The jobs ask for a Terraform version nobody has (``< 0.1``), so the runner claims each
    and fails it at once: the idle runner's pickup is measured without a Terraform run.
    The claim time is the job row's ``start_time``.
    """
    import nats

    spec_doc = full_spec(f"pickup-{uuid.uuid4().hex[:6]}", st.identity_id)
    spec_doc["terraform_version"] = "< 0.1"
    spec = await st.create_spec(spec_doc)
    nc = await nats.connect(st.nats_url)
    subject = f"bench.pickup.{uuid.uuid4().hex[:8]}"
    system: list[float] = []
    baseline: list[float] = []
    try:
        for i in range(reps + 1):
            job = await st.queue(spec.id, events_pb2.PLAN)
            done = await st.wait(job.id)
            if not done.start_time.seconds:
                raise RuntimeError(f"job {job.id} was never claimed: {done.error}")
            # Both stamped by the snapshot service: the row written -> the row claimed. (The
            # client's own clock is no use here: the runner often claims before the QueueJob
            # answer has even reached the client.)
            sample = ts_seconds(done.start_time) - ts_seconds(done.create_time)
            base = await _nats_roundtrip(nc, subject)
            if i > 0:  # the first round warms both paths
                system.append(sample)
                baseline.append(base)
    finally:
        await nc.close()
    ms_s = [x * 1000 for x in system]
    ms_b = [x * 1000 for x in baseline]
    out = {}
    for name, q in (("pickup_latency_p50", 50), ("pickup_latency_p95", 95)):
        value, base_v = percentile(ms_s, q), percentile(ms_b, q)
        out[name] = {
            "value": value,
            "baseline": base_v,
            "ratio": value / base_v if base_v else float("nan"),
            "unit": "ms",
            "samples": len(ms_s),
            "max": max(ms_s),
            "baseline_max": max(ms_b),
        }
    return out


async def spec_size_scaling(
    st: Pipeline, raw: RawTerraform, reps: int, sizes: tuple[int, ...] = (10, 50, 200)
) -> dict[str, Any]:
    """plan_e2e at 10, 50, 200 components: growth (largest/smallest) vs raw Terraform's growth."""
    prepared = []
    for n in sizes:
        spec = await st.create_spec(
            spec_with_components(f"size{n}-{uuid.uuid4().hex[:6]}", st.identity_id, n)
        )
        template, tfvars = await st.tfvars(spec.id)
        prepared.append((n, spec.id, template, tfvars, _key(f"size{n}")))
    per_size: dict[int, Samples] = {}
    for n, spec_id, template, tfvars, key in prepared:

        async def system(spec_id: str = spec_id) -> float:
            return (await st.run_timed(spec_id, events_pb2.PLAN))[0]

        async def baseline(template: str = template, tfvars: str = tfvars, key: str = key) -> float:
            return await raw.plan_cycle(template, tfvars, key)

        per_size[n] = await alternate_measured(system, baseline, reps)
    small, large = sizes[0], sizes[-1]
    sys_med = {n: statistics.median(s.system) for n, s in per_size.items()}
    raw_med = {n: statistics.median(s.baseline) for n, s in per_size.items()}
    growth = sys_med[large] / sys_med[small]
    raw_growth = raw_med[large] / raw_med[small]
    return {
        "value": growth,
        "baseline": raw_growth,
        "ratio": growth / raw_growth if raw_growth else float("nan"),
        "unit": f"x ({large} vs {small} components)",
        "system_s": {str(n): round(v, 4) for n, v in sys_med.items()},
        "baseline_s": {str(n): round(v, 4) for n, v in raw_med.items()},
        "overhead_ratio": {str(n): round(sys_med[n] / raw_med[n], 3) for n in sizes},
        "repetitions": reps,
    }


async def _batch(st: Pipeline, spec_ids: list[str], wall: list[dict[str, float]] | None = None) -> float:
    """Queue one PLAN per Spec at once; seconds from the first QueueJob to the last end time.

    With ``wall``, where the runners' time went is appended: the median job (claimed ->
    CompleteJob committed) and, per job, the time a runner held no job (``runners x batch
    wall - sum of job times``: waiting for work, claiming, between CompleteJob and the next
    claim).
    """
    t0 = time.time()
    jobs = await asyncio.gather(*(st.queue(s, events_pb2.PLAN) for s in spec_ids))
    done = await asyncio.gather(*(st.wait(j.id) for j in jobs))
    failed = [d for d in done if d.status != events_pb2.SUCCEEDED]
    if failed:
        raise RuntimeError(f"{len(failed)} scaling jobs failed: {failed[0].error}")
    total = max(ts_seconds(d.end_time) for d in done) - t0
    if wall is not None:
        runs = [ts_seconds(d.end_time) - ts_seconds(d.start_time) for d in done]
        runners = len({d.runner_id for d in done})
        wall.append(
            {
                "job_s": statistics.median(runs),
                "runner_idle_s_per_job": (runners * total - sum(runs)) / len(done),
                "runners_used": runners,
            }
        )
    return total


async def runner_scaling(st: Pipeline, jobs: int, reps: int) -> dict[str, Any]:
    """PLAN jobs per minute with 2 runner processes vs 1 (each with concurrency 1).

    The stack's own runner is stopped and two runners are started (untimed). For the
    1-runner rounds the second is paused with SIGSTOP while idle; since work is only ever
    taken through ClaimJob, a dispatch wake-up it swallows meanwhile delays nothing: the
    first runner claims every job. Each job has a workspace of its own, so nothing
    serializes them but the runners.
    """
    spec_ids = [
        (await st.create_spec(full_spec(f"scale{i}-{uuid.uuid4().hex[:6]}", st.identity_id))).id
        for i in range(jobs)
    ]
    st.stop_default_runner()
    one: list[float] = []
    two: list[float] = []
    cpu: list[dict[str, float]] = []
    wall_one: list[dict[str, float]] = []
    wall_two: list[dict[str, float]] = []
    try:
        runners = await st.start_runners(["bench-runner-1", "bench-runner-2"], concurrency=1)
        second = runners[1]
        groups = _cpu_groups(st, runners)
        for _ in range(reps):
            second.pause()
            one.append(await _batch(st, spec_ids, wall_one))
            second.resume()
            before = _cpu_seconds(groups)
            two.append(await _batch(st, spec_ids, wall_two))
            after = _cpu_seconds(groups)
            cpu.append({k: (after[k] - before[k]) / jobs for k in after})
    finally:
        st.stop_children()
    res = Samples(two, one).result("jobs/min", higher_is_better=True, per=jobs * 60)
    res["jobs"] = jobs
    # Where the CPU of a two-runner batch went, per job (median over repetitions):
    # Terraform (and git) run as the runners' children, counted once reaped.
    res["cpu_s_per_job"] = {
        k: round(statistics.median(c[k] for c in cpu), 4) for k in (cpu[0] if cpu else {})
    }
    # Where the wall time went (medians over repetitions), one runner and two.
    res["wall_s_per_job"] = {
        label: {k: round(statistics.median(w[k] for w in rows), 4) for k in rows[0]}
        for label, rows in (("one_runner", wall_one), ("two_runners", wall_two))
        if rows
    }
    return res


def _cpu_groups(st: Pipeline, runners: list[Any]) -> dict[str, list[int]]:
    """Process ids by role: the runners, the services, NATS and SeaweedFS."""
    services = [pid for name, pid in st.pids().items() if name != "executor"]
    assert st.infra is not None
    infra = [p.process.proc.pid for p in (st.infra.nats, st.infra.s3) if p and p.process and p.process.proc]
    return {"runners": [r.proc.pid for r in runners if r.proc], "services": services, "infra": infra}


def _cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far: each group's own, and (``terraform``) the runners' reaped children."""
    import psutil

    out = {"runners_python": 0.0, "terraform": 0.0, "services": 0.0, "nats_s3": 0.0}
    for role, pids in groups.items():
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            own = t.user + t.system
            if role == "runners":
                out["runners_python"] += own
                out["terraform"] += t.children_user + t.children_system
            elif role == "services":
                out["services"] += own
            else:
                out["nats_s3"] += own
    return out
