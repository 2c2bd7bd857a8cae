"""Wiring of the snapshot service: migrations, store, NATS link, relay, rescuer, gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from alethia.database import create_engine, run_migrations, session_factory
from alethia.errors import FailedPrecondition
from alethia.rpc.server import RunningService, create_server
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from services.snapshot.events_http import EventsApp, start_events_server
from services.snapshot.git_tokens import GitTokenSource
from services.snapshot.job_queue import JobQueue
from services.snapshot.leader import LeaderLease
from services.snapshot.relay import NatsLink, OutboxRelay
from services.snapshot.server import RunnerServicer, SnapshotServicer
from services.snapshot.settings import SnapshotSettings
from services.snapshot.spec_source import GrpcSpecReader, SpecReader
from services.snapshot.store import VERSION_TABLE

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SERVICE_NAMES = (
    snapshot_pb2.DESCRIPTOR.services_by_name["SnapshotService"].full_name,
    snapshot_pb2.DESCRIPTOR.services_by_name["RunnerService"].full_name,
)


@dataclass
class SnapshotService(RunningService):
    """The running service plus its parts, so tests can drive the rescuer and relay directly."""

    queue: JobQueue | None = None
    relay: OutboxRelay | None = None
    link: NatsLink | None = None
    events_port: int = 0  # the HTTP event stream's port (0: not served)

    @property
    def events_address(self) -> str:
        return f"{self.host}:{self.events_port}" if self.events_port else ""


async def _rescue_forever(queue: JobQueue, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await queue.rescue_expired()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rescuer pass failed; retrying at the next interval")


def _host(listen: str) -> str:
    host = listen.rsplit(":", 1)[0].strip("[]")
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def start(
    settings: SnapshotSettings, spec_reader: SpecReader | None = None, *, migrated: bool = False
) -> SnapshotService:
    """Migrate (unless the caller did: ``migrated``), start the background tasks, serve both services."""
    try:  # a misconfigured token source fails the start, naming the settings
        tokens = GitTokenSource(settings.git_tokens_file, settings.git_token, settings.git_token_host)
    except ValueError as exc:
        raise FailedPrecondition(str(exc)) from None
    if not migrated:
        await asyncio.to_thread(run_migrations, settings.database_url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    specs = spec_reader or GrpcSpecReader(settings.specs_addr, settings.service_token or None)
    link = NatsLink(settings.nats_url)
    # Replicas share the database: one relays the outbox at a time (services/snapshot/leader.py).
    lease = LeaderLease(settings.database_url)
    relay = OutboxRelay(
        sessions,
        link,
        poll_seconds=settings.relay_poll_seconds,
        lease=lease,
        retention_seconds=settings.outbox_retention_seconds,
    )
    lease.on_wake = relay.wake  # another replica's commits wake this one when it leads
    queue = JobQueue(
        sessions,
        specs,
        tokens,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        on_commit=relay.wake,
    )
    link.start()
    relay.start()
    rescuer = asyncio.create_task(
        _rescue_forever(queue, settings.rescue_interval_seconds), name="snapshot-rescuer"
    )

    async def stop_rescuer() -> None:
        rescuer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rescuer

    snapshot_servicer = SnapshotServicer(queue, link, settings.state_bucket)
    runner_servicer = RunnerServicer(queue)
    authenticator = settings.authenticator()
    events_runner = None
    events_port = 0
    try:
        if settings.events_listen:
            events_runner, events_port = await start_events_server(
                EventsApp(snapshot_servicer, link, authenticator, settings.events_keepalive_seconds),
                settings.events_listen,
            )
        server, port, health = await create_server(
            [
                lambda s: snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(snapshot_servicer, s),
                lambda s: snapshot_pb2_grpc.add_RunnerServiceServicer_to_server(runner_servicer, s),
            ],
            SERVICE_NAMES,
            settings.listen,
            authenticator=authenticator,
        )
    except BaseException:
        if events_runner is not None:
            await events_runner.cleanup()
        await stop_rescuer()
        await relay.stop(final_flush_timeout=0.1)
        await link.close()
        await specs.close()
        await engine.dispose()
        raise

    async def stop_events() -> None:
        if events_runner is not None:
            # Open streams end here (their watch tasks are cancelled), before NATS goes.
            await events_runner.cleanup()

    # Closers run in reverse: event streams, rescuer, relay (final flush), NATS, spec channel, engine.
    return SnapshotService(
        server=server,
        port=port,
        health=health,
        host=_host(settings.listen),
        closers=[engine.dispose, specs.close, link.close, relay.stop, stop_rescuer, stop_events],
        events_port=events_port,
        queue=queue,
        relay=relay,
        link=link,
    )
