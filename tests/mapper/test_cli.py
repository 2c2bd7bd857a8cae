"""`alethia tfvars`: offline mapping; bad input is a non-zero exit naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alethia.cli import main
from tests.mapper.snapshots import snapshot, snapshot_path, tfvars_path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _alethia_process(*args: str) -> Result:
    """The real entry point, in a fresh process: exactly what a user runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "alethia.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _alethia(*args: str) -> Result:
    """The same CLI app in this process (fast); an escaping exception fails the test."""
    main._register_all()
    result = CliRunner().invoke(main.app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def test_prints_the_tfvars_on_stdout_and_writes_out(tmp_path: Path) -> None:
    result = _alethia_process("tfvars", "--snapshot", str(snapshot_path("gcp", "full")), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == tfvars_path("gcp", "full").read_text(encoding="utf-8")
    out = tmp_path / "terraform.tfvars.json"
    result = _alethia("tfvars", "--snapshot", str(snapshot_path("azure", "minimal")), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8") == tfvars_path("azure", "minimal").read_text(encoding="utf-8")


def _bad_snapshot(tmp_path: Path, mutate: str) -> Path:
    data = snapshot("aws")
    if mutate == "type":
        data["cluster"]["node_min_size"] = "2"
    elif mutate == "provider":
        data["provider"] = "oracle"
    elif mutate == "option":
        data["dns"]["provider_config"]["wafx"] = True
    elif mutate == "unknown":
        data["clusterx"] = {}
    elif mutate == "engine":
        data["databases"][1]["engine"] = "db2"
    path = tmp_path / f"{mutate}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "line"),
    [
        ("type", "error: cluster.node_min_size: expected an integer"),
        ("provider", "error: provider: must be one of aws, gcp, azure"),
        ("option", "error: dns.provider_config.wafx: unknown key for aws"),
        ("unknown", "error: clusterx: unknown field"),
        ("engine", "error: databases[1].engine: must be one of"),
    ],
)
def test_malformed_snapshot_exits_non_zero_naming_the_field(tmp_path: Path, mutate: str, line: str) -> None:
    result = _alethia("tfvars", "--snapshot", str(_bad_snapshot(tmp_path, mutate)))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert "Traceback" not in result.stderr


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("provider: aws\n", encoding="utf-8")
    result = _alethia_process("tfvars", "--snapshot", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("error: snapshot is not valid JSON")
    result = _alethia("tfvars", "--snapshot", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read")
    for res in (result,):
        assert "Traceback" not in res.stderr


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    data = snapshot("azure")
    data["cluster"]["node_max_size"] = "many"
    data["network"]["cidr_block"] = 10
    del data["region"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = _alethia("tfvars", "--snapshot", str(path))
    assert result.returncode == 2
    assert sorted(result.stderr.strip().splitlines()) == [
        "error: cluster.node_max_size: expected an integer",
        "error: network.cidr_block: expected a string",
        "error: region: is required",
    ]


def test_accepts_the_output_of_alethia_snapshot(tmp_path: Path) -> None:
    envelope = {"snapshot": snapshot("aws"), "config_hash": "ab" * 32, "spec_revision": 3}
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(envelope), encoding="utf-8")
    result = _alethia("tfvars", "--snapshot", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == tfvars_path("aws", "full").read_text(encoding="utf-8")
    # Anything more than that envelope is not unwrapped: strictness stays the mapper's.
    envelope["extra"] = 1
    path.write_text(json.dumps(envelope), encoding="utf-8")
    result = _alethia("tfvars", "--snapshot", str(path))
    assert result.returncode == 2
    assert "error: snapshot: unknown field" in result.stderr
