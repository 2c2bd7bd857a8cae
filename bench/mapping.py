"""Mapping throughput: snapshot JSON -> terraform.tfvars.json, against ``json.dumps``.

The system side is the whole of stages 3-4 as the executor and ``alethia tfvars`` run it
(:func:`alethia.mapping.render.render_tfvars` on the snapshot's JSON text: parse, strict
typed validation, provider checks, mapping, canonical JSON). The baseline is ``json.dumps``
of the same snapshot, the least any stage that writes JSON must do. Both run in batches,
alternating, several repetitions; the result is operations per second (median, p95) and
their ratio. ``python -m bench.mapping [--quick]`` prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import alternate

SNAPSHOT = Path(__file__).resolve().parents[1] / "tests" / "mapper" / "golden" / "aws-full.snapshot.json"


def run(quick: bool) -> dict[str, Any]:
    """``{"mapping_throughput": {"value", "baseline", "ratio", "unit": "ops/s", "p95", ...}}``."""
    from alethia.mapping.render import render_tfvars

    text = SNAPSHOT.read_text(encoding="utf-8")
    snapshot = json.loads(text)
    batch = 50 if quick else 200
    repetitions = 5 if quick else 15

    def system() -> None:
        for _ in range(batch):
            render_tfvars(text)

    def baseline() -> None:
        for _ in range(batch):
            json.dumps(snapshot)

    for _ in range(2):  # warm caches and pydantic's validators before measuring
        system()
        baseline()
    samples = alternate(system, baseline, repetitions)
    result = samples.result(unit="ops/s", higher_is_better=True, per=batch)
    result["detail"] = (
        f"render_tfvars(aws full snapshot, {len(text)} bytes) vs json.dumps of it; {batch} ops per sample"
    )
    return {"mapping_throughput": result}


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
