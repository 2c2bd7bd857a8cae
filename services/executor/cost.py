"""Cost estimate of a plan with Infracost, when it is installed and configured.

Never fails a job: without ``infracost`` on PATH or ``INFRACOST_API_KEY`` the estimate is
``skipped`` with the reason; an Infracost error gives ``failed`` with the reason.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cost:
    status: str  # estimated | skipped | failed
    reason: str = ""
    currency: str = ""
    total_monthly_cost: float = 0.0
    breakdown_json: str = ""


def cost_from_breakdown(doc: dict[str, object]) -> Cost:
    """The summary of an ``infracost breakdown --format json`` document (pure)."""
    total = doc.get("totalMonthlyCost")
    try:
        amount = float(total) if total not in (None, "") else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        amount = 0.0
    return Cost("estimated", "", str(doc.get("currency") or "USD"), amount, json.dumps(doc, sort_keys=True))


async def estimate(
    plan_json_path: Path, env: Mapping[str, str] | None = None, limit_seconds: float = 120.0
) -> Cost:
    """Run ``infracost breakdown`` on a plan JSON file, or say why it was not run."""
    env = dict(env or {})  # the runner's environment, from its context (read at the edge)
    binary = shutil.which("infracost", path=env.get("PATH"))
    if not binary:
        return Cost("skipped", "infracost is not installed on the runner")
    if not env.get("INFRACOST_API_KEY"):
        return Cost("skipped", "INFRACOST_API_KEY is not set")
    proc = await asyncio.create_subprocess_exec(
        binary, "breakdown", "--path", str(plan_json_path), "--format", "json", "--no-color",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        proc.kill()
        return Cost("failed", f"infracost timed out after {limit_seconds:.0f}s")
    if proc.returncode:
        return Cost(
            "failed", f"infracost exited {proc.returncode}: {err.decode(errors='replace')[-300:].strip()}"
        )
    try:
        return cost_from_breakdown(json.loads(out))
    except ValueError:
        return Cost("failed", "infracost printed invalid JSON")
