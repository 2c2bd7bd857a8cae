"""Stage 3: strict deserialization of snapshots into SpecConfig, errors by field path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alethia.errors import InvalidArgument
from alethia.mapping import spec_config
from alethia.mapping.spec_config import (
    DnsConfig,
    SpecConfig,
    decode_snapshot,
    decode_snapshot_data,
    parse_snapshot,
)
from tests.mapper.snapshots import PROVIDERS, snapshot


def _violations(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        parse_snapshot(data if isinstance(data, (str, bytes)) else json.dumps(data))
    return {v.field: v.description for v in info.value.violations}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["full", "minimal"])
def test_golden_snapshots_parse_completely(provider: str, kind: str) -> None:
    spec = parse_snapshot(json.dumps(snapshot(provider, kind)))
    assert isinstance(spec, SpecConfig)
    assert spec.provider == provider
    # A round trip gives back exactly the snapshot: nothing dropped, nothing invented.
    assert spec.model_dump(mode="json") == snapshot(provider, kind)


def test_every_type_problem_is_reported_at_once_by_path() -> None:
    data = snapshot("aws")
    data["provider"] = "ibm"
    data["cluster"]["node_min_size"] = "2"
    data["cluster"]["node_max_size"] = 6.5
    data["network"]["provision_network"] = 1
    data["databases"][1]["engine"] = 5
    data["databases"][0]["scaling"]["min_capacity"] = "0.5"
    data["dns"]["enabled"] = "yes"
    data["topics"][0]["subscriptions"][0] = "sqs:payment-events"
    data["caches"] = {"name": "x"}
    del data["region"]
    found = _violations(data)
    assert found == {
        "provider": "must be one of aws, gcp, azure",
        "cluster.node_min_size": "expected an integer",
        "cluster.node_max_size": "expected an integer",
        "network.provision_network": "expected true or false",
        "databases[1].engine": "expected a string",
        "databases[0].scaling.min_capacity": "expected a number",
        "dns.enabled": "expected true or false",
        "topics[0].subscriptions[0]": "expected an object",
        "caches": "expected a list",
        "region": "is required",
    }


def test_unknown_keys_are_errors_at_every_level() -> None:
    data = snapshot("gcp")
    data["extra"] = 1
    data["cluster"]["node_count"] = 3
    data["databases"][0]["password"] = "hunter2"
    found = _violations(data)
    assert found == {
        "extra": "unknown field",
        "cluster.node_count": "unknown field",
        "databases[0].password": "unknown field",
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "snapshot is not valid JSON"),
        ('{"provider": "aws",', "snapshot is not valid JSON"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ("[1, 2]", "snapshot must be a JSON object"),
        (b"\xff\xfe", "snapshot is not valid JSON"),
    ],
)
def test_not_a_json_object(text: str | bytes, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_snapshot(text)
    assert needle in info.value.lines()[0]


def test_messages_carry_no_pydantic_jargon() -> None:
    data = snapshot("azure")
    data["cluster"] = {"cluster_version": [], "instance_types": "x", "node_min_size": -1}
    with pytest.raises(InvalidArgument) as info:
        parse_snapshot(json.dumps(data))
    text = "\n".join(info.value.lines()).lower()
    for jargon in (
        "pydantic",
        "input_value",
        "type=",
        "errors.pydantic.dev",
        "validation error",
        "traceback",
    ):
        assert jargon not in text
    assert "cluster.node_min_size: must be at least 0" in info.value.lines()


def test_cross_field_rules() -> None:
    data = snapshot("aws")
    data["project_name"] = "Payments_App"
    data["network"]["cidr_block"] = "10.20.0.0/33"
    data["cluster"]["node_min_size"] = 5
    data["cluster"]["node_desired_size"] = 9
    data["cluster"]["instance_types"] = []
    data["dns"]["domain_name"] = ""
    data["databases"][1]["name"] = data["databases"][0]["name"]
    data["databases"][0]["scaling"] = {"min_capacity": 4, "max_capacity": 2}
    data["repositories"][0]["url"] = "https://user:pw@git.example.com/apps.git"
    data["secrets"][0]["metadata"] = {"nested": {"a": 1}}
    found = _violations(data)
    assert found == {
        "project_name": "must be a DNS label: lowercase letters, digits and '-', at most 63",
        "network.cidr_block": "must be an IPv4 CIDR block such as 10.0.0.0/16",
        "cluster.instance_types": "must list at least one instance type",
        "cluster.node_desired_size": "must be between cluster.node_min_size and cluster.node_max_size",
        "dns.domain_name": "is required when dns.enabled is true",
        "repositories[0].url": "must not contain credentials",
        "databases[1].name": "duplicate of databases[0].name",
        "databases[0].scaling.min_capacity": "must not exceed scaling.max_capacity",
        "secrets[0].metadata.nested": "must be a string, number or boolean",
    }


def test_existing_network_needs_its_id() -> None:
    data = snapshot("gcp", "minimal")
    data["network"]["network_id"] = ""
    assert _violations(data) == {"network.network_id": "is required when network.provision_network is false"}


def test_optional_components_may_be_absent_or_null() -> None:
    data = snapshot("aws", "minimal")
    for key in ("dns", "repositories", "databases", "secrets", "git_access_token"):
        del data[key]
    assert parse_snapshot(json.dumps(data)).databases == []
    data["caches"] = None
    assert parse_snapshot(json.dumps(data)).caches == []
    data["caches"] = {}
    assert _violations(data) == {"caches": "expected a list"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_null_optional_values_read_as_absent(provider: str) -> None:
    """A Console that builds snapshots from rows writes absent optional values as null."""
    data = snapshot(provider, "minimal")
    expected = parse_snapshot(json.dumps(data))
    nulled = dict(data)
    for key in ("dns", "repositories", "databases", "caches", "terraform_version", "zone_id"):
        nulled.pop(key, None)
        nulled[key] = None
    nulled["network"] = {**data["network"], "provider_config": None, "cidr_block": None}
    nulled["cluster"] = {**data["cluster"], "cluster_admins": None, "provider_config": None}
    by_text = parse_snapshot(json.dumps(nulled))
    by_object = parse_snapshot(nulled)
    assert by_text == by_object
    assert by_text.dns == DnsConfig()
    assert by_text.databases == [] and by_text.terraform_version == "" and by_text.zone_id == ""
    assert by_text.network.provider_config == {} and by_text.cluster.cluster_admins == []
    assert by_text.network == expected.network.model_copy(update={"provider_config": {}, "cidr_block": ""})


def test_null_in_a_list_item_reads_as_absent_but_wrong_types_are_refused() -> None:
    data = snapshot("aws")
    data["databases"][0]["scaling"] = None
    data["databases"][0]["provider_config"] = None
    spec = parse_snapshot(json.dumps(data))
    assert spec.databases[0].scaling.min_capacity == 0
    assert spec.databases[0].provider_config == {}
    data["project_name"] = None  # required: null is not a value
    data["network"] = None
    data["databases"][1]["storage_gb"] = "20"
    assert _violations(data) == {
        "project_name": "expected a string",
        "network": "expected an object",
        "databases[1].storage_gb": "expected an integer",
    }


def test_spec_model_is_generated_from_the_declaration() -> None:
    """alethia/mapping/spec_model.py is the output of ``make gen`` for the current proto."""
    from pathlib import Path

    from alethia import spec_schema
    from alethia.mapping import spec_model

    assert Path(spec_model.__file__).read_text(encoding="utf-8") == spec_schema.spec_config_source(), (
        "run `make gen`"
    )


def _both(snapshot_input: Any) -> tuple[Any, Any]:
    """What decode_snapshot_data and decode_snapshot(...).model_dump() make of one input."""

    def run(decode: Any) -> Any:
        try:
            value = decode(snapshot_input)
        except InvalidArgument as exc:
            return ("refused", [(v.field, v.description) for v in exc.violations])
        # repr: key order too (the rules walk it), and a NaN in free-form values compares.
        return ("accepted", repr(value))

    return run(decode_snapshot_data), run(lambda s: decode_snapshot(s).model_dump())


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["full", "minimal"])
def test_plain_data_decoding_is_the_models_dump(provider: str, kind: str) -> None:
    text = json.dumps(snapshot(provider, kind))
    fast, typed = _both(text)
    assert fast[0] == "accepted" and fast == typed
    assert _both(text.encode()) == _both(snapshot(provider, kind)) == (typed, typed)
    # And by the typed dicts themselves, not through the models' fallback.
    assert spec_config._SPEC_DATA.validate_json(text) == decode_snapshot(text).model_dump()


# (path, value): each put into the aws full snapshot; the typed dicts must accept exactly
# what the models accept, default what they default and refuse what they refuse.
_CHANGES: list[tuple[tuple[Any, ...], Any]] = [
    (("cluster", "node_min_size"), "2"),
    (("cluster", "node_min_size"), 2.0),
    (("cluster", "node_min_size"), True),
    (("cluster", "node_max_size"), 1001),
    (("cluster", "node_min_size"), -1),
    (("databases", 0, "scaling", "min_capacity"), 1),  # an int for a float field
    (("databases", 0, "scaling", "min_capacity"), float("nan")),
    (("databases", 0, "scaling", "max_capacity"), float("inf")),
    (("databases", 0, "scaling", "max_capacity"), 2000.5),
    (("databases", 0, "scaling"), None),
    (("databases", 0, "extra"), 1),
    (("network", "extra"), 1),
    (("extra",), 1),
    (("dns",), None),
    (("dns", "enabled"), 1),
    (("network", "provision_network"), "true"),
    (("provider",), "ibm"),
    (("region",), None),
    (("cluster", "instance_types"), "m6i.large"),
    (("cluster", "instance_types", 0), 5),
    (("cluster", "provider_config"), []),
    (("cluster", "provider_config", "disk_size"), float("nan")),
    (("secrets", 0, "metadata"), None),
    (("topics", 0, "subscriptions", 0), "sqs"),
    (("topics", 0, "subscriptions", 0, "endpoint"), None),
    (("caches",), {"name": "x"}),
    (("repositories", 0, "branch"), None),
    (("git_access_token",), "secret"),
    (("spec_id",), 7),
]


@pytest.mark.parametrize(("path", "value"), _CHANGES)
def test_plain_data_decoding_accepts_and_refuses_as_the_models(path: tuple[Any, ...], value: Any) -> None:
    data = snapshot("aws")
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    text = json.dumps(data)  # NaN and Infinity written as the JSON extensions a parser may accept
    assert _both(text)[0] == _both(text)[1]
    assert _both(data)[0] == _both(data)[1]


def test_components_absent_from_the_snapshot_are_filled_with_their_defaults() -> None:
    data = snapshot("aws", "minimal")
    data.pop("dns", None)
    for db in data.get("databases", []):
        db.pop("scaling", None)
    assert _both(json.dumps(data))[0] == _both(json.dumps(data))[1]
    first = decode_snapshot_data(json.dumps(data))
    assert first["dns"] == DnsConfig().model_dump()
    first["dns"]["provider_config"]["x"] = 1  # resolve fills data in place: a fresh object each time
    assert decode_snapshot_data(json.dumps(data))["dns"]["provider_config"] == {}
