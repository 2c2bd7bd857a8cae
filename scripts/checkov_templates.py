"""Run checkov on templates/spec with the golden tfvars and hold the result to the baseline.

For each cloud, checkov scans ``templates/spec/<cloud>`` with
``tests/mapper/golden/<cloud>-full.tfvars.json`` as the variable file. The run fails when

- a check fails that ``tests/templates/checkov_baseline.json`` does not list (a new finding),
- a baseline entry has no reason, or a cloud has more than ``MAX_FAILED_PER_CLOUD`` of them,
- an inline ``checkov:skip=<ID>`` in a template has no reason after the id.

Baseline entries that no longer fail are reported so the file shrinks with the fixes.
``--update`` rewrites the baseline with the current failures (reasons kept where the same
check and resource were listed before; new entries get an empty reason, which fails until
someone writes one).

checkov lives in its own venv (``.venv/checkov``, made by ``make install`` from the ``policy``
extra of pyproject.toml) because it pins packaging<24, which the pipeline cannot use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "templates" / "spec"
GOLDEN = ROOT / "tests" / "mapper" / "golden"
BASELINE = ROOT / "tests" / "templates" / "checkov_baseline.json"
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
CLOUDS = ("aws", "gcp", "azure")
MAX_FAILED_PER_CLOUD = 5
# `checkov:skip=CKV_AWS_1:why` -- the reason is what follows the second colon.
_SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@dataclass(frozen=True)
class Result:
    """One cloud's scan: failed (check id, resource) pairs and counts."""

    cloud: str
    failed: frozenset[tuple[str, str]]
    passed: int
    skipped: int
    seconds: float


def scan(cloud: str, checkov: Path = CHECKOV) -> Result:
    """checkov on one cloud's spec template with the golden full tfvars."""
    if not checkov.exists():
        raise SystemExit(f"{checkov} is missing: run `make install` (it builds the checkov venv)")
    cmd = [
        str(checkov), "-d", str(SPEC / cloud), "--var-file", str(GOLDEN / f"{cloud}-full.tfvars.json"),
        "--framework", "terraform", "--output", "json", "--quiet", "--compact", "--skip-download",
    ]  # fmt: skip
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    seconds = time.monotonic() - start
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"checkov failed on {cloud} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    report: Any = json.loads(proc.stdout)
    if isinstance(report, list):
        report = next(r for r in report if r.get("check_type") == "terraform")
    failed = frozenset((f["check_id"], f["resource"]) for f in report["results"]["failed_checks"])
    summary = report["summary"]
    if summary.get("parsing_errors"):
        raise SystemExit(f"checkov could not parse templates/spec/{cloud}: {summary}")
    return Result(cloud, failed, summary["passed"], summary["skipped"], seconds)


def skips_without_reason(spec: Path = SPEC) -> list[str]:
    """``file:line id`` of every inline ``checkov:skip`` that gives no reason."""
    out = []
    for tf in sorted(spec.glob("*/*.tf")):
        for n, line in enumerate(tf.read_text(encoding="utf-8").splitlines(), 1):
            for check_id, reason in _SKIP.findall(line):
                if not reason.strip():
                    out.append(
                        f"{tf.relative_to(spec.parent) if spec.parent in tf.parents else tf}:{n} {check_id}"
                    )
    return out


def count_skips(spec: Path = SPEC) -> dict[str, int]:
    """Inline skips per cloud."""
    return {
        cloud: sum(len(_SKIP.findall(tf.read_text(encoding="utf-8"))) for tf in (spec / cloud).glob("*.tf"))
        for cloud in CLOUDS
    }


def load_baseline(path: Path = BASELINE) -> dict[str, list[dict[str, str]]]:
    """``{cloud: [{"check": id, "resource": address, "reason": why}]}``."""
    data: dict[str, list[dict[str, str]]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def baseline_problems(baseline: dict[str, list[dict[str, str]]]) -> list[str]:
    """Entries without a reason, and clouds over the limit."""
    out = []
    for cloud in CLOUDS:
        entries = baseline.get(cloud, [])
        if len(entries) > MAX_FAILED_PER_CLOUD:
            out.append(f"{cloud}: {len(entries)} accepted failures; at most {MAX_FAILED_PER_CLOUD}")
        out += [
            f"{cloud}: {e['check']} on {e['resource']} has no reason"
            for e in entries
            if not e.get("reason", "").strip()
        ]
    return out


def compare(result: Result, baseline: dict[str, list[dict[str, str]]]) -> tuple[list[str], list[str]]:
    """(new failures, baseline entries that pass now) for one cloud."""
    accepted = {(e["check"], e["resource"]) for e in baseline.get(result.cloud, [])}
    new = sorted(f"{result.cloud}: {c} on {r}" for c, r in result.failed - accepted)
    fixed = sorted(f"{result.cloud}: {c} on {r}" for c, r in accepted - result.failed)
    return new, fixed


def main(argv: list[str] | None = None) -> int:
    """Scan every cloud and report; exit 1 on a new failure or a skip/baseline without reason."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    args = parser.parse_args(argv)
    baseline = load_baseline() if BASELINE.exists() else {}
    results = [scan(cloud) for cloud in CLOUDS]
    skips = count_skips()
    for r in results:
        print(f"checkov {r.cloud}: {len(r.failed)} failed, {r.passed} passed, {r.skipped} skipped "
              f"({skips[r.cloud]} inline skips), {r.seconds:.1f}s")  # fmt: skip
    if args.update:
        reasons = {
            (c, e["check"], e["resource"]): e.get("reason", "") for c, es in baseline.items() for e in es
        }
        baseline = {
            r.cloud: [
                {"check": c, "resource": res, "reason": reasons.get((r.cloud, c, res), "")}
                for c, res in sorted(r.failed)
            ]
            for r in results
        }
        BASELINE.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE.relative_to(ROOT)}")
    errors = baseline_problems(baseline) + [f"skip without a reason: {s}" for s in skips_without_reason()]
    for r in results:
        new, fixed = compare(r, baseline)
        errors += [f"new failed check: {n}" for n in new]
        for f in fixed:
            print(f"passes now, remove from the baseline: {f}")
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
