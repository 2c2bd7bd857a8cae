"""``alethia up`` when a part cannot start: one clear error, and everything stopped again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil

from alethia.stack.datadir import lock_held
from tests.e2e.conftest import ROOT, CliResult, clean_env


def test_a_service_that_cannot_start_stops_the_stack_with_one_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The snapshot service's database does not answer: it exits while starting.
    env = clean_env(ALETHIA_SNAPSHOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    done = subprocess.run(
        [sys.executable, "-m", "alethia.cli.main", "up", "--data-dir", str(data_dir), "--free-ports"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    result = CliResult(done.returncode, done.stdout, done.stderr)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    assert errors[0].startswith("error: the snapshot service exited with code 1 while starting: ")
    assert str(data_dir / "logs" / "snapshot.log") in errors[0]
    assert "Traceback" not in result.err

    assert json.loads((data_dir / "stack.json").read_text())["status"] == "stopped"
    assert not lock_held(data_dir)
    left = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(data_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []
