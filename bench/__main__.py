"""``python -m bench [--quick] [--only NAME] [--stack embedded|postgres|both] [--postgres URL]``.

Starts one NATS JetStream and one SeaweedFS S3 for the run, then for each stack (Postgres
first, then the embedded SQLite stack) the four services as processes the way ``alethia up``
does, and runs every benchmark there: the system and its raw baseline alternate, several
repetitions each. Prints a table, writes ``bench/results/latest.json`` (the previous one is
kept as ``previous.json``). Exit code 0 whatever the numbers: targets are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report


@dataclass(frozen=True)
class Plan:
    """Repetitions per benchmark (full and quick runs measure the same things)."""

    plan_reps: int
    deploy_reps: int
    pickup_reps: int
    size_reps: int
    create_reps: int
    create_batch: int
    snapshot_reps: int
    claim_reps: int
    claim_jobs: int
    scaling_jobs: int
    scaling_reps: int
    rss_settle: float
    sizes: tuple[int, ...]

    cli_reps: int = 20


FULL = Plan(7, 4, 40, 3, 5, 25, 50, 3, 60, 20, 2, 3.0, (10, 50, 200), 20)
QUICK = Plan(2, 1, 8, 1, 3, 8, 15, 2, 16, 4, 1, 1.0, (10, 200), 5)

# Service-path benchmarks that also run against bench/floor.py (the same SQL, bare gRPC).
FLOOR_BENCHES = ("create_spec_throughput", "snapshot_latency", "claim_throughput")

STACK_BENCHES = (
    "plan_e2e_overhead",
    "deploy_e2e_overhead",
    "pickup_latency",
    "spec_size_scaling",
    "rss_idle_mb",
    "create_spec_throughput",
    "snapshot_latency",
    "claim_throughput",
    "runner_scaling",
    "gateway_getspec",
    "gateway_idle_rss_mb",
    "cli_latency",
    "snapshot_replicas",
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    p.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only these benchmarks (repeatable)"
    )
    p.add_argument(
        "--stack",
        choices=("embedded", "postgres", "both"),
        default=None,
        help="which stack(s): default both for a full run, embedded for --quick",
    )
    p.add_argument(
        "--postgres",
        default=None,
        help="admin URL of the Postgres server (default $ALETHIA_BENCH_POSTGRES_URL, else "
        "postgresql://postgres@127.0.0.1:5432/postgres); fresh databases are created and dropped",
    )
    p.add_argument(
        "--output", type=Path, default=None, help="results file (default bench/results/latest.json)"
    )
    return p.parse_args(argv)


def _wanted(only: list[str], key: str) -> bool:
    names = [n.strip() for o in only for n in o.split(",") if n.strip()]
    return not names or any(n == key or n.startswith(key) or key.startswith(n) for n in names)


def _say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def _guard(results: dict[str, Any], name: str, fn: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Run one benchmark; an exception becomes an ``error`` entry, never a failed run."""
    _say(f"{name} ...")
    t0 = time.monotonic()
    try:
        out = await fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        results[name] = {
            "error": f"{type(exc).__name__}: {exc}",
            "value": None,
            "baseline": None,
            "ratio": None,
        }
        _say(f"{name} failed: {exc}")
        return
    if name in ("pickup_latency", "deploy_e2e_overhead"):  # several rows
        results.update(out)
    else:
        out.setdefault("seconds", round(time.monotonic() - t0, 1))
        results[name] = out
    _say(f"{name} done in {time.monotonic() - t0:.1f}s")


