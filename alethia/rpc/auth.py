"""Who is calling: users (OIDC bearer tokens), runners and services, each told apart.

Three kinds of credentials reach the services, always as ``authorization: Bearer ...``:

- **users**: a JWT from the configured issuer (``alethia up`` runs a local one; production
  points at the company's OIDC provider). Its ``sub`` becomes ``requested_by``; a claim
  (``alethia_zones`` by default) lists the zones the user may see and change (``"*"``:
  every zone). The gateway (Envoy ``jwt_authn``) verifies the token first and forwards it;
  the services verify it again, so a direct gRPC call gets exactly the same identity.
- **runners**: the runner token (``ALETHIA_RUNNER_TOKEN``). Only runners may call
  RunnerService (ClaimJob, Heartbeat, CompleteJob, GetGitToken).
- **services**: the shared service token (``ALETHIA_SERVICE_TOKEN``) of the embedded stack,
  for calls between services (the snapshot service reading Specs). It sees every zone but
  is not a runner. Without a runner token configured it also stands in for runners (the
  single-token setup of earlier releases).

:func:`current_caller` gives the verified caller inside a servicer.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alethia.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied, Unauthenticated

CallerKind = Literal["user", "runner", "service", "anonymous"]
ALL_ZONES = "*"
DEFAULT_ZONES_CLAIM = "alethia_zones"
DEFAULT_AUDIENCE = "alethia"
LOCAL_ISSUER = "alethia-local"
ALGORITHMS = ["ES256", "RS256"]


@dataclass(frozen=True)
class Caller:
    """A verified caller. ``zones`` None means every zone."""

    kind: CallerKind
    subject: str
    zones: frozenset[str] | None = None

    @property
    def all_zones(self) -> bool:
        return self.zones is None

    def sees(self, zone_id: str) -> bool:
        """May this caller read or change things of ``zone_id``?"""
        return self.zones is None or zone_id in self.zones

    def zone_filter(self) -> list[str] | None:
        """The zones a list must be limited to (None: no limit)."""
        return None if self.zones is None else sorted(self.zones)

    def require_zone(self, zone_id: str, field: str = "zone_id") -> None:
        """Refuse a write into a zone the caller does not belong to (PERMISSION_DENIED)."""
        if not self.sees(zone_id):
            raise PermissionDenied(f"{field}: zone {zone_id!r} is not one of your zones")

    def visible(self, zone_id: str, what: str) -> None:
        """Refuse a read outside the caller's zones as NOT_FOUND: its existence is not told."""
        if not self.sees(zone_id):
            raise NotFound(f"{what} not found")

    def require_admin(self, action: str) -> None:
        """Platform-wide actions (cloud accounts) need a caller of every zone."""
        if self.zones is not None:
            raise PermissionDenied(f"{action} needs a platform administrator (a caller of every zone)")

    @property
    def requested_by(self) -> str:
        """What a job records as its requester: the verified identity, never client text."""
        if self.kind == "user":
            return self.subject
        return f"{self.kind}:{self.subject}" if self.subject else self.kind


# Without authentication configured (unit tests, local experiments) every call is this one.
ANONYMOUS = Caller("anonymous", "", None)
_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("alethia_caller", default=ANONYMOUS)


def current_caller() -> Caller:
    """The caller of the RPC being served (ANONYMOUS when the server has no authentication)."""
    return _caller.get()


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    """Bind the caller for the current task (the server interceptor and the SSE handler do)."""
    return _caller.set(caller)


def zone_of_workspace(workspace: str) -> str:
    """The zone of a workspace ``zone/project-env-region``."""
    return workspace.split("/", 1)[0]


