"""Hostile Spec files: each is refused with one error line naming the file and the path.

Billion laughs (alias expansion), nesting far past Python's recursion limit (YAML and
JSON), duplicate keys in JSON, and an oversized file. Each goes through the real CLI
(``alethia spec create -f``), which reads the file before it looks for a stack, and
through :func:`load_spec_file` in-process with its memory measured.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from alethia.errors import InvalidArgument
from alethia.specfile import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_spec_file

ROOT = Path(__file__).resolve().parents[2]


def _laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    prev = "a"
    for name in "bcdefghi":  # 9^9 ~ 387 million strings once expanded
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


HOSTILE = {
    "laughs.yaml": (_laughs(), "nodes once aliases are expanded (at f[0])"),
    "deep.yaml": (
        "network:\n  provider_config: " + "[" * 200_000 + "]" * 200_000 + "\n",
        f"nested deeper than {MAX_DEPTH} levels (at network.provider_config[0][0]",
    ),
    "deep-map.yaml": (
        "".join("  " * i + f"k{i}:\n" for i in range(300)),
        f"nested deeper than {MAX_DEPTH} levels (at k0.k1.k2",
    ),
    "deep.json": (
        '{"network": {"provider_config": {"x": ' + "[" * 200_000 + "]" * 200_000 + "}}}",
        f"nested deeper than {MAX_DEPTH} levels (at network.provider_config.x[0][0]",
    ),
    "dup.json": (
        '{"zone_id": "z", "network": {"cidr_block": "10.0.0.0/16", "cidr_block": "10.1.0.0/16"}}',
        "duplicate key at network.cidr_block",
    ),
    "big.yaml": ("# " + "x" * (MAX_FILE_BYTES + 10) + "\n", f"at most {MAX_FILE_BYTES} bytes"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_one_violation_with_bounded_memory(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgument) as info:
            load_spec_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [violation] = info.value.violations
    assert violation.field == str(path)
    assert expected in violation.description
    # The file's own text (read once) is the bulk; nothing is expanded or deeply built.
    assert peak < 4 * len(text.encode()) + 8 * 1024 * 1024, peak


def test_limits_leave_real_specs_alone() -> None:
    for provider in ("aws", "gcp", "azure"):
        load_spec_file(ROOT / "examples" / f"{provider}.yaml")
    assert MAX_NODES >= 10_000 and MAX_DEPTH >= 16


def test_a_shared_anchor_within_bounds_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "zone_id: z\nproject_name: &p dev\nenvironment: *p\nregion: us-east-1\ncloud_identity_id: i\n"
        "network: {provision_network: true, provider_config: &cfg {tier: gold, tags: [a, b]}}\n"
        "cluster: {provider_config: *cfg}\n"
    )
    spec = load_spec_file(path)
    assert spec.environment == spec.project_name == "dev"
    assert spec.cluster.provider_config == spec.network.provider_config


@pytest.mark.parametrize("name", ["laughs.yaml", "deep.json", "dup.json", "deep.yaml"])
def test_cli_prints_one_error_line(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text)
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "alethia"),
            "spec",
            "create",
            "-f",
            str(path),
            "--stack-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"error: {path}: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