async def _run_stack(
    kind: str, root: Path, infra: Any, plan: Plan, only: list[str], pg: Any
) -> dict[str, Any]:
    from bench import cli, database, gateway, memory, pipeline, replicas
    from bench.floor import FloorProcess
    from bench.raw_terraform import RawTerraform
    from tests.harness import Pipeline

    results: dict[str, Any] = {}
    st = Pipeline(root / kind, infra=infra, processes=True, watch_events=True)
    if kind == "postgres":
        st.specs_db = await pg.create("bench_specs")
        st.snapshot_db = await pg.create("bench_snapshot")
    _say(f"starting the {kind} stack (four service processes)")
    t0 = time.monotonic()
    await st.start()  # the main thread: children die with it (PR_SET_PDEATHSIG)
    _say(f"{kind} stack up in {time.monotonic() - t0:.1f}s")
    assert infra.s3 is not None
    raw = RawTerraform(root / kind / "raw", infra.s3.endpoint)
    floor: FloorProcess | None = None
    try:
        if any(_wanted(only, n) for n in FLOOR_BENCHES):
            floor = await FloorProcess(st.specs_db, st.snapshot_db).start()
        steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            ("plan_e2e_overhead", lambda: pipeline.plan_e2e_overhead(st, raw, plan.plan_reps)),
            ("pickup_latency", lambda: pipeline.pickup_latency(st, plan.pickup_reps)),
            ("deploy_e2e_overhead", lambda: pipeline.deploy_e2e_overhead(st, raw, plan.deploy_reps)),
            ("spec_size_scaling", lambda: pipeline.spec_size_scaling(st, raw, plan.size_reps, plan.sizes)),
            ("rss_idle_mb", lambda: memory.rss_idle(st, plan.rss_settle)),
            (
                "create_spec_throughput",
                lambda: database.create_spec_throughput(st, plan.create_reps, plan.create_batch, floor),
            ),
            ("snapshot_latency", lambda: database.snapshot_latency(st, plan.snapshot_reps, floor=floor)),
            ("gateway_getspec", lambda: gateway.getspec_rest_vs_grpc(st, plan.snapshot_reps)),
            ("gateway_idle_rss_mb", lambda: gateway.gateway_idle_rss(st, plan.rss_settle)),
            ("cli_latency", lambda: cli.cli_latency(st, plan.cli_reps)),
        ]
        for name, fn in steps:
            if _wanted(only, name):
                await _guard(results, name, fn)
        # From here on the stack's own runner is stopped: these must be the only claimers.
        if _wanted(only, "claim_throughput"):
            st.stop_default_runner()
            await _guard(
                results,
                "claim_throughput",
                lambda: database.claim_throughput(st, plan.claim_reps, plan.claim_jobs, floor=floor),
            )
        if _wanted(only, "runner_scaling"):
            await _guard(
                results,
                "runner_scaling",
                lambda: pipeline.runner_scaling(st, plan.scaling_jobs, plan.scaling_reps),
            )
        if _wanted(only, "snapshot_replicas") and kind == "postgres":
            await _guard(
                results,
                "snapshot_replicas",
                lambda: replicas.snapshot_replicas(st, plan.scaling_jobs, plan.scaling_reps),
            )
    finally:
        if floor is not None:
            await floor.stop()
        _say(f"stopping the {kind} stack")
        await st.stop()
    for entry in results.values():
        entry.setdefault("stack", kind)
    return results


async def _mapping(quick: bool) -> dict[str, Any]:
    try:
        from bench import mapping  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RuntimeError(f"bench/mapping.py is not available: {exc}") from exc
    out = await asyncio.to_thread(mapping.run, quick)
    if "value" not in out and "mapping_throughput" in out:
        out = out["mapping_throughput"]
    return dict(out)


async def _main(args: argparse.Namespace) -> int:
    import os

    from tests.harness import DEFAULT_POSTGRES, PostgresDatabases, SharedInfra

    plan = QUICK if args.quick else FULL
    stack_choice = args.stack or ("embedded" if args.quick else "both")
    kinds = ["postgres", "embedded"] if stack_choice == "both" else [stack_choice]
    pg_url = args.postgres or os.environ.get("ALETHIA_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES
    pg = PostgresDatabases(pg_url)
    started = time.monotonic()
    shared: dict[str, Any] = {}
    per_stack: dict[str, dict[str, Any]] = {}
    notes: list[str] = []

    if _wanted(args.only, "mapping_throughput"):
        await _guard(shared, "mapping_throughput", lambda: _mapping(args.quick))

    pg_version = "not used"
    if "postgres" in kinds:
        try:
            pg_version = await pg.server_version()
        except Exception as exc:
            notes.append(f"Postgres unreachable at {pg_url}: {exc}; the postgres stack was skipped")
            _say(notes[-1])
            kinds.remove("postgres")
            pg_version = f"unreachable ({exc})"

    need_stack = any(_wanted(args.only, b) for b in STACK_BENCHES)
    root = Path(tempfile.mkdtemp(prefix="alethia-bench-"))
    infra = None
    tf_version = ""
    try:
        if need_stack and kinds:
            _say("starting nats-server and SeaweedFS")
            infra = SharedInfra(root / "infra").start()
            from bench.raw_terraform import RawTerraform

            assert infra.s3 is not None
            tf_version = await RawTerraform(root / "tfv", infra.s3.endpoint).version()
            for kind in kinds:
                try:
                    per_stack[kind] = await _run_stack(kind, root, infra, plan, args.only, pg)
                except Exception as exc:
                    traceback.print_exc(file=sys.stderr)
                    notes.append(f"the {kind} stack failed: {type(exc).__name__}: {exc}")
    finally:
        if infra is not None:
            infra.stop()
        await pg.drop_all()
        shutil.rmtree(root, ignore_errors=True)

    results = report.merge(per_stack, shared)
    results["_machine"] = report.machine(pg_version, tf_version or "not run", report.terraform_path())
    results["_run"] = {
        "mode": "quick" if args.quick else "full",
        "stacks": kinds,
        "only": args.only,
        "seconds": round(time.monotonic() - started, 1),
        "repetitions": plan.__dict__,
        "notes": notes,
    }
    out = args.output or report.RESULTS / "latest.json"
    if out.exists() and args.output is None:
        shutil.copyfile(out, out.with_name("previous.json"))
    report.write(results, out)
    out.with_suffix(".md").write_text(report.markdown_table(results) + "\n")
    report.print_table(results)
    for n in notes:
        print(f"note: {n}")
    print(f"results: {out} ({results['_run']['seconds']}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
