"""The pure parts of the benchmark harness (the benchmarks themselves never run in tests)."""

from __future__ import annotations

import math

import pytest

from bench.harness import Samples, percentile
from bench.report import HEADERS, judge, merge, rows
from bench.specs import COMPONENT_LISTS, component_count, spec_with_components


def test_percentile_interpolates_between_ranks() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 100) == 4.0
    assert percentile(xs, 50) == pytest.approx(2.5)
    assert percentile(xs, 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


def test_result_of_timings_is_median_p95_and_ratio() -> None:
    res = Samples(system=[2.0, 4.0, 3.0], baseline=[1.0, 1.0, 2.0]).result("s")
    assert res["value"] == 3.0
    assert res["baseline"] == 1.0
    assert res["ratio"] == pytest.approx(3.0)
    assert res["p95"] == pytest.approx(3.9)
    assert res["baseline_p95"] == pytest.approx(1.9)
    assert res["repetitions"] == 3
    assert res["unit"] == "s"


def test_result_of_rates_inverts_timings_per_item() -> None:
    # 10 items in 2 s -> 5/s; baseline 10 items in 0.5 s -> 20/s.
    res = Samples(system=[2.0], baseline=[0.5]).result("items/s", higher_is_better=True, per=10)
    assert res["value"] == pytest.approx(5.0)
    assert res["baseline"] == pytest.approx(20.0)
    assert res["ratio"] == pytest.approx(0.25)


def test_a_missed_target_is_reported_not_raised() -> None:
    missed = judge("plan_e2e_overhead", {"value": 3.0, "baseline": 1.0, "ratio": 3.0})
    met = judge("plan_e2e_overhead", {"value": 1.2, "baseline": 1.0, "ratio": 1.2})
    failed = judge("plan_e2e_overhead", {"error": "boom", "value": None, "ratio": None})
    assert (missed["met"], met["met"], failed["met"]) == (False, True, None)
    assert missed["target"] == "ratio <= 1.5"


def test_merge_puts_first_stack_on_top_and_keeps_every_stack() -> None:
    per = {
        "postgres": {"claim_throughput": {"value": 6.0, "baseline": 40.0, "ratio": 0.15, "unit": "jobs/s"}},
        "embedded": {"claim_throughput": {"value": 30.0, "baseline": 40.0, "ratio": 0.75, "unit": "jobs/s"}},
    }
    out = merge(per, {})
    entry = out["claim_throughput"]
    assert entry["stack"] == "postgres" and entry["value"] == 6.0 and entry["met"] is False
    assert entry["by_stack"]["embedded"]["met"] is True


def test_floor_is_reported_beside_the_raw_ratio() -> None:
    # Rates: 2 jobs per sample; the system takes 1 s, raw SQL 0.1 s, the floor 0.4 s.
    res = Samples([1.0, 1.0, 1.0], [0.1, 0.1, 0.1], [0.4, 0.4, 0.4]).result(
        "jobs/s", higher_is_better=True, per=2
    )
    assert (res["value"], res["baseline"], res["floor"]) == (2.0, 20.0, 5.0)
    assert (res["ratio"], res["ratio_to_floor"], res["floor_ratio"]) == (0.1, 0.4, 0.25)
    assert "floor" not in Samples([1.0], [0.5]).result()
    row = rows({"claim_throughput": {**res, "stack": "postgres"}})[0]
    assert row[HEADERS.index("ratio")] == "0.1" and row[HEADERS.index("vs floor")] == "0.4"


@pytest.mark.parametrize("n", [0, 10, 50, 200])
def test_specs_grow_to_exactly_n_components_with_unique_names(n: int) -> None:
    spec = spec_with_components("proj", "id-1", n)
    assert component_count(spec) == n
    for kind in COMPONENT_LISTS:
        names = [item["name"] for item in spec[kind]]
        assert len(names) == len(set(names)) <= 50


@pytest.mark.parametrize("chunked", [False, True])
async def test_keep_alive_client_reads_both_framings_on_one_connection(chunked: bool) -> None:
    import asyncio

    from bench.gateway import KeepAliveClient

    bodies = [b'{"id": "a"}', b'{"id": "' + b"b" * 5000 + b'"}']
    connections = 0
    seen_paths: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for body in bodies:
            head = await reader.readuntil(b"\r\n\r\n")
            seen_paths.append(head.split(b" ")[1])
            if chunked:
                half = len(body) // 2
                framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]))
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with KeepAliveClient(f"http://127.0.0.1:{port}") as client:
            got = [await client.get(f"/x/{i}", {"Authorization": "Bearer t"}) for i in range(2)]
    finally:
        server.close()
        await server.wait_closed()
    assert [body for _, body in got] == bodies
    assert {status for status, _ in got} == {200 if chunked else 404}
    assert seen_paths == [b"/x/0", b"/x/1"]
    assert connections == 1
