"""The committed generated code matches protos/ (a stale check, as STYLE.md asks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_package_is_versioned() -> None:
    protos = sorted(
        p.relative_to(ROOT / "protos").parts[:3] for p in (ROOT / "protos" / "alethia").rglob("*.proto")
    )
    assert {p[1] for p in protos} == {"specs", "snapshot", "mapper", "executor", "events"}
    assert all(p[0] == "alethia" and p[2] == "v1" for p in protos)
