"""Settings of the mapper service, from the environment.

- ``ALETHIA_MAPPER_LISTEN`` (default ``127.0.0.1:50053``): gRPC listen address (port 0 = any).
- ``ALETHIA_SERVICE_TOKEN`` (shared, from CommonSettings): callers must present it when set.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alethia.settings import CommonSettings


class MapperSettings(CommonSettings):
    """Mapper settings; stateless, so only where to listen."""

    model_config = SettingsConfigDict(env_prefix="ALETHIA_", extra="ignore", populate_by_name=True)

    listen: str = Field(default="127.0.0.1:50053", validation_alias="ALETHIA_MAPPER_LISTEN")
