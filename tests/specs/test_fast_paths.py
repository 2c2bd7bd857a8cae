"""The spec service's fast paths build exactly what the general conversions build.

- ``server.spec_message`` (the message constructor on a stored Spec dict) against the
  strict conversion of a Spec file (``spec_from_dict``), for every example and a large Spec;
- ``validation._walk_strings``'s clean-input shortcut against the full walk, on drawn values;
- ``rules.would_be_snapshot`` from the message as received against the dict converted back;
- ``store.name_violations`` (one statement's rows, checked in Python) on made-up holders.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alethia import spec_schema
from alethia.specfile import spec_from_dict, spec_to_dict
from bench.specs import spec_with_components
from services.specs import store, validation
from services.specs.rules import would_be_snapshot
from services.specs.server import spec_message
from tests.fixtures.specs import ACCOUNT_IDS, PROVIDERS, full_spec_dict, minimal_spec_dict

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _stored(spec: dict[str, Any]) -> dict[str, Any]:
    """The Spec dict CreateSpec answers with for ``spec`` (its rows, read back)."""
    spec = spec_schema.apply_defaults(spec)
    spec_id = str(uuid.uuid4())
    values = store.spec_values(spec_id, spec, NOW, "aws:123456789012")
    return store.written_spec(values, "aws", "123456789012", store.component_rows(spec_id, spec))


def _specs() -> list[dict[str, Any]]:
    ident = str(uuid.uuid4())
    out = [full_spec_dict(p, cloud_identity_id=ident) for p in PROVIDERS]
    out += [minimal_spec_dict(p, cloud_identity_id=ident) for p in PROVIDERS]
    out.append(spec_with_components("big", ident, 50))
    return out


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: f"{s['project_name']}-{len(str(s))}")
def test_spec_message_is_the_strict_conversion(spec: dict[str, Any]) -> None:
    data = _stored(spec)
    strict = spec_from_dict({k: v for k, v in data.items() if k not in ("create_time", "update_time")})
    strict.create_time.FromDatetime(NOW)
    strict.update_time.FromDatetime(NOW)
    fast = spec_message(data)
    assert fast == strict
    assert fast.SerializeToString(deterministic=True) == strict.SerializeToString(deterministic=True)
    # Presence too (the snapshot's defaults depend on it): every Struct and nested message alike.
    for comp in spec_schema.COMPONENTS:
        fast_items = getattr(fast, comp.field)
        strict_items = getattr(strict, comp.field)
        pairs = zip(fast_items, strict_items, strict=True) if comp.repeated else [(fast_items, strict_items)]
        for a, b in pairs:
            assert [f.name for f, _ in a.ListFields()] == [f.name for f, _ in b.ListFields()]


def test_spec_message_of_a_value_the_constructor_refuses_is_the_strict_conversions_answer() -> None:
    data = _stored(full_spec_dict("aws", cloud_identity_id=str(uuid.uuid4())))
    data["databases"][0]["storage_gb"] = 20.0  # an integral float: the constructor refuses it
    strict = spec_from_dict({k: v for k, v in data.items() if k not in ("create_time", "update_time")})
    assert spec_message(data).databases[0] == strict.databases[0]


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: f"{s['project_name']}-{len(str(s))}")
def test_the_rules_snapshot_of_the_message_is_the_dicts(spec: dict[str, Any]) -> None:
    message = spec_from_dict(spec)
    message.id = "set by a client"  # output only: neither snapshot has it
    data = spec_schema.apply_defaults(spec_to_dict(message, include_output_only=False))
    for provider in PROVIDERS:
        snapshot = would_be_snapshot(data, provider, ACCOUNT_IDS[provider], message)
        assert snapshot is not None
        assert snapshot == would_be_snapshot(data, provider, ACCOUNT_IDS[provider])


@pytest.mark.parametrize("where", ["double", "struct", "struct-in-list"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_gives_no_snapshot_either_way(where: str, value: float) -> None:
    message = spec_from_dict(full_spec_dict("aws", cloud_identity_id=str(uuid.uuid4())))
    if where == "double":
        message.databases[0].scaling.max_capacity = value
    elif where == "struct":
        message.cluster.provider_config["x"] = value
    else:
        message.databases[0].provider_config["x"] = [1, {"y": value}]
    data = spec_schema.apply_defaults(spec_to_dict(message, include_output_only=False))
    assert would_be_snapshot(data, "aws", ACCOUNT_IDS["aws"]) is None
    assert would_be_snapshot(data, "aws", ACCOUNT_IDS["aws"], message) is None


_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from("ab/-\u0000\u001f\u007f\u0085\u009f\u00a0\u202e\u2066é"), max_size=6),
    st.just("x" * (validation.MAX_ANY_STRING + 1)),
    st.just("y" * validation.MAX_ANY_STRING),
)
_VALUES = st.recursive(
    st.one_of(_TEXT, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(_TEXT | st.integers(), inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_the_strings_shortcut_reports_what_the_full_walk_reports(value: Any) -> None:
    fast, full = validation._Violations(), validation._Violations()
    validation._walk_strings(value, "spec", fast)
    validation._report_strings(value, "spec", full)
    assert fast.items == full.items
    assert validation._strings_clean(value) == (full.items == [])


def _claims(*paths: str) -> store.NameClaims:
    spec = minimal_spec_dict("aws", cloud_identity_id="x", project_name="shop")
    spec["repositories"] = [
        {"url": "https://git.example.com/o/apps.git", "branch": "main", "path": p} for p in paths
    ]
    return store.name_claims("me", spec, "aws:123456789012")


def test_name_violations_name_every_holder_once() -> None:
    claims = _claims("clusters/shop", "clusters/shop/extra")
    key = claims.entries[0][1]
    rows = [
        (0, "other", "zone-acme", "shop", "prod", "us-east-1", claims.workspace, "gcp:p", "shop-prod"),
        (0, "third", "zone-b", "shop", "prod", "eu-west-1", "zone-b/x", claims.account, claims.prefix),
        (1, "owner", None, None, None, None, None, None, None, 0, key, "clusters"),
        (1, "owner", None, None, None, None, None, None, None, 1, key, "clusters/shopping"),  # LIKE's extra
    ]
    violations = store.name_violations(claims, rows)
    assert [v.field for v in violations] == [
        "project_name",
        "project_name",
        "repositories[0].path",
        "repositories[1].path",
        "repositories[1].path",
    ]
    assert "held by Spec other" in violations[0].description
    assert "by Spec third" in violations[1].description
    assert "owned by Spec owner" in violations[2].description
    assert "overlaps repositories[0].path" in violations[3].description
    assert "owned by Spec owner" in violations[4].description
    assert store.name_violations(_claims("clusters/shop"), rows[3:]) == []


async def test_a_create_failing_inside_its_transaction_leaves_its_connection_clean(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CreateSpec runs its own BEGIN/COMMIT on the driver connection (SQLAlchemy's pool resets
    only the transactions it began): failing, or cancelled while it waits for the GitOps branch
    lock, it writes nothing, holds no lock and its pooled connection goes back outside any
    transaction, ready for the next call."""
    import asyncio

    import asyncpg

    from alethia.database import create_engine, normalize_url
    from services.specs.app import migrate
    from services.specs.catalog import SpecCatalog

    await migrate(fresh_postgres_url)
    engine = create_engine(fresh_postgres_url, pool_size=1, max_overflow=0)  # one connection, reused
    catalog = SpecCatalog(engine, None, frozenset({"git.example.com"}))  # type: ignore[arg-type]
    observer = await asyncpg.connect(normalize_url(fresh_postgres_url).replace("+asyncpg", ""))

    async def leftovers() -> tuple[int, int, int]:
        return (
            await observer.fetchval("SELECT count(*) FROM specs"),
            await observer.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            ),
        )

    try:
        ident = await catalog.create_identity(
            {"name": "c", "provider": "aws", "account_id": "123456789012", "credentials_ref": "env:X"}
        )
        spec = full_spec_dict("aws", cloud_identity_id=ident["id"])
        plain = store.name_violations

        def broken(*args: Any) -> Any:
            raise RuntimeError("a bug between two statements")

        monkeypatch.setattr(store, "name_violations", broken)
        with pytest.raises(RuntimeError):
            await catalog.create_spec(spec)
        monkeypatch.setattr(store, "name_violations", plain)
        assert await leftovers() == (0, 0, 0)

        claims = store.name_claims("x", spec_schema.apply_defaults(spec), "aws:123456789012")
        [key] = claims.lock_keys()
        await observer.execute("SELECT pg_advisory_lock($1)", key)  # the branch is busy
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(catalog.create_spec(spec), 0.5)
        await observer.execute("SELECT pg_advisory_unlock($1)", key)
        # The cancelled call's connection was closed; its server process may still take the
        # lock it was waiting for before it notices: it goes within moments.
        for _ in range(100):
            if await leftovers() == (0, 0, 0):
                break
            await asyncio.sleep(0.05)
        assert await leftovers() == (0, 0, 0)

        created = await catalog.create_spec(spec)  # the same pooled connection
        assert (await catalog.get_spec(created["id"]))["revision"] == 1
        assert await leftovers() == (1, 0, 0)
    finally:
        await observer.close()
        await engine.dispose()
