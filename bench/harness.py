"""Side-by-side measurement: system and baseline alternate within one run.

Alternating (system, baseline, system, baseline, ...) means machine noise hits both
sides alike, so the ratio is meaningful even on a busy 2-core machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class Samples:
    """Timings in seconds of the system and of its baseline."""

    system: list[float]
    baseline: list[float]
    floor: list[float] | None = None  # the same work behind bare gRPC handlers (bench/floor.py)

    def result(self, unit: str = "s", higher_is_better: bool = False, per: float = 1.0) -> dict[str, Any]:
        """``{"value", "baseline", "ratio", "unit", ...}``; for rates, ``per`` items per sample.

        With floor samples also ``floor``, ``ratio_to_floor`` (system / floor, as ``ratio``
        is system / baseline) and ``floor_ratio`` (floor / baseline: what any gRPC API costs).
        """

        def values(samples: list[float]) -> list[float]:
            return [per / s for s in samples] if higher_is_better else list(samples)

        sys_v, base_v = values(self.system), values(self.baseline)
        value, baseline = statistics.median(sys_v), statistics.median(base_v)
        out = {
            "value": value,
            "baseline": baseline,
            "ratio": value / baseline if baseline else float("nan"),
            "unit": unit,
            "p95": percentile(sys_v, 95),
            "baseline_p95": percentile(base_v, 95),
            "repetitions": len(sys_v),
        }
        if self.floor:
            floor_v = values(self.floor)
            floor = statistics.median(floor_v)
            out["floor"] = floor
            out["floor_p95"] = percentile(floor_v, 95)
            out["ratio_to_floor"] = value / floor if floor else float("nan")
            out["floor_ratio"] = floor / baseline if baseline else float("nan")
        return out


def alternate(system: Callable[[], Any], baseline: Callable[[], Any], repetitions: int) -> Samples:
    """Time ``system`` and ``baseline`` alternately ``repetitions`` times each (sync)."""
    s: list[float] = []
    b: list[float] = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        system()
        s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        baseline()
        b.append(time.perf_counter() - t0)
    return Samples(s, b)


async def alternate_async(
    system: Callable[[], Awaitable[Any]],
    baseline: Callable[[], Awaitable[Any]],
    repetitions: int,
    floor: Callable[[], Awaitable[Any]] | None = None,
) -> Samples:
    """Async form of :func:`alternate`; with ``floor``, a third side in the same rotation."""

    async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
        t0 = time.perf_counter()
        await fn()
        return time.perf_counter() - t0

    s: list[float] = []
    b: list[float] = []
    f: list[float] = []
    for _ in range(repetitions):
        s.append(await timed(system))
        b.append(await timed(baseline))
        if floor is not None:
            f.append(await timed(floor))
    return Samples(s, b, f or None)


async def alternate_measured(
    system: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
    repetitions: int,
    floor: Callable[[], Awaitable[float]] | None = None,
) -> Samples:
    """Like :func:`alternate_async`, but each side reports its own duration in seconds.

    For measurements whose end is observed elsewhere (a job row's end time), so the
    caller's polling interval does not count.
    """
    s: list[float] = []
    b: list[float] = []
    f: list[float] = []
    for _ in range(repetitions):
        s.append(await system())
        b.append(await baseline())
        if floor is not None:
            f.append(await floor())
    return Samples(s, b, f or None)
