"""Settings of the gateway (``python -m alethia.gateway``), from the environment.

- ``ALETHIA_GATEWAY_LISTEN`` (default ``127.0.0.1:8080``): where Envoy listens (REST,
  gRPC-Web and gRPC on one port).
- ``ALETHIA_GATEWAY_EVENTS_ADDR`` (default ``127.0.0.1:50062``): the snapshot service's
  event stream server (its ``ALETHIA_SNAPSHOT_EVENTS_LISTEN``).
- ``ALETHIA_GATEWAY_CORS_ORIGINS`` (default ``http://localhost:*,http://127.0.0.1:*``):
  comma-separated browser origins allowed to call; ``*`` in place of a port means any port.
- ``ALETHIA_GATEWAY_ADMIN_PORT`` (default 9901): Envoy's admin interface, on 127.0.0.1 only.
- ``ALETHIA_GATEWAY_CONFIG_FILE`` (default ``/tmp/alethia-envoy.json``): where the generated
  Envoy configuration is written before Envoy starts.
- Shared (``CommonSettings``): ``ALETHIA_SPECS_ADDR``, ``ALETHIA_SNAPSHOT_ADDR``, and the user
  issuer ``ALETHIA_AUTH_JWKS_FILE``, ``ALETHIA_AUTH_ISSUER``, ``ALETHIA_AUTH_AUDIENCE``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alethia.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Gateway settings; the common ``ALETHIA_*`` settings keep their names."""

    model_config = SettingsConfigDict(env_prefix="ALETHIA_", extra="ignore", populate_by_name=True)

    listen: str = Field(default="127.0.0.1:8080", validation_alias="ALETHIA_GATEWAY_LISTEN")
    events_addr: str = Field(default="127.0.0.1:50062", validation_alias="ALETHIA_GATEWAY_EVENTS_ADDR")
    cors_origins: str = Field(
        default="http://localhost:*,http://127.0.0.1:*", validation_alias="ALETHIA_GATEWAY_CORS_ORIGINS"
    )
    admin_port: int = Field(default=9901, ge=0, lt=65536, validation_alias="ALETHIA_GATEWAY_ADMIN_PORT")
    config_file: str = Field(
        default="/tmp/alethia-envoy.json", validation_alias="ALETHIA_GATEWAY_CONFIG_FILE"
    )

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
