"""alethia.cloud_limits: the per-cloud rules, and the mapper refusing what CreateSpec refuses."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alethia import cloud_limits
from alethia.errors import InvalidArgument
from alethia.mapping.render import render_tfvars
from tests.mapper.snapshots import PROVIDERS, snapshot


def _fields(provider: str, data: dict[str, Any]) -> dict[str, str]:
    return {v.field: v.description for v in cloud_limits.violations(provider, data)}


def _render_fields(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        render_tfvars(json.dumps(data))
    return {v.field: v.description for v in info.value.violations}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_golden_specs_break_no_cloud_rule(provider: str) -> None:
    for kind in ("full", "minimal"):
        assert cloud_limits.violations(provider, snapshot(provider, kind)) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_versions_outside_the_table_are_refused_on_the_field(provider: str) -> None:
    supported = cloud_limits.supported_kubernetes_versions(provider)
    assert supported == tuple(sorted(supported, key=lambda v: tuple(int(p) for p in v.split("."))))
    data = snapshot(provider)
    data["cluster"]["cluster_version"] = "1.29"
    message = _fields(provider, data)["cluster.cluster_version"]
    assert message == f"Kubernetes 1.29 is not supported on {provider}; use one of {', '.join(supported)}"
    assert "cluster.cluster_version" in _render_fields(data)  # the mapper guards too
    data["cluster"]["cluster_version"] = supported[-1]
    assert "cluster.cluster_version" not in _fields(provider, data)


def test_azure_postgres_takes_fixed_storage_sizes_only() -> None:
    data = snapshot("azure")
    pg = next(i for i, d in enumerate(data["databases"]) if d["engine"] == "postgres")
    data["databases"][pg]["storage_gb"] = 100
    assert list(_fields("azure", data)) == [f"databases[{pg}].storage_gb"]
    assert f"databases[{pg}].storage_gb" in _render_fields(data)
    data["databases"][pg]["storage_gb"] = 4095  # the API's 4193280 MB step
    assert _fields("azure", data) == {}
    # MySQL flexible servers take any size from 20 GB: the rule is PostgreSQL's only.
    data["databases"][pg]["engine"] = "mysql"
    data["databases"][pg]["storage_gb"] = 100
    assert _fields("azure", data) == {}


def test_memorystore_tiers_replicas_and_read_replica_size() -> None:
    data = snapshot("gcp")
    cache = data["caches"][0]
    cache.update(node_type="BASIC", cluster_size=2)
    assert _fields("gcp", data) == {"caches[0].cluster_size": "a BASIC instance has exactly 1 node"}
    cache.update(node_type="STANDARD_HA", cluster_size=7)
    assert "at most 6 nodes" in _fields("gcp", data)["caches[0].cluster_size"]
    cache.update(cluster_size=3, provider_config={"memory_size_gb": 4})
    assert "memory_size_gb >= 5" in _fields("gcp", data)["caches[0].cluster_size"]
    cache.update(cluster_size=2)  # one replica: no read replicas needed
    assert _fields("gcp", data) == {}
    cache.update(node_type="M1")
    assert list(_fields("gcp", data)) == ["caches[0].node_type"]
    assert cloud_limits.memorystore_replicas("STANDARD_HA", 1) == 1
    assert cloud_limits.memorystore_replicas("STANDARD_HA", 4) == 3
    assert cloud_limits.memorystore_replicas("BASIC", 1) == 0


def test_api_cidrs_must_be_networks_and_never_the_world() -> None:
    path = "cluster.provider_config.api_authorized_cidrs"
    assert cloud_limits.check_api_cidrs(["203.0.113.10/32", "198.51.100.0/24"]) == []
    found = {
        v.field: v.description for v in cloud_limits.check_api_cidrs(["0.0.0.0/0", "10.0.0.1/8", "x", 7])
    }
    assert set(found) == {f"{path}[0]", f"{path}[1]", f"{path}[2]", f"{path}[3]"}
    assert "everyone" in found[f"{path}[0]"]
    assert len(cloud_limits.check_api_cidrs([f"10.0.{i}.0/24" for i in range(36)])) == 1


def test_a_long_cache_name_is_refused_instead_of_truncated() -> None:
    data = snapshot("aws")
    data["caches"][0]["name"] = "c" * 30
    message = _fields("aws", data)["caches[0].name"]
    assert "ElastiCache replication group id" in message and "at most 40" in message


def test_engines_come_from_one_table() -> None:
    from alethia.mapping import providers

    for name, mapping in providers.REGISTRY.items():
        assert mapping.engines == cloud_limits.ENGINES[name]
        assert mapping.name_limits == cloud_limits.NAME_LIMITS[name]
    data = snapshot("azure")
    data["databases"][0]["engine"] = "sqlserver"
    assert _fields("azure", data) == {"databases[0].engine": "must be one of mysql, postgres"}


def test_the_docs_table_lists_every_version() -> None:
    table = "\n".join(cloud_limits.kubernetes_versions_table())
    for provider, versions in cloud_limits.KUBERNETES_VERSIONS.items():
        for v in versions:
            assert f"{v.version} ({v.end_of_support})" in table
        assert f"| {provider} |" in table


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cloud_names_start_with_a_letter(provider: str) -> None:
    data = snapshot(provider)
    data["project_name"] = "9lives"
    assert _fields(provider, data) == {
        "project_name": f"must start with a letter on {provider} (cloud names begin with it)"
    }


def test_azure_encryption_key_is_a_versionless_key_vault_key_id() -> None:
    field = "cluster.provider_config.encryption_key"
    data = snapshot("azure")
    good = data["cluster"]["provider_config"]["encryption_key"]
    assert good.endswith("/vaults/acme-keys/keys/portal") and _fields("azure", data) == {}
    for bad in (
        good + "/versions/0123456789abcdef0123456789abcdef",  # pinned: would not follow rotation
        "https://acme-keys.vault.azure.net/keys/portal",  # the data-plane URL, not the resource id
        good.replace("/vaults/acme-keys/", "/vaults/ak/"),  # vault names have 3-24 characters
        good.replace("Microsoft.KeyVault/vaults", "Microsoft.Storage/storageAccounts"),
    ):
        data["cluster"]["provider_config"]["encryption_key"] = bad
        assert "Key Vault key's resource id" in _fields("azure", data)[field], bad
        assert field in _render_fields(data)  # the mapper refuses it too
    data["cluster"]["provider_config"]["encryption_key"] = ""
    assert _fields("azure", data) == {}  # empty: platform-managed keys


_OCTET = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "010", "1a", "", "-1", "٣"]))
_CIDR = st.one_of(
    st.builds(
        lambda a, b, c, d, p: f"{a}.{b}.{c}.{d}/{p}",
        _OCTET,
        _OCTET,
        _OCTET,
        _OCTET,
        st.one_of(st.integers(0, 40).map(str), st.sampled_from(["016", "255.255.0.0", "", "x"])),
    ),
    st.text(max_size=20),
)


def _stdlib_prefixlen(cidr: str) -> int | None:
    try:
        return ipaddress.IPv4Network(cidr).prefixlen
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(_CIDR)
def test_ipv4_prefixlen_is_the_standard_librarys_answer(cidr: str) -> None:
    """The fast path decides canonical text only; every answer is ipaddress's."""
    try:
        ours: int | None = cloud_limits.ipv4_prefixlen(cidr)
    except ValueError:
        ours = None
    assert ours == _stdlib_prefixlen(cidr), cidr


def test_ipv4_prefixlen_examples() -> None:
    assert cloud_limits.ipv4_prefixlen("10.20.0.0/16") == 16
    assert cloud_limits.ipv4_prefixlen("0.0.0.0/0") == 0
    assert cloud_limits.ipv4_prefixlen("203.0.113.10/32") == 32
    for bad in ("10.20.0.1/16", "256.0.0.0/8", "10.0.0.0/33", "010.0.0.0/8", "10.0.0.0/16\n"):
        with pytest.raises(ValueError):
            cloud_limits.ipv4_prefixlen(bad)
