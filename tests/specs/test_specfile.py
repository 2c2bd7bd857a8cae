"""Spec files: dict/YAML/JSON <-> protobuf, strict types, unknown keys, unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from alethia.errors import InvalidArgument
from alethia.specfile import (
    OUTPUT_ONLY_FIELDS,
    cloud_identity_from_dict,
    cloud_identity_to_dict,
    load_spec_file,
    spec_from_dict,
    spec_to_dict,
)
from alethia.specs.v1 import specs_pb2
from tests.fixtures.specs import EXAMPLES, PROVIDERS, full_spec_dict, identity_dict, minimal_spec_dict


def _fields(exc: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in exc.value.violations]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_examples_load_and_round_trip(provider: str) -> None:
    spec = load_spec_file(EXAMPLES / f"{provider}.yaml")
    raw = yaml.safe_load((EXAMPLES / f"{provider}.yaml").read_text())
    as_dict = spec_to_dict(spec, include_output_only=False)
    # Every value of the file survives, field for field (floats compare equal to the YAML ints).
    for key, value in raw.items():
        if key in ("network", "cluster", "dns"):
            for k, v in value.items():
                assert as_dict[key][k] == v, (key, k)
        elif isinstance(value, list):
            assert len(as_dict[key]) == len(value)
            for got, want in zip(as_dict[key], value, strict=True):
                for k, v in want.items():
                    assert got[k] == v, (key, k)
        else:
            assert as_dict[key] == value, key
    assert spec_from_dict(as_dict) == spec
    assert spec.dns.provider_config["waf_enabled"] is True
    assert len(spec.databases) == 2 and spec.cluster.instance_types


def test_every_example_fills_every_component() -> None:
    for provider in PROVIDERS:
        d = full_spec_dict(provider)
        for key in ("network", "cluster", "dns"):
            assert d[key], (provider, key)
        for key in (
            "repositories",
            "databases",
            "caches",
            "queues",
            "topics",
            "nosql_tables",
            "storage_buckets",
            "secrets",
        ):
            assert d[key], (provider, key)
        assert len(d["databases"]) == 2
        assert any(t["subscriptions"] for t in d["topics"])
        assert d["repositories"][0]["url"].startswith("https://")


def test_output_only_fields_are_omitted_unless_asked() -> None:
    spec = spec_from_dict(full_spec_dict("gcp"))
    spec.id, spec.revision, spec.provider, spec.cloud_account_id = "x", 3, "gcp", "acme"
    spec.create_time.FromJsonString("2026-01-02T03:04:05Z")
    full = spec_to_dict(spec)
    assert full["revision"] == 3 and full["create_time"] == "2026-01-02T03:04:05Z"
    assert "update_time" not in full  # unset timestamps are left out
    assert not OUTPUT_ONLY_FIELDS & set(spec_to_dict(spec, include_output_only=False))
    assert spec_from_dict(full) == spec  # a dumped Spec loads again


def test_minimal_spec_has_no_optional_components() -> None:
    d = spec_to_dict(spec_from_dict(minimal_spec_dict("azure")))
    assert "dns" not in d
    assert d["network"]["network_id"] and not d["network"]["provision_network"]
    for key in (
        "repositories",
        "databases",
        "caches",
        "queues",
        "topics",
        "nosql_tables",
        "storage_buckets",
        "secrets",
    ):
        assert d[key] == []


def test_integers_in_configs_stay_integers() -> None:
    d = spec_to_dict(spec_from_dict(full_spec_dict("aws")))
    assert d["queues"][0]["config"]["visibility_timeout_seconds"] == 60
    assert isinstance(d["queues"][0]["config"]["visibility_timeout_seconds"], int)
    assert d["databases"][0]["scaling"] == {"min_capacity": 0.5, "max_capacity": 8.0}


def test_wrong_types_name_their_paths_all_at_once() -> None:
    data = full_spec_dict("aws")
    data["cluster"]["node_min_size"] = "two"
    data["cluster"]["cluster_version"] = 1.3  # unquoted YAML
    data["databases"][1]["storage_gb"] = 12.5
    data["dns"]["enabled"] = "yes"
    data["repositories"] = {"url": "x"}
    data["secrets"][0]["metadata"] = ["not", "a", "map"]
    with pytest.raises(InvalidArgument) as info:
        spec_from_dict(data)
    assert sorted(_fields(info)) == [
        "cluster.cluster_version",
        "cluster.node_min_size",
        "databases[1].storage_gb",
        "dns.enabled",
        "repositories",
        "secrets[0].metadata",
    ]
    assert "cluster.node_min_size: expected an integer" in str(info.value)
    assert "quote" in str(info.value)


def test_unknown_keys_are_errors() -> None:
    data = full_spec_dict("aws", git_access_token="ghp_x")
    data["cluster"]["node_count"] = 3
    data["databases"][0]["password"] = "x"
    with pytest.raises(InvalidArgument) as info:
        spec_from_dict(data)
    assert sorted(_fields(info)) == ["cluster.node_count", "databases[0].password", "git_access_token"]
    assert all(v.description == "unknown field" for v in info.value.violations)


def test_config_values_must_be_plain_json() -> None:
    import datetime

    data = full_spec_dict("aws")
    data["network"]["provider_config"] = {
        "when": datetime.date(2026, 1, 1),
        "big": 2**60,
        "nan": float("inf"),
    }
    with pytest.raises(InvalidArgument) as info:
        spec_from_dict(data)
    assert sorted(_fields(info)) == [
        "network.provider_config.big",
        "network.provider_config.nan",
        "network.provider_config.when",
    ]


def test_int32_range_and_null_values() -> None:
    with pytest.raises(InvalidArgument) as info:
        spec_from_dict({"cluster": {"node_max_size": 2**31}})
    assert _fields(info) == ["cluster.node_max_size"]
    # `key:` with no value in YAML means "not given".
    assert spec_from_dict({"dns": None, "project_name": None}) == specs_pb2.Spec()
    with pytest.raises(InvalidArgument):
        spec_from_dict(["not", "a", "mapping"])


def test_load_json_and_yaml_files(tmp_path: Path) -> None:
    data = full_spec_dict("azure")
    (tmp_path / "s.json").write_text(json.dumps(data))
    (tmp_path / "s.yml").write_text(yaml.safe_dump(data))
    assert load_spec_file(tmp_path / "s.json") == load_spec_file(tmp_path / "s.yml") == spec_from_dict(data)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("broken.yaml", "project_name: [unclosed\n"),
        ("broken.json", '{"project_name": '),
        ("text.yaml", "just some words\n"),
        ("dupe.yaml", "project_name: a\nproject_name: b\n"),
        ("binary.yaml", None),
        ("missing.yaml", "MISSING"),
    ],
)
def test_unusable_files_are_invalid_argument_naming_the_file(
    tmp_path: Path, name: str, content: str | None
) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"\xff\xfe\x00\x01binary")
    elif content != "MISSING":
        path.write_text(content)
    with pytest.raises(InvalidArgument) as info:
        load_spec_file(path)
    assert _fields(info) == [str(path)]


def test_file_errors_keep_field_paths(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("project_name: 7\nnetwork: {provision: true}\n")
    with pytest.raises(InvalidArgument) as info:
        load_spec_file(path)
    assert _fields(info) == ["project_name", "network.provision"]
    assert str(path) in info.value.message


def test_cloud_identity_round_trip() -> None:
    ident = cloud_identity_from_dict(identity_dict("gcp"))
    assert ident.provider == "gcp"
    assert cloud_identity_to_dict(ident) == {**identity_dict("gcp"), "id": ""}
    with pytest.raises(InvalidArgument) as info:
        cloud_identity_from_dict({"provider": "aws", "secret_key": "x"})
    assert _fields(info) == ["secret_key"]


def test_spec_field_reference_is_generated_from_the_declaration() -> None:
    """docs/spec.md is the output of ``make docs`` for the current proto."""
    from pathlib import Path

    from alethia import spec_schema

    doc = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
    assert doc.read_text(encoding="utf-8") == spec_schema.field_reference(), "run `make docs`"


def test_the_specs_row_has_the_declared_top_level_columns() -> None:
    """The ``specs`` row's Spec fields are the declaration's, not written out in the model."""
    from alethia import spec_schema
    from services.specs.models import SpecRow

    table = SpecRow.__table__
    for col in spec_schema.SPEC_COLUMNS:
        assert col.name in table.c, col.name
        assert getattr(table.c[col.name].type, "length", None) == (col.max_length or None), col.name
        assert not table.c[col.name].nullable, col.name
        assert col.name not in vars(SpecRow).get("__annotations__", {}), f"{col.name} declared by hand"
