"""The one field-path format: building and parsing agree, and malformed text is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alethia import field_paths

_name = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
_parts = st.lists(st.one_of(_name, st.integers(0, 999)), min_size=1, max_size=6).filter(
    lambda p: isinstance(p[0], str)
)


@given(_parts)
def test_parse_inverts_from_parts(parts: list[str | int]) -> None:
    assert field_paths.parse(field_paths.from_parts(parts)) == parts


def test_examples() -> None:
    assert field_paths.from_parts(["topics", 0, "subscriptions", 2, "endpoint"]) == (
        "topics[0].subscriptions[2].endpoint"
    )
    assert field_paths.join("", "zone_id") == "zone_id"
    assert field_paths.item("databases", 3) == "databases[3]"
    assert field_paths.parse("") == []


@pytest.mark.parametrize("bad", ["a..b", "a.", ".a", "a[x]", "a[1]b", "a[-1]", "a.[1]"])
def test_malformed_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        field_paths.parse(bad)
