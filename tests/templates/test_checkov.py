"""checkov on templates/spec with the golden tfvars: nothing fails beyond the baseline.

The scan itself (``scripts/checkov_templates.py``, also run by ``make lint``) takes a few
seconds per cloud; checkov lives in ``.venv/checkov`` (``make install``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import checkov_templates as ck


def test_every_inline_skip_gives_a_reason(tmp_path: Path) -> None:
    assert ck.skips_without_reason() == []
    # The check itself: a bare skip is caught, a skip with a reason is not.
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "main.tf").write_text(
        'resource "x" "y" {\n  # checkov:skip=CKV_AWS_1\n  # checkov:skip=CKV_AWS_2:because\n}\n',
        encoding="utf-8",
    )
    bare = ck.skips_without_reason(tmp_path)
    assert len(bare) == 1 and bare[0].endswith(":2 CKV_AWS_1")


def test_the_baseline_has_reasons_and_stays_small() -> None:
    baseline = ck.load_baseline()
    assert set(baseline) == set(ck.CLOUDS)
    assert ck.baseline_problems(baseline) == []
    too_many = {"aws": [{"check": f"CKV_AWS_{i}", "resource": "r", "reason": "x"} for i in range(6)]}
    assert ck.baseline_problems(too_many) == ["aws: 6 accepted failures; at most 5"]
    assert ck.baseline_problems({"gcp": [{"check": "C", "resource": "r", "reason": " "}]}) == [
        "gcp: C on r has no reason"
    ]


@pytest.mark.parametrize("cloud", ck.CLOUDS)
def test_checkov_finds_nothing_new(cloud: str) -> None:
    result = ck.scan(cloud)
    new, fixed = ck.compare(result, ck.load_baseline())
    assert new == [], "new failed checks (fix the template or skip inline with a reason):\n" + "\n".join(new)
    assert fixed == [], f"these pass now; remove them from {ck.BASELINE.name}: {fixed}"
    assert result.passed > 20 and result.skipped > 0


def test_the_comparison_reports_new_and_fixed_findings() -> None:
    result = ck.Result("aws", frozenset({("CKV_AWS_1", "a.b"), ("CKV_AWS_2", "c.d")}), 10, 0, 0.0)
    baseline = json.loads('{"aws": [{"check": "CKV_AWS_2", "resource": "c.d", "reason": "r"},'
                          ' {"check": "CKV_AWS_3", "resource": "e.f", "reason": "r"}]}')  # fmt: skip
    assert ck.compare(result, baseline) == (["aws: CKV_AWS_1 on a.b"], ["aws: CKV_AWS_3 on e.f"])
