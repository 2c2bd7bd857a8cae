"""Pure validation: every rule rejects its bad input with the right field path; good Specs pass."""

from __future__ import annotations

import pytest

from alethia.specfile import spec_from_dict, spec_to_dict
from alethia.terraform_versions import ConstraintError, parse_constraints
from services.specs.regions import REGIONS, is_known_region
from services.specs.validation import validate_identity, validate_spec
from tests.fixtures.specs import (
    PROVIDERS,
    full_spec_dict,
    identity_dict,
    minimal_spec_dict,
)
from tests.fixtures.specs import (
    REGIONS as EXAMPLE_REGIONS,
)
from tests.specs.cases import BAD_SPECS, SERVICE_ONLY, broken

IDENTITY_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def _as_stored(data: dict) -> dict:  # type: ignore[type-arg]
    """The dict the service validates: the Spec after the protobuf round trip."""
    return spec_to_dict(spec_from_dict(data), include_output_only=False)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_examples_and_minimal_specs_are_valid(provider: str) -> None:
    assert validate_spec(_as_stored(full_spec_dict(provider, cloud_identity_id=IDENTITY_ID)), provider) == []
    assert (
        validate_spec(_as_stored(minimal_spec_dict(provider, cloud_identity_id=IDENTITY_ID)), provider) == []
    )
    assert validate_identity(identity_dict(provider)) == []


_PURE_CASES = [c for c in BAD_SPECS if c[0] not in SERVICE_ONLY]


@pytest.mark.parametrize(("case", "mutate", "paths"), _PURE_CASES, ids=[c[0] for c in _PURE_CASES])
def test_each_rule_names_its_field(case: str, mutate, paths: list[str]) -> None:  # type: ignore[no-untyped-def]
    data = broken(full_spec_dict("aws", cloud_identity_id=IDENTITY_ID), mutate)
    violations = validate_spec(_as_stored(data), "aws")
    fields = [v.field for v in violations]
    for path in paths:
        assert path in fields, f"{case}: expected a violation on {path}, got {violations}"
    # Exactly the broken rule fires (a second violation may only name the same field).
    assert set(fields) <= set(paths), f"{case}: unrelated violations {violations}"


def test_every_violation_is_reported_at_once() -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID, project_name="Bad", region="nowhere")
    data["network"]["cidr_block"] = "10.0.0.1/16"
    data["databases"][1]["engine"] = "oracle"
    data["repositories"][0]["url"] = "https://u:p@git.example.com/a.git"
    data["secrets"][0]["metadata"] = {"value": "x"}
    fields = {v.field for v in validate_spec(_as_stored(data), "aws")}
    assert fields == {
        "project_name",
        "region",
        "network.cidr_block",
        "databases[1].engine",
        "repositories[0].url",
        "secrets[0].metadata.value",
    }


def test_region_is_checked_against_the_identity_provider() -> None:
    spec = _as_stored(full_spec_dict("gcp", cloud_identity_id=IDENTITY_ID))
    assert validate_spec(spec, "gcp") == []
    assert [v.field for v in validate_spec(spec, "aws")] == ["region"]
    # Unknown identity: the caller reports it; the region is not judged against a provider.
    assert validate_spec(spec, None) == []
    for provider, region in EXAMPLE_REGIONS.items():
        assert is_known_region(provider, region)
    assert all(len(REGIONS[p]) > 20 for p in PROVIDERS)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/platform/apps.git",
        "ssh://git@git.example.com/platform/apps.git",
        "git@github.com:acme/apps.git",
        "https://git.example.com:8443/platform/apps",
    ],
)
def test_good_repository_urls(url: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["url"] = url
    assert validate_spec(_as_stored(data), "aws") == []


@pytest.mark.parametrize(
    "url",
    [
        "ssh://git:hunter2@git.example.com/a.git",
        "git@github.com:acme/apps.git?token=x",
        "https://git.example.com/a.git#frag",
        "https://",
    ],
)
def test_bad_repository_urls(url: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["url"] = url
    assert [v.field for v in validate_spec(_as_stored(data), "aws")] == ["repositories[0].url"]


@pytest.mark.parametrize(
    "constraint", ["", ">= 1.5", ">= 1.5, < 2.0", "~> 1.9.0", "1.9.8", ">=1.5,<2", "!= 1.6.0"]
)
def test_terraform_version_constraints(constraint: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID, terraform_version=constraint)
    assert validate_spec(_as_stored(data), "aws") == []
    if constraint:
        parse_constraints(constraint)  # the executor's parser accepts it too


@pytest.mark.parametrize("constraint", ["==1.9.*", "1.9.*", ">= 1.5 || < 2", "~= 1.9", "latest"])
def test_terraform_version_constraints_the_executor_refuses_are_refused(constraint: str) -> None:
    """Python-style or wildcard constraints used to pass here and fail at plan."""
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID, terraform_version=constraint)
    assert [v.field for v in validate_spec(_as_stored(data), "aws")] == ["terraform_version"]
    with pytest.raises(ConstraintError):
        parse_constraints(constraint)


def test_network_rules() -> None:
    base = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    ok = broken(base, lambda d: d["network"].update(cidr_block="10.0.0.0/28"))
    assert validate_spec(_as_stored(ok), "aws") == []
    ok8 = broken(base, lambda d: d["network"].update(cidr_block="10.0.0.0/8"))
    assert validate_spec(_as_stored(ok8), "aws") == []
    both = broken(base, lambda d: d["network"].update(network_id="vpc-123"))
    assert [v.field for v in validate_spec(_as_stored(both), "aws")] == ["network.network_id"]


def test_dns_disabled_needs_nothing() -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID, dns={"enabled": False})
    assert validate_spec(_as_stored(data), "aws") == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider": "ibm"}, "identity.provider"),
        ({"account_id": "12345"}, "identity.account_id"),
        ({"account_id": ""}, "identity.account_id"),
        ({"name": "Team A"}, "identity.name"),
        ({"credentials_ref": ""}, "identity.credentials_ref"),
        ({"credentials_ref": "AKIAIOSFODNN7EXAMPLE"}, "identity.credentials_ref"),
        ({"credentials_ref": "env:X password=hunter2"}, "identity.credentials_ref"),
        ({"credentials_ref": "-----BEGIN RSA PRIVATE KEY-----"}, "identity.credentials_ref"),
        ({"credentials_ref": "vault:kv/aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kL"}, "identity.credentials_ref"),
        ({"credentials_ref": "https://user:pass@vault.example.com/x"}, "identity.credentials_ref"),
        ({"credentials_ref": "ghp_0123456789abcdefghijABCDEFGHIJ"}, "identity.credentials_ref"),
    ],
)
def test_identity_rules(overrides: dict, field: str) -> None:  # type: ignore[type-arg]
    assert field in [v.field for v in validate_identity({**identity_dict("aws"), **overrides})]


