"""Wiring of the mapper service: a gRPC server with health and reflection, nothing else."""

from __future__ import annotations

from alethia.rpc.server import RunningService, create_server
from services.mapper.server import SERVICE_NAME, register
from services.mapper.settings import MapperSettings


async def start(settings: MapperSettings) -> RunningService:
    """Start the mapper on ``settings.listen`` (port 0 picks a free port)."""
    server, port, health = await create_server(
        [register], [SERVICE_NAME], settings.listen, authenticator=settings.authenticator()
    )
    host = settings.listen.rsplit(":", 1)[0]
    # A wildcard bind is reached through loopback on this machine.
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return RunningService(server=server, port=port, health=health, host=host)
