"""Snapshot assembly, hashing and diffing are pure: Spec proto in, dict/hash/paths out."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from alethia import field_paths
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2
from services.snapshot.snapshot import (
    VOLATILE_KEYS,
    _plain,
    build_snapshot,
    canonical_json,
    changed_fields,
    changed_paths,
    config_hash,
    freeze,
    snapshot_text,
    snapshot_workspace,
)
from tests.fixtures.specs import PROVIDERS, full_spec_dict, minimal_spec_dict

SNAPSHOT_KEYS = {
    "spec_id", "zone_id", "project_name", "environment", "region", "cloud_identity_id",
    "cloud_account_id", "terraform_version", "provider", "network", "cluster", "dns",
    "repositories", "databases", "caches", "queues", "topics", "nosql_tables",
    "storage_buckets", "secrets", "git_access_token",
}  # fmt: skip
LISTS = ("databases", "caches", "queues", "topics", "nosql_tables", "storage_buckets", "secrets")


def stored(provider: str = "aws", **overrides: Any) -> dict[str, Any]:
    """A Spec dict as GetSpec returns it: with id, revision, provider and account filled in."""
    data = full_spec_dict(provider, **overrides)
    data.update(
        id="0b9f3c1e-5d7a-4c2b-9e8f-1a2b3c4d5e6f",
        revision=3,
        cloud_identity_id="ci-1",
        provider=provider,
        cloud_account_id="123456789012",
    )
    return data


def snap(data: dict[str, Any]) -> dict[str, Any]:
    return build_snapshot(spec_from_dict(data))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_snapshot_has_the_contract_shape(provider: str) -> None:
    s = snap(stored(provider))
    assert set(s) == SNAPSHOT_KEYS
    assert s["git_access_token"] == ""
    assert s["provider"] == provider
    assert s["spec_id"] == "0b9f3c1e-5d7a-4c2b-9e8f-1a2b3c4d5e6f"
    for key in LISTS:
        names = [item["name"] for item in s[key]]
        assert names == sorted(names), key
    assert set(s["network"]) == {"provision_network", "cidr_block", "network_id", "provider_config"}
    # Every declared field of an item is in the snapshot, set or not (defaults filled in).
    assert set(s["databases"][0]) == set(specs_pb2.Database.DESCRIPTOR.fields_by_name)
    assert s["databases"][0]["backup_retention_days"] in range(36)
    # Integers stay integers through protobuf's Struct (doubles) and scaling doubles.
    assert isinstance(s["network"]["provider_config"].get("availability_zones", 3), int)
    assert snapshot_workspace(s) == f"zone-acme/{s['project_name']}-{s['environment']}-{s['region']}"
    # The stored text is canonical JSON of the same object.
    assert json.loads(snapshot_text(s)) == json.loads(json.dumps(s))


def test_minimal_spec_snapshot_has_empty_lists_and_sections() -> None:
    data = minimal_spec_dict("gcp", id="s1", cloud_account_id="p")
    data["provider"] = "gcp"
    s = snap(data)
    assert set(s) == SNAPSHOT_KEYS
    assert all(s[key] == [] for key in (*LISTS, "repositories"))
    assert s["dns"] == {"enabled": False, "zone_id": "", "domain_name": "", "provider_config": {}}


def test_identical_resave_keeps_the_hash() -> None:
    first = stored()
    resaved = stored()
    resaved.update(revision=4, update_time="2026-11-28T10:00:00Z", create_time="2026-11-01T10:00:00Z")
    assert config_hash(snap(first)) == config_hash(snap(resaved))
    assert snapshot_text(snap(first)) == snapshot_text(snap(resaved))


def _reorder_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder_keys(v) for v in value]
    return value


def test_key_order_and_component_list_order_do_not_matter() -> None:
    base = stored()
    shuffled = _reorder_keys(copy.deepcopy(base))
    for key in (*LISTS, "repositories"):
        shuffled[key] = list(reversed(shuffled[key]))
    for topic in shuffled["topics"]:
        topic["subscriptions"] = list(reversed(topic["subscriptions"]))
    shuffled["cluster"]["cluster_admins"] = list(reversed(shuffled["cluster"]["cluster_admins"] + ["arn:z"]))
    base["cluster"]["cluster_admins"] = [*base["cluster"]["cluster_admins"], "arn:z"]
    assert snap(base) == snap(shuffled)
    assert config_hash(snap(base)) == config_hash(snap(shuffled))


def test_instance_type_order_is_meaningful() -> None:
    base = stored()
    swapped = stored()
    swapped["cluster"]["instance_types"] = list(reversed(swapped["cluster"]["instance_types"]))
    assert config_hash(snap(base)) != config_hash(snap(swapped))
    assert changed_paths(snap(base), snap(swapped)) == ["cluster.instance_types"]


def test_git_token_and_volatile_keys_are_not_hashed() -> None:
    s = snap(stored())
    with_token = dict(s, git_access_token="ghp_secret", spec_revision=9, job_id="j")
    assert config_hash(with_token) == config_hash(s)
    assert changed_paths(s, with_token) == []


def _leaves(value: Any, path: list[Any]) -> Iterator[list[Any]]:
    """Paths (as key/index lists) of every scalar and every list of scalars in a Spec dict."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, [*path, k])
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            yield from _leaves(v, [*path, i])
    else:
        yield path