@pytest.mark.parametrize(
    ("provider", "account"),
    [
        ("gcp", "123456789012"),
        ("azure", "123456789012"),
        ("aws", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        ("gcp", "Acme"),
    ],
)
def test_account_id_format_per_provider(provider: str, account: str) -> None:
    assert [v.field for v in validate_identity(identity_dict(provider, account_id=account))] == [
        "identity.account_id"
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "env:AWS_PROFILE_TEAM_A",
        "vault:secret/data/team-a/aws-credentials-production",
        "arn:aws:iam::123456789012:role/deployer",
        "aws-profile:team-a",
    ],
)
def test_credential_references_are_accepted(ref: str) -> None:
    assert validate_identity(identity_dict("aws", credentials_ref=ref)) == []


# --- repository settings that could escape (issue 16, point 5) and the host allow-list (point 6)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/platform/../../etc/apps.git",
        "https://git.example.com/platform/./apps.git",
        "https://git.example.com/platform/%2e%2e/apps.git",
        "https://git.example.com/platform/%2E%2E/%2e%2e/x.git",
        "git@git.example.com:platform/../other.git",
        "ssh://git@git.example.com/a/../b.git",
        "file:///srv/git/apps.git",
        "http://git.example.com/platform/apps.git",
        "git://git.example.com/platform/apps.git",
        "ext::sh -c touch% /tmp/pwned",
        "https://user:pw@git.example.com/a.git",
        "https://oauth2@git.example.com/a.git",
        "https://git.example.com\\@evil.example.net/a.git",
        "https://git.exa mple.com/a.git",
        "https://-oProxyCommand=x/a.git",
    ],
)
def test_escaping_repository_urls_are_refused_naming_the_field(url: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["url"] = url
    assert [v.field for v in validate_spec(_as_stored(data), "aws")] == ["repositories[0].url"]


@pytest.mark.parametrize(
    "branch",
    ["HEAD", "@", "-x", "--force", "a..b", "a/.hidden", "x.lock", "a/b.lock/c", "a//b", "/a", "a/", "a.",
     "a@{1}", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "a\x01b", "a\x7fb"],
)  # fmt: skip
def test_invalid_branch_names_are_refused(branch: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["branch"] = branch
    fields = [v.field for v in validate_spec(_as_stored(data), "aws")]
    # control characters are also caught by the generic string rule; the branch is always named
    assert set(fields) == {"repositories[0].branch"}


@pytest.mark.parametrize("branch", ["main", "release/1.2", "feature/x-y_z", "v1.0.0", "a.b", "user@host"])
def test_valid_branch_names_pass(branch: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["branch"] = branch
    assert validate_spec(_as_stored(data), "aws") == []


@pytest.mark.parametrize(
    "path", ["../x", "a/../../b", "/etc", ".git", "a/.git/hooks", "a/.GIT", "a\\b", ".git."]
)
def test_escaping_repository_paths_are_refused(path: str) -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["path"] = path
    assert [v.field for v in validate_spec(_as_stored(data), "aws")] == ["repositories[0].path"]


def test_repository_host_must_be_allowed() -> None:
    data = full_spec_dict("aws", cloud_identity_id=IDENTITY_ID)
    data["repositories"][0]["url"] = "https://git.attacker.example.net/platform/apps.git"
    allowed = frozenset({"git.example.com"})
    violations = validate_spec(_as_stored(data), "aws", allowed)
    assert [v.field for v in violations] == ["repositories[0].url"]
    assert "git.attacker.example.net" in violations[0].description
    assert "git.example.com" in violations[0].description
    data["repositories"][0]["url"] = "git@GIT.example.com:platform/apps.git"
    assert validate_spec(_as_stored(data), "aws", allowed) == []
    # An empty allow-list (nothing configured) allows no repository at all.
    assert [v.field for v in validate_spec(_as_stored(data), "aws", frozenset())] == ["repositories[0].url"]
