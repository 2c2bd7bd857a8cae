"""Settings shared by the services, read from ``ALETHIA_*`` environment variables.

Each service extends :class:`CommonSettings` with its own fields; the README's
configuration reference lists every variable.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from alethia.rpc.auth import Authenticator, authenticator_from


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALETHIA_", extra="ignore")

    # Shared secret for service-to-service calls; empty disables the check (local dev only).
    service_token: str = Field(default="", repr=False)
    log_level: str = "INFO"
    # Where the other services listen (host:port).
    specs_addr: str = "127.0.0.1:50051"
    snapshot_addr: str = "127.0.0.1:50052"
    mapper_addr: str = "127.0.0.1:50053"
    executor_addr: str = "127.0.0.1:50054"
    # May carry the service's NATS user and password (nats://user:password@host:port).
    nats_url: str = Field(default="nats://127.0.0.1:4222", repr=False)
    # Runners' own credential: with it set, only its holders may call RunnerService.
    runner_token: str = Field(default="", repr=False)
    # Users: OIDC bearer tokens verified against this JWKS file, issuer and audience; the
    # zones claim lists the zones a user may act in ("*" = all).
    auth_jwks_file: str = ""
    auth_issuer: str = ""
    auth_audience: str = "alethia"
    auth_zones_claim: str = "alethia_zones"

    def authenticator(self) -> Authenticator:
        """Who may call: the service token, the runner token and the users' issuer, as configured."""
        return authenticator_from(
            self.service_token,
            self.runner_token,
            self.auth_jwks_file,
            self.auth_issuer,
            self.auth_audience,
            self.auth_zones_claim,
        )