def _mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.25
    if isinstance(value, str):
        return value + "-x"
    if isinstance(value, list):
        return [*value, "extra-item"]
    raise AssertionError(f"unexpected leaf {value!r}")


def _expected_path(data: dict[str, Any], path: list[Any]) -> str:
    """The path in the snapshot (lists ordered by name, repositories by url/branch/path)."""
    snapshot = snap(data)
    out: list[Any] = []
    node: Any = data
    snap_node: Any = snapshot
    for part in path:
        if isinstance(part, int):
            item = node[part]
            key = "url" if out and out[-1] == "repositories" else "name"
            part = next(i for i, s in enumerate(snap_node) if s[key] == item[key])
            node, snap_node = item, snap_node[part]
        else:
            node = node[part]
            snap_node = snap_node["spec_id" if part == "id" and snap_node is snapshot else part]
        out.append(part)
    return field_paths.from_parts(out)


FIELD_PATHS = [p for p in _leaves(stored(), []) if p[0] not in ("revision",)]


@pytest.mark.parametrize("path", FIELD_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_each_field_change_alters_the_hash_and_is_named(path: list[Any]) -> None:
    base = stored()
    changed = copy.deepcopy(base)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = _mutate(node[path[-1]])
    before, after = snap(base), snap(changed)
    assert config_hash(before) != config_hash(after)
    paths = changed_paths(before, after)
    if path[-1] == "name" or path[0] == "repositories":
        # A renamed item (a repository is known by url, branch and path): one item gone,
        # one added, each at its position on its side.
        changes = changed_fields(before, after)
        assert sorted(c.description for c in changes) == ["added since the plan", "removed since the plan"]
        assert all(field_paths.parse(c.field)[-1] in range(10) for c in changes)
    elif path == ["id"]:
        assert paths == ["spec_id"]
    else:
        assert paths == [_expected_path(base, path)]


def test_changed_paths_names_items_and_never_values() -> None:
    old = snap(stored())
    data = stored()
    data["network"]["cidr_block"] = "10.99.0.0/16"
    data["databases"][0]["instance_class"] = "db.r6g.xlarge"
    data["caches"] = []
    data["secrets"][0]["metadata"]["description"] = "hunter2-password-value"
    new = snap(data)
    changes = changed_fields(old, new)
    assert [(c.field, c.description) for c in changes] == [
        ("caches[0]", "removed since the plan"),
        ("databases[0].instance_class", "changed since the plan"),
        ("network.cidr_block", "changed since the plan"),
        (f"secrets[{[s['name'] for s in new['secrets']].index('stripe-api-key')}].metadata.description",
         "changed since the plan"),
    ]  # fmt: skip
    assert not any("hunter2" in str(c) or "10.99" in str(c) or "r6g" in str(c) for c in changes)


def test_changed_paths_index_items_by_their_current_position() -> None:
    """Adding an item before another moves its index: the path follows the current Spec."""
    old = snap(stored())
    data = stored()
    first = data["databases"][0]
    data["databases"].append({**first, "name": "aaa-first", "instance_class": "db.t4g.small"})
    data["databases"][0]["storage_gb"] += 10
    new = snap(data)
    names = [d["name"] for d in new["databases"]]
    at = names.index(first["name"])
    assert at == 1
    assert [(c.field, c.description) for c in changed_fields(old, new)] == [
        ("databases[0]", "added since the plan"),
        ("databases[1].storage_gb", "changed since the plan"),
    ]
    for c in changed_fields(old, new):  # every path resolves in the current snapshot
        node: Any = new
        for part in field_paths.parse(c.field):
            node = node[part]


# --- canonical JSON: the fast path writes exactly RFC 8785's bytes ---------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) - 5, max_value=2**53 + 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 1e-4, 9.999e-5, 1e16, 1e16 - 2, 123456789012345.6, -0.0, 2.0, 1e21, 5e-324])
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        return type(exc)


@given(_json_values)
@settings(max_examples=400, deadline=None)
def test_canonical_json_is_the_reference_rfc8785(value: Any) -> None:
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:  # out-of-range integers, lone surrogates: refused the same way
        with pytest.raises(expected):
            canonical_json(value)


@given(st.dictionaries(st.sampled_from(["a", "revision", "git_access_token", "é", "\U0001f600", "\ue000", "z"]),
                       _json_values, max_size=7))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_freeze_is_text_and_hash_in_one_pass(snapshot: dict[str, Any]) -> None:
    if not isinstance(_reference(snapshot), bytes):
        return
    assert freeze(snapshot) == (
        rfc8785.dumps(snapshot).decode(),
        hashlib.sha256(
            rfc8785.dumps({k: v for k, v in snapshot.items() if k not in VOLATILE_KEYS})
        ).hexdigest(),
    )
    assert freeze(snapshot) == (snapshot_text(snapshot), config_hash(snapshot))


def test_full_snapshot_takes_the_fast_path_and_matches_the_reference() -> None:
    snap = build_snapshot(spec_from_dict({**full_spec_dict("aws"), "id": "s-1", "provider": "aws"}))
    assert _plain(snap)  # the example's floats (0.5) and all: no fallback for a real Spec
    assert canonical_json(snap) == rfc8785.dumps(snap)


# --- Struct -> dict: the snapshot's direct walk reads what json_format reads -----------------


def _json_format_reading(msg: Any) -> Any:
    """The reference: json_format's dict, integral doubles back as ints (what it replaced)."""
    from google.protobuf import json_format

    def ints(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, dict):
            return {k: ints(v) for k, v in value.items()}
        if isinstance(value, list):
            return [ints(v) for v in value]
        return value

    return ints(json_format.MessageToDict(msg))


_struct_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=5)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2.0**53, -(2.0**53), 2.0**53 - 1, 0.5, -0.0]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=15,
)


@given(st.dictionaries(st.text(max_size=4), _struct_values, max_size=5))
@settings(max_examples=300, deadline=None)
def test_struct_to_dict_reads_what_json_format_reads(value: dict[str, Any]) -> None:
    from alethia.rpc.structs import dict_to_struct, struct_to_dict

    msg = dict_to_struct(value)
    got, expected = struct_to_dict(msg), _json_format_reading(msg)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # same types (1 vs 1.0) and key order


def test_a_deploy_of_a_plan_reuses_the_plans_text() -> None:
    from services.snapshot.snapshot import job_snapshot_text, remember_job_text

    snap = {"spec_id": "s-1", "git_access_token": ""}
    remember_job_text("plan-1", "hash-1", "the plan's text")
    # The deploy carries the plan's frozen snapshot (same hash): the plan's text is its text.
    assert job_snapshot_text("deploy-1", "hash-1", snap, plan_job_id="plan-1") == "the plan's text"
    assert job_snapshot_text("deploy-1", "hash-1", snap) == "the plan's text"  # now its own entry
    # Another hash is another snapshot: written from the snapshot itself.
    assert job_snapshot_text("deploy-2", "hash-2", snap, plan_job_id="plan-1") == snapshot_text(snap)
