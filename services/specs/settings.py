"""Settings of the spec service, from the environment.

- ``ALETHIA_SPECS_DATABASE_URL`` (default ``sqlite+aiosqlite:///.alethia/specs.db``): where the
  Spec tables live; ``postgresql://...`` uses asyncpg.
- ``ALETHIA_SPECS_LISTEN`` (default ``127.0.0.1:50051``): gRPC listen address (port 0 = any).
- ``ALETHIA_GIT_ALLOWED_HOSTS`` (default empty): comma-separated host names a Spec's
  repositories may live on; a repository on any other host (or any repository, when the
  list is empty) is refused at create/update naming the field.
- ``ALETHIA_SERVICE_TOKEN`` (shared, from CommonSettings): callers must present it when set.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alethia.settings import CommonSettings


class SpecsSettings(CommonSettings):
    """Spec service settings; the common ``ALETHIA_*`` settings keep their names."""

    model_config = SettingsConfigDict(env_prefix="ALETHIA_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///.alethia/specs.db", validation_alias="ALETHIA_SPECS_DATABASE_URL"
    )
    listen: str = Field(default="127.0.0.1:50051", validation_alias="ALETHIA_SPECS_LISTEN")
    git_allowed_hosts: str = Field(default="", validation_alias="ALETHIA_GIT_ALLOWED_HOSTS")

    def allowed_git_hosts(self) -> frozenset[str]:
        """The allow-list as lowercase host names."""
        return frozenset(
            h.strip().lower().rstrip(".") for h in self.git_allowed_hosts.split(",") if h.strip()
        )
