"""Settings shared by the services, read from ``ALETHIA_*`` environment variables.

Each service extends :class:`CommonSettings` with its own fields; the README's
configuration reference lists every variable.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    nats_url: str = "nats://127.0.0.1:4222"
