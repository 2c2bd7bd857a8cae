"""The canonical tfvars encoding: ``core.dumps`` writes exactly the standard library's bytes.

``dumps`` lets orjson write the text when nothing in it can differ and falls back to the
standard encoder otherwise; these tests hold the two to the same bytes (and the same refusal
of NaN) on arbitrary JSON data and on the values where orjson's own output does differ.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alethia.mapping import core
from alethia.mapping.core import dumps
from tests.mapper.snapshots import KINDS, PROVIDERS, tfvars_path

STANDARD = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _standard(value: Any) -> str:
    return STANDARD.encode(value) + "\n"


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: both must refuse them
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x7F))
)
JSON_DATA = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON_DATA, max_size=6))
def test_dumps_writes_the_standard_encoders_bytes(tfvars: dict[str, Any]) -> None:
    try:
        expected = _standard(tfvars)
    except ValueError:  # NaN or an infinity: not JSON, refused by both
        with pytest.raises(ValueError):
            dumps(tfvars)
        return
    assert dumps(tfvars) == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_is_written_as_repr_writes_it(x: float) -> None:
    assert dumps({"v": x, "w": [x, -x]}) == _standard({"v": x, "w": [x, -x]})


@pytest.mark.parametrize(
    "value",
    [
        1e-05,  # orjson: 0.00001
        -2.5e-07,  # orjson: -2.5e-7
        9.99e-05,
        5e-324,
        1e-4,
        1e16,  # the first float repr writes with an exponent
        1.2345678901234568e17,
        0.5,
        -0.0,
        2**63,  # past i64, within u64
        2**64,  # past orjson's integers
        -(2**63) - 1,
        "caf\u00e9",  # non-ASCII: escaped by the standard encoder only
        "\x7f",  # DEL: likewise
        '\x00\x1f\n\t"\\/',
        "\ud800",  # a lone surrogate: orjson refuses it
        "1e-5 and kube-proxy",  # looks like a small float inside a string: still the same bytes
        "null",
        None,
        [[[[[[[[[[[]]]]]]]]]]],
    ],
)
def test_values_where_orjson_alone_would_differ(value: Any) -> None:
    tfvars = {"b": value, "a": [value], "c": {"x": value}}
    assert dumps(tfvars) == _standard(tfvars)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_as_before(value: float) -> None:
    with pytest.raises(ValueError):
        dumps({"v": value})


def test_keys_are_sorted_at_every_level_and_non_string_keys_written_as_before() -> None:
    tfvars: dict[Any, Any] = {"b": {"z": 1, "a": 2}, "a": [{"y": True, "x": None}]}
    assert dumps(tfvars) == '{"a":[{"x":null,"y":true}],"b":{"a":2,"z":1}}\n'
    # Not tfvars (keys are variable names), but the one definition still decides.
    assert dumps({2: "a", 1: "b"}) == _standard({2: "a", 1: "b"}) == '{"1":"b","2":"a"}\n'


def test_deep_nesting_beyond_orjsons_limit_is_written_by_the_standard_encoder() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert dumps({"deep": value}) == _standard({"deep": value})


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_fast_path_is_taken_for_the_golden_tfvars(provider: str, kind: str) -> None:
    """Not a speed test: the guard must let ordinary output through, or orjson buys nothing."""
    text = tfvars_path(provider, kind).read_text(encoding="utf-8")
    tfvars = json.loads(text)
    assert core._same_as_standard(core.orjson.dumps(tfvars, option=core._ORJSON_OPTIONS))
    assert dumps(tfvars) == _standard(tfvars) == text


def test_secret_metadata_scalars_are_written_as_json_writes_them() -> None:
    values: dict[str, Any] = {
        "b": True,
        "c": False,
        "d": 0,
        "e": -5,
        "f": 10**30,
        "g": 2.5,
        "h": 1e-7,
        "i": "x",
    }
    expected = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    assert core.metadata_strings(values) == expected
    assert core.metadata_strings({"n": 3.0}) == {"n": "3"}  # integral floats as integers (Struct doubles)