class JwtVerifier:
    """Verifies user tokens against a JWKS (ES256/RS256), issuer and audience.

    Verified tokens are cached until they expire (bounded), so a busy client pays the
    signature check once per token rather than once per call.
    """

    def __init__(
        self,
        jwks: Mapping[str, Any],
        issuer: str,
        audience: str = DEFAULT_AUDIENCE,
        zones_claim: str = DEFAULT_ZONES_CLAIM,
        cache_size: int = 1024,
    ) -> None:
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not any(isinstance(k, Mapping) and k.get("kty") for k in keys):
            raise InvalidArgument([FieldViolation("ALETHIA_AUTH_JWKS_FILE", "the JWK Set has no keys")])
        # PyJWT (and through it ``cryptography``, ~11 MB resident) is loaded at the first user
        # token, not at start: a service that only ever sees service and runner tokens, or
        # sits idle, never pays for it (bench ``rss_idle_mb``).
        self._jwks = dict(jwks)
        self._jwt: Any = None
        self._keys: dict[str | None, Any] = {}
        self.issuer = issuer
        self.audience = audience
        self.zones_claim = zones_claim
        self._cache: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _load(self) -> Any:
        """PyJWT, with the JWK Set's keys parsed (once; a key that does not parse refuses tokens)."""
        with self._lock:
            if self._jwt is None:
                import jwt

                try:
                    self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(self._jwks).keys}
                except jwt.PyJWTError as exc:
                    raise Unauthenticated(f"no usable key in the configured JWK Set: {exc}") from None
                self._jwt = jwt
            return self._jwt

    @classmethod
    def from_file(cls, path: str | Path, issuer: str, audience: str, zones_claim: str) -> JwtVerifier:
        """The verifier a service starts with: its keys are checked now, in a child process.

        A key that does not parse stops the service at start (as when PyJWT parsed the set
        here), yet the service itself loads PyJWT only at its first user token.
        """
        jwks = json.loads(Path(path).read_text())
        verifier = cls(jwks, issuer, audience, zones_claim)
        check_jwks_in_child(jwks)
        return verifier

    def verify(self, token: str) -> Caller:
        """The caller of a valid token; raises Unauthenticated naming what is wrong."""
        now = time.time()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None and hit[1] > now:
                self._cache.move_to_end(token)
                return hit[0]
        jwt = self._jwt or self._load()
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid")) if header.get("kid") else None
            if key is None and len(self._keys) == 1 and not header.get("kid"):
                key = next(iter(self._keys.values()))
            if key is None:
                raise Unauthenticated("token signed by an unknown key")
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        caller = Caller("user", str(claims["sub"]), _zones(claims.get(self.zones_claim)))
        with self._lock:
            self._cache[token] = (caller, float(claims["exp"]))
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return caller


def _zones(value: Any) -> frozenset[str] | None:
    if value is None:
        return frozenset()  # a user without the claim sees nothing
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
    zones = {str(z) for z in items}
    return None if ALL_ZONES in zones else frozenset(zones)


class Authenticator:
    """Turns an ``authorization`` value into a :class:`Caller` (or refuses it)."""

    def __init__(
        self,
        service_token: str = "",
        runner_token: str = "",
        users: JwtVerifier | None = None,
    ) -> None:
        self._service = f"Bearer {service_token}".encode() if service_token else None
        self._runner = f"Bearer {runner_token}".encode() if runner_token else None
        self.users = users

    @property
    def enabled(self) -> bool:
        return bool(self._service or self._runner or self.users)

    @property
    def separate_runners(self) -> bool:
        return self._runner is not None

    def authenticate(self, authorization: str) -> Caller:
        """The caller presenting ``authorization``; raises Unauthenticated otherwise."""
        if not self.enabled:
            return ANONYMOUS
        given = authorization.encode()
        # Constant-time comparisons for the shared secrets; JWTs are checked by signature.
        if self._service is not None and hmac.compare_digest(given, self._service):
            return Caller("service", "", None)
        if self._runner is not None and hmac.compare_digest(given, self._runner):
            return Caller("runner", "", None)
        scheme, _, token = authorization.partition(" ")
        if self.users is not None and scheme == "Bearer" and token.count(".") == 2:
            return self.users.verify(token.strip())
        raise Unauthenticated("missing or invalid credentials")


# Which kinds of caller may call each method: runners only on RunnerService (and the two
# reads a runner needs), users and services everywhere else.
RUNNER_SERVICE = "/alethia.snapshot.v1.RunnerService/"
RUNNER_MAY_CALL = (
    "/alethia.mapper.v1.MapperService/",
    "/alethia.snapshot.v1.SnapshotService/GetJob",
)
# Draining a runner is an operator's act, not a zone's: services and users of every zone.
OPERATOR_ONLY = ("/alethia.executor.v1.ExecutorService/",)


