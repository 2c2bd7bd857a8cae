"""The identity rules without a network: who a credential is, and what each kind may call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from alethia.errors import AlethiaError
from alethia.events.v1 import events_pb2
from alethia.rpc.auth import Authenticator, Caller, JwtVerifier, LocalIssuer, authenticator_from, authorize
from services.snapshot.events_http import resume_after

CLAIM = "/alethia.snapshot.v1.RunnerService/ClaimJob"
GET_SPEC = "/alethia.specs.v1.SpecService/GetSpec"
GET_JOB = "/alethia.snapshot.v1.SnapshotService/GetJob"
DRAIN = "/alethia.executor.v1.ExecutorService/Drain"
RENDER = "/alethia.mapper.v1.MapperService/RenderTfvars"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer.load_or_create(tmp_path_factory.mktemp("issuer") / "key.pem")


def _code(fn: object) -> grpc.StatusCode | None:
    try:
        fn()  # type: ignore[operator]
    except AlethiaError as exc:
        return exc.code
    return None


def test_each_credential_is_its_kind(issuer: LocalIssuer) -> None:
    auth = Authenticator("svc-token", "runner-token", JwtVerifier(issuer.jwks(), issuer.issuer))
    assert auth.authenticate("Bearer svc-token") == Caller("service", "", None)
    assert auth.authenticate("Bearer runner-token") == Caller("runner", "", None)
    alice = auth.authenticate(f"Bearer {issuer.mint('alice', ['zone-a', 'zone-c'])}")
    assert alice == Caller("user", "alice", frozenset({"zone-a", "zone-c"}))
    assert auth.authenticate(f"Bearer {issuer.mint('root', ['*'])}").all_zones
    assert auth.authenticate(f"Bearer {issuer.mint('nobody', [])}").zone_filter() == []
    for bad in ("", "svc-token", "Basic svc-token", "Bearer svc-tokeN", "Bearer a.b.c"):
        assert _code(lambda bad=bad: auth.authenticate(bad)) == grpc.StatusCode.UNAUTHENTICATED, bad


def test_tokens_are_checked_for_expiry_issuer_audience_and_key(issuer: LocalIssuer, tmp_path: Path) -> None:
    verifier = JwtVerifier(issuer.jwks(), issuer.issuer)
    other = LocalIssuer.load_or_create(tmp_path / "other.pem")
    wrong_iss = LocalIssuer(issuer.key_pem, issuer.key_id, issuer="someone-else")
    wrong_aud = LocalIssuer(issuer.key_pem, issuer.key_id, audience="not-alethia")
    for token in (
        issuer.mint("late", ["*"], ttl_seconds=-60),
        other.mint("mallory", ["*"]),
        wrong_iss.mint("eve", ["*"]),
        wrong_aud.mint("eve", ["*"]),
    ):
        assert _code(lambda token=token: verifier.verify(token)) == grpc.StatusCode.UNAUTHENTICATED
    # The JWKS file the services read verifies what the key signs.
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    assert JwtVerifier.from_file(jwks, issuer.issuer, "alethia", "alethia_zones").verify(
        issuer.mint("bob", ["zone-b"])
    ) == Caller("user", "bob", frozenset({"zone-b"}))


def test_a_jwk_set_without_keys_is_refused_at_start_and_a_bad_key_refuses_tokens(issuer: LocalIssuer) -> None:
    empties: list[dict[str, Any]] = [{}, {"keys": []}, {"keys": [{"use": "sig"}]}]
    for empty in empties:
        assert (
            _code(lambda empty=empty: JwtVerifier(empty, issuer.issuer)) == grpc.StatusCode.INVALID_ARGUMENT
        )
    # A point off the curve parses only with the key material, at the first token: refused.
    bad = {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": issuer.key_id}]}
    verifier = JwtVerifier(bad, issuer.issuer)
    token = issuer.mint("alice", ["*"])
    assert _code(lambda: verifier.verify(token)) == grpc.StatusCode.UNAUTHENTICATED


def test_a_service_with_a_key_that_does_not_parse_does_not_start(issuer: LocalIssuer, tmp_path: Path) -> None:
    # The service's own path (authenticator_from -> from_file) parses the keys at start, in a
    # child interpreter: the mistake is named at start, not at the first user's request.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k"}]}))
    with pytest.raises(AlethiaError) as refused:
        authenticator_from("svc", "run", str(bad), issuer.issuer)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.violations[0].field == "ALETHIA_AUTH_JWKS_FILE"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(issuer.jwks()))
    auth = authenticator_from("svc", "run", str(good), issuer.issuer)
    assert auth.authenticate(f"Bearer {issuer.mint('bob', ['z'])}").subject == "bob"


def test_the_verifier_loads_pyjwt_at_the_first_user_token_not_at_start(issuer: LocalIssuer) -> None:
    # PyJWT brings cryptography (~11 MB resident): an idle service, or one that only sees
    # service and runner tokens, never loads it. Checked in a fresh interpreter.
    code = (
        "import json, sys\n"
        "from alethia.rpc.auth import Authenticator, JwtVerifier\n"
        f"auth = Authenticator('svc', 'run', JwtVerifier(json.loads({json.dumps(json.dumps(issuer.jwks()))}), "
        f"{issuer.issuer!r}))\n"
        "auth.authenticate('Bearer svc'); auth.authenticate('Bearer run')\n"
        "print('jwt' in sys.modules, 'cryptography' in sys.modules)\n"
        f"auth.authenticate('Bearer {issuer.mint('alice', ['*'])}')\n"
        "print('jwt' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_who_may_call_what() -> None:
    user, admin = Caller("user", "u", frozenset({"z"})), Caller("user", "root", None)
    runner, service = Caller("runner", "", None), Caller("service", "", None)
    denied = grpc.StatusCode.PERMISSION_DENIED
    table = [
        (user, CLAIM, True, denied), (admin, CLAIM, True, denied), (service, CLAIM, True, denied),
        (runner, CLAIM, True, None),
        (service, CLAIM, False, None),  # no runner token configured: the old single-token setup
        (runner, GET_SPEC, True, denied), (runner, GET_JOB, True, None), (runner, RENDER, True, None),
        (user, GET_SPEC, True, None), (user, DRAIN, True, denied), (admin, DRAIN, True, None),
        (service, DRAIN, True, None),
    ]  # fmt: skip
    for caller, method, separate, expected in table:
        got = _code(lambda c=caller, m=method, s=separate: authorize(c, m, s))
        assert got == expected, (caller, method, separate)


def test_requested_by_and_zone_checks() -> None:
    user = Caller("user", "alice@example.com", frozenset({"zone-a"}))
    assert user.requested_by == "alice@example.com" and Caller("service", "", None).requested_by == "service"
    assert _code(lambda: user.visible("zone-b", "spec x")) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: user.require_zone("zone-b")) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(lambda: user.require_admin("x")) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(lambda: user.visible("zone-a", "spec x")) is None


async def test_resume_after_an_event_id() -> None:
    evs = [events_pb2.JobEvent(event_id=f"e{i}") for i in range(4)]

    async def stream():  # type: ignore[no-untyped-def]
        for ev in evs:
            yield ev

    async def ids(last: str) -> list[str]:
        return [e.event_id async for e in resume_after(stream(), last)]

    assert await ids("") == ["e0", "e1", "e2", "e3"]
    assert await ids("e1") == ["e2", "e3"]
    assert await ids("e3") == []
    assert await ids("not-of-this-job") == ["e0", "e1", "e2", "e3"]


def test_compose_gateway_configuration_is_valid_for_envoy(
    issuer: LocalIssuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m alethia.gateway`` as docker compose sets it up (peers by name), checked by Envoy."""
    import subprocess

    import yaml

    from alethia.gateway.__main__ import config_from
    from alethia.gateway.envoy import write_config
    from alethia.gateway.settings import GatewaySettings
    from alethia.stack.infra import find_binary

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    env = {k: str(v) for k, v in compose["services"]["gateway"]["environment"].items()}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    env.update({"ALETHIA_AUTH_JWKS_FILE": str(jwks), "ALETHIA_AUTH_ISSUER": issuer.issuer})
    env["ALETHIA_GATEWAY_CORS_ORIGINS"] = "http://localhost:*"  # compose's default for the variable
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()  # read from the environment, as the container does
    path = write_config(config_from(settings), tmp_path / "envoy.json")
    clusters = json.loads(path.read_text())["static_resources"]["clusters"]
    assert {c["name"]: c["type"] for c in clusters} == {
        "specs": "STRICT_DNS",
        "snapshot": "STRICT_DNS",
        "events": "STRICT_DNS",
    }
    result = subprocess.run(
        [find_binary("envoy", "ALETHIA_ENVOY_BIN"), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
