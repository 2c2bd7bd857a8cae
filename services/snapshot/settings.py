"""Settings of the snapshot service, from the environment.

- ``ALETHIA_SNAPSHOT_DATABASE_URL`` (default ``sqlite+aiosqlite:///.alethia/snapshot.db``): where
  ``provision_jobs`` and ``job_outbox`` live; ``postgresql://...`` uses asyncpg.
- ``ALETHIA_SNAPSHOT_LISTEN`` (default ``127.0.0.1:50052``): gRPC listen address (port 0 = any).
- ``ALETHIA_SNAPSHOT_LEASE_SECONDS`` (default 30): a claim's lease when the runner asks for none.
- ``ALETHIA_SNAPSHOT_RESCUE_INTERVAL_SECONDS`` (default 5): how often the rescuer looks for
  expired leases.
- ``ALETHIA_SNAPSHOT_MAX_ATTEMPTS`` (default 3): runs of a PLAN before a lost lease fails it.
- ``ALETHIA_SNAPSHOT_RELAY_POLL_SECONDS`` (default 1): the outbox relay's poll interval (it
  also wakes at once after each commit of this process).
- ``ALETHIA_SNAPSHOT_OUTBOX_RETENTION_SECONDS`` (default 3600): delivered outbox rows are
  deleted this long after they were published (0: at the next prune, once a minute).
- ``ALETHIA_SNAPSHOT_EVENTS_LISTEN`` (default empty: off): the HTTP server of the gateway's
  event stream (``GET /api/jobs/{id}/events``, server-sent events), e.g. ``127.0.0.1:50062``;
  ``alethia up`` and docker compose turn it on.
- ``ALETHIA_SNAPSHOT_EVENTS_KEEPALIVE_SECONDS`` (default 15): a comment line on a quiet event
  stream this often, so proxies and browsers keep the connection.
- ``ALETHIA_GIT_TOKENS_FILE`` (default empty): JSON file ``{"<host>": "<token>"}``, read per
  request so a rotated token is picked up without a restart.
- ``ALETHIA_GIT_TOKEN`` (default empty) with ``ALETHIA_GIT_TOKEN_HOST``: one token and the
  one host it is for (a token without its host refuses to start: there is no catch-all).
- ``ALETHIA_S3_STATE_BUCKET`` (default ``alethia-state``): the runners' Terraform state bucket,
  named when a Spec is deleted with its infrastructure abandoned.
- Shared (``CommonSettings``): ``ALETHIA_SPECS_ADDR``, ``ALETHIA_NATS_URL``, ``ALETHIA_SERVICE_TOKEN``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alethia.settings import CommonSettings


class SnapshotSettings(CommonSettings):
    """Snapshot service settings; the common ``ALETHIA_*`` settings keep their names."""

    model_config = SettingsConfigDict(env_prefix="ALETHIA_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///.alethia/snapshot.db", validation_alias="ALETHIA_SNAPSHOT_DATABASE_URL"
    )
    listen: str = Field(default="127.0.0.1:50052", validation_alias="ALETHIA_SNAPSHOT_LISTEN")
    lease_seconds: float = Field(default=30.0, gt=0, validation_alias="ALETHIA_SNAPSHOT_LEASE_SECONDS")
    rescue_interval_seconds: float = Field(
        default=5.0, gt=0, validation_alias="ALETHIA_SNAPSHOT_RESCUE_INTERVAL_SECONDS"
    )
    max_attempts: int = Field(default=3, ge=1, validation_alias="ALETHIA_SNAPSHOT_MAX_ATTEMPTS")
    relay_poll_seconds: float = Field(
        default=1.0, gt=0, validation_alias="ALETHIA_SNAPSHOT_RELAY_POLL_SECONDS"
    )
    outbox_retention_seconds: float = Field(
        default=3600.0, ge=0, validation_alias="ALETHIA_SNAPSHOT_OUTBOX_RETENTION_SECONDS"
    )
    events_listen: str = Field(default="", validation_alias="ALETHIA_SNAPSHOT_EVENTS_LISTEN")
    events_keepalive_seconds: float = Field(
        default=15.0, gt=0, validation_alias="ALETHIA_SNAPSHOT_EVENTS_KEEPALIVE_SECONDS"
    )
    git_tokens_file: str = Field(default="", validation_alias="ALETHIA_GIT_TOKENS_FILE")
    git_token: str = Field(default="", repr=False, validation_alias="ALETHIA_GIT_TOKEN")
    state_bucket: str = Field(default="alethia-state", validation_alias="ALETHIA_S3_STATE_BUCKET")
    git_token_host: str = Field(default="", validation_alias="ALETHIA_GIT_TOKEN_HOST")