def authorize(caller: Caller, method: str, separate_runners: bool) -> None:
    """Refuse (PERMISSION_DENIED) a caller of the wrong kind for ``method``."""
    if caller.kind == "anonymous":
        return
    if method.startswith(RUNNER_SERVICE):
        if caller.kind == "runner" or (caller.kind == "service" and not separate_runners):
            return
        raise PermissionDenied("RunnerService accepts only runners")
    if caller.kind == "runner" and not method.startswith(RUNNER_MAY_CALL):
        raise PermissionDenied("runner credentials are for RunnerService only")
    if method.startswith(OPERATOR_ONLY):
        caller.require_admin("the runner's operator API")


def check_jwks_in_child(jwks: Mapping[str, Any]) -> None:
    """Parse a JWK Set with PyJWT in a child interpreter; InvalidArgument naming the setting if
    any key does not parse.

    The child pays for PyJWT and ``cryptography`` (~11 MB resident, ~0.2 s once at start);
    the service does not, until a user token arrives (bench ``rss_idle_mb``).
    """
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import jwt\n"
        "try:\n"
        "    jwt.PyJWKSet.from_dict(json.load(sys.stdin))\n"
        "except jwt.PyJWTError as exc:\n"
        "    sys.stdout.write(str(exc)); sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], input=json.dumps(jwks), capture_output=True, text=True, timeout=60
    )
    if done.returncode == 3:
        raise InvalidArgument(
            [FieldViolation("ALETHIA_AUTH_JWKS_FILE", f"a key does not parse: {done.stdout}")]
        )
    if done.returncode != 0:
        raise RuntimeError(f"checking the JWK Set failed: {done.stderr.strip()[-500:]}")


def authenticator_from(
    service_token: str,
    runner_token: str = "",
    jwks_file: str = "",
    issuer: str = "",
    audience: str = DEFAULT_AUDIENCE,
    zones_claim: str = DEFAULT_ZONES_CLAIM,
) -> Authenticator:
    """An Authenticator from settings values (read at the edge, in each service's wiring)."""
    users = None
    if jwks_file:
        if not issuer:
            raise InvalidArgument([FieldViolation("ALETHIA_AUTH_ISSUER", "required with a JWKS file")])
        users = JwtVerifier.from_file(jwks_file, issuer, audience, zones_claim)
    return Authenticator(service_token, runner_token, users)


# ---------------------------------------------------------------- the local issuer


@dataclass(frozen=True)
class LocalIssuer:
    """An EC P-256 signing key for ``alethia up``'s local users, kept in the data directory."""

    key_pem: bytes
    key_id: str
    issuer: str = LOCAL_ISSUER
    audience: str = DEFAULT_AUDIENCE

    @classmethod
    def load_or_create(cls, key_file: Path, issuer: str = LOCAL_ISSUER) -> LocalIssuer:
        """The key stored in ``key_file`` (mode 0600), generated on first use."""
        import hashlib

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if key_file.exists():
            pem = key_file.read_bytes()
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(key_file, pem)
        kid = hashlib.sha256(pem).hexdigest()[:16]
        return cls(pem, kid, issuer)

    def jwks(self) -> dict[str, Any]:
        """The public key set (what Envoy and the services verify with)."""
        import jwt
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(self.key_pem, password=None)
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))  # type: ignore[arg-type]
        jwk.update({"kid": self.key_id, "use": "sig", "alg": "ES256"})
        return {"keys": [jwk]}

    def mint(self, subject: str, zones: Iterable[str], ttl_seconds: int = 30 * 24 * 3600) -> str:
        """A signed user token for ``subject`` in ``zones`` (``["*"]``: every zone)."""
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
            DEFAULT_ZONES_CLAIM: list(zones),
        }
        return str(jwt.encode(claims, self.key_pem, algorithm="ES256", headers={"kid": self.key_id}))


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file created 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def write_private(path: Path, text: str) -> None:
    """A 0600 text file (tokens, keys)."""
    _write_private(path, text.encode())
