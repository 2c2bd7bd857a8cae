"""Cost estimate: skipped with the reason when Infracost cannot run; parsed when it does.

Infracost needs an API key and the network, so the "estimated" path runs a stand-in
``infracost`` script that prints what ``infracost breakdown --format json`` prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.executor.cost import cost_from_breakdown, estimate

BREAKDOWN = {"version": "0.2", "currency": "EUR", "totalMonthlyCost": "123.45", "projects": []}


async def test_skipped_without_infracost_or_api_key(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    none = await estimate(plan, {"PATH": str(tmp_path), "INFRACOST_API_KEY": "k"})
    assert (none.status, none.reason) == ("skipped", "infracost is not installed on the runner")
    fake = tmp_path / "infracost"
    fake.write_text(f"#!/bin/sh\necho '{json.dumps(BREAKDOWN)}'\n")
    fake.chmod(0o755)
    nokey = await estimate(plan, {"PATH": str(tmp_path)})
    assert (nokey.status, nokey.reason) == ("skipped", "INFRACOST_API_KEY is not set")
    done = await estimate(plan, {"PATH": f"{tmp_path}:{os.environ['PATH']}", "INFRACOST_API_KEY": "k"})
    assert (done.status, done.currency, done.total_monthly_cost) == ("estimated", "EUR", 123.45)
    assert json.loads(done.breakdown_json) == BREAKDOWN
    fake.write_text("#!/bin/sh\necho 'bad key' >&2\nexit 1\n")
    failed = await estimate(plan, {"PATH": f"{tmp_path}:{os.environ['PATH']}", "INFRACOST_API_KEY": "k"})
    assert failed.status == "failed" and "bad key" in failed.reason


def test_breakdown_without_total_is_zero() -> None:
    assert cost_from_breakdown({"currency": "USD", "totalMonthlyCost": None}).total_monthly_cost == 0.0
