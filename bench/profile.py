"""Where a PLAN job's time goes: ``python -m bench.profile [--jobs N] [--postgres URL] [--html FILE]``.

Runs the four services in this process (their ``app.start``, as the tests do) on real
NATS, SeaweedFS and Terraform, then queues PLAN jobs of the full Spec one at a time and
reports:

- a stage timeline per job (wall time of QueueJob, pickup, RenderTfvars, the working
  directory, each Terraform command, each upload, the cost step, CompleteJob), next to
  the same Terraform commands run by hand: what the pipeline adds on top of Terraform;
- a pyinstrument profile of this process over the same jobs (CPU spent in our code: log
  streaming, redaction, JSON, gRPC, SQL), printed, and saved as HTML with ``--html``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alethia.events.v1 import events_pb2
from bench.raw_terraform import RawTerraform
from bench.specs import spec_with_components
from tests.harness import Pipeline, PostgresDatabases, SharedInfra, ts_seconds

SPANS: dict[str, list[float]] = defaultdict(list)


def _span_async(label: Callable[..., str], fn: Any) -> Any:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPANS[label(*args, **kwargs)].append(time.perf_counter() - t0)

    return wrapper


def _span_sync(label: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPANS[label].append(time.perf_counter() - t0)

    return wrapper


def instrument() -> None:
    """Wrap the executor's and snapshot service's stages with wall-clock spans."""
    from services.executor import artifacts, cost, jobs, logstream, postapply, runner, terraform, workspace
    from services.snapshot import job_queue

    terraform.Terraform._run = _span_async(  # type: ignore[method-assign]
        lambda self, argv, stage, **kw: f"terraform {argv[0]}", terraform.Terraform._run
    )
    artifacts.ArtifactStore.put = _span_async(  # type: ignore[method-assign]
        lambda self, job_id, name, *a, **kw: f"upload {name}", artifacts.ArtifactStore.put
    )
    workspace.prepare = _span_sync("prepare working directory", workspace.prepare)
    jobs.cost_mod.estimate = _span_async(lambda *a, **kw: "cost estimate", cost.estimate)
    logstream.LogPublisher.close = _span_async(  # type: ignore[method-assign]
        lambda self: "log publisher close", logstream.LogPublisher.close
    )
    jobs.JobExecution.run = _span_async(  # type: ignore[method-assign]
        lambda self: "job (claim to result)", jobs.JobExecution.run
    )
    runner.Runner._complete = _span_async(  # type: ignore[method-assign]
        lambda self, rj, result: "CompleteJob (runner side)", runner.Runner._complete
    )
    jobs.JobExecution._verified_plan = _span_async(  # type: ignore[method-assign]
        lambda self, *a: "verify stored plan (download or kept)",
        jobs.JobExecution._verified_plan,
    )
    jobs.JobExecution._take_kept_plan = _span_async(  # type: ignore[method-assign]
        lambda self, *a: "kept plan directory: take + digests", jobs.JobExecution._take_kept_plan
    )
    jobs.run_post_apply = _span_async(lambda ctx: "post-apply (all steps)", jobs.run_post_apply)
    postapply.push_files = _span_async(lambda *a, **kw: "post-apply: git push", postapply.push_files)
    postapply.cluster_unreachable = _span_sync(
        "post-apply: cluster reachable?", postapply.cluster_unreachable
    )
    artifacts.ArtifactStore.get = _span_async(  # type: ignore[method-assign]
        lambda self, key: "download artifact", artifacts.ArtifactStore.get
    )
    job_queue.JobQueue.queue_job = _span_async(  # type: ignore[method-assign]
        lambda self, *a, **kw: "QueueJob (snapshot service)", job_queue.JobQueue.queue_job
    )
    job_queue.JobQueue.claim_job = _span_async(  # type: ignore[method-assign]
        lambda self, *a, **kw: "ClaimJob (snapshot service)", job_queue.JobQueue.claim_job
    )


def _table(title: str, rows: list[tuple[str, float, int]]) -> None:
    print(f"\n{title}")
    for label, ms, n in rows:
        print(f"  {label:<36} {ms:9.1f} ms   (x{n})")


async def _main(args: argparse.Namespace) -> int:
    from pyinstrument import Profiler

    root = Path(tempfile.mkdtemp(prefix="alethia-profile-"))
    infra = SharedInfra(root / "infra").start()
    pg = PostgresDatabases(args.postgres) if args.postgres else None
    # The four services in this process on port 0 (their ``app.start``, as the tests do),
    # with the services' own default timings.
    st = Pipeline(root, infra=infra, watch_events=True)
    try:
        instrument()
        if pg is not None:
            st.specs_db, st.snapshot_db = await pg.create("prof_specs"), await pg.create("prof_snapshot")
        await st.start(runner=True, runner_id="profile-runner")
        spec = await st.create_spec(spec_with_components("profile", st.identity_id, args.components))
        template, tfvars = await st.tfvars(spec.id)
        assert infra.s3 is not None
        raw = RawTerraform(root / "raw", infra.s3.endpoint)
        await st.run_timed(spec.id, events_pb2.PLAN)  # warm-up, not profiled
        await raw.plan_cycle(template, tfvars, "profile/raw/terraform.tfstate")
        SPANS.clear()

        e2e: list[float] = []
        pickup: list[float] = []
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        jtype = events_pb2.DEPLOY if args.deploy else events_pb2.PLAN
        for i in range(args.jobs):
            plan_job_id = ""
            if args.deploy:  # a fresh workspace, planned first (neither profiled nor timed)
                spec = await st.create_spec(
                    spec_with_components(f"profile-{i}", st.identity_id, args.components)
                )
                saved = {k: list(v) for k, v in SPANS.items()}
                plan_job_id = (await st.run_timed(spec.id, events_pb2.PLAN))[1].id
                SPANS.clear()
                SPANS.update(saved)
            profiler.start()
            t0 = time.time()
            job = await st.queue(spec.id, jtype, plan_job_id)
            done = await st.wait(job.id)
            profiler.stop()
            e2e.append(ts_seconds(done.end_time) - t0)
            pickup.append(ts_seconds(done.start_time) - ts_seconds(done.create_time))
        system_spans = {k: list(v) for k, v in SPANS.items()}

        raw_cmds: dict[str, list[float]] = defaultdict(list)
        raw_total: list[float] = []
        for i in range(args.jobs):
            wd = raw.directory(template, tfvars)
            if args.deploy:
                await raw.init(wd, f"profile/raw-{i}/terraform.tfstate")
                await raw.plan_show(wd)
                t0 = time.perf_counter()
                await raw.apply(wd)
                raw_cmds["terraform apply (initialised directory)"].append(time.perf_counter() - t0)
                raw_total.append(time.perf_counter() - t0)
                # The fair baseline: the same plan applied in a fresh directory, outputs read.
                fresh = raw.directory(template, tfvars)
                planned = raw.directory(template, tfvars)
                fkey = f"profile/raw-fresh-{i}/terraform.tfstate"
                await raw.init(planned, fkey)
                await raw.plan_show(planned)
                (fresh / "plan.tfplan").write_bytes((planned / "plan.tfplan").read_bytes())
                t0 = time.perf_counter()
                await raw.init(fresh, fkey)
                t1 = time.perf_counter()
                await raw.apply(fresh)
                t2 = time.perf_counter()
                await raw.output(fresh)
                t3 = time.perf_counter()
                raw_cmds["fresh directory: terraform init"].append(t1 - t0)
                raw_cmds["fresh directory: terraform apply"].append(t2 - t1)
                raw_cmds["fresh directory: terraform output"].append(t3 - t2)
                continue
            t0 = time.perf_counter()
            await raw.init(wd, "profile/raw/terraform.tfstate")
            t1 = time.perf_counter()
            await raw._tf(wd, "plan", "-input=false", "-out=plan.tfplan")
            t2 = time.perf_counter()
            await raw._tf(wd, "show", "-json", "plan.tfplan")
            t3 = time.perf_counter()
            raw_cmds["terraform init"].append(t1 - t0)
            raw_cmds["terraform plan"].append(t2 - t1)
            raw_cmds["terraform show"].append(t3 - t2)
            raw_total.append(t3 - t0)

        n = args.jobs
        rows = sorted(((k, sum(v) / n * 1000, len(v)) for k, v in system_spans.items()), key=lambda r: -r[1])
        kind = "DEPLOY" if args.deploy else "PLAN"
        _table(f"pipeline stages, mean per {kind} job over {n} jobs (wall time)", rows)
        _table(
            "the same Terraform commands by hand",
            [(k, statistics.mean(v) * 1000, len(v)) for k, v in raw_cmds.items()],
        )
        print(
            f"\nQueueJob -> SUCCEEDED median {statistics.median(e2e) * 1000:.0f} ms, "
            f"raw {'apply' if args.deploy else 'init+plan+show'} median {statistics.median(raw_total) * 1000:.0f} ms, "
            f"ratio {statistics.median(e2e) / statistics.median(raw_total):.2f}; "
            f"pickup median {statistics.median(pickup) * 1000:.1f} ms"
        )
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html:
            await asyncio.to_thread(Path(args.html).write_text, profiler.output_html())
            print(f"profile saved to {args.html}")
    finally:
        await st.stop()
        infra.stop()
        if pg is not None:
            await pg.drop_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=8, help="PLAN jobs to profile (default 8)")
    p.add_argument(
        "--components", type=int, default=11, help="Spec components (default 11: the full example)"
    )
    p.add_argument("--postgres", default=None, help="Postgres admin URL (default: SQLite)")
    p.add_argument("--deploy", action="store_true", help="profile DEPLOY of a stored plan instead of PLAN")
    p.add_argument("--html", default=None, help="also save the pyinstrument profile as HTML here")
    return asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
