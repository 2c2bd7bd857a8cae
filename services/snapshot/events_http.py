"""``GET /api/jobs/{id}/events``: a job's events as server-sent events, behind the gateway.

Envoy's gRPC-JSON transcoder turns a server stream into one JSON array, not
``text/event-stream``, so this small HTTP server (aiohttp, in the snapshot service's
process, next to the job queue and the NATS link that ``WatchJob`` uses) serves the stream
and Envoy routes that one path to it. It authenticates exactly like the gRPC server (the
bearer token Envoy verified and forwarded, or ``?access_token=`` for browsers'
``EventSource``, which cannot set headers) and applies the same zone rule.

The stream: one ``id:`` line (the event id) and one ``data:`` line (the ``JobEvent`` as
JSON, snake_case) per event, a comment line every ``keepalive_seconds`` so proxies keep
the connection, and the end of the response after the job's terminal event.
``Last-Event-ID`` resumes after that event. An error before the stream starts (bad token,
unknown job, events unavailable while NATS is unreachable) is a JSON ``google.rpc.Status``
with the matching HTTP status; an error after it is one ``event: error`` with the same
body, then the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from alethia.errors import AlethiaError, Internal, PermissionDenied
from alethia.events.v1 import events_pb2
from alethia.gateway.errors import error_body, http_status
from alethia.rpc.auth import Authenticator, set_caller
from services.snapshot.relay import NatsLink
from services.snapshot.server import SnapshotServicer
from services.snapshot.watch import watch_job

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/jobs/{id}/events"
KEEPALIVE_SECONDS = 15.0


def event_json(ev: events_pb2.JobEvent) -> str:
    """One event as the compact JSON of a ``data:`` line (proto3 JSON, snake_case)."""
    data = json_format.MessageToDict(
        ev, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps(data, separators=(",", ":"))


def sse_frame(ev: events_pb2.JobEvent) -> bytes:
    """An event as one SSE frame: ``id:`` and ``data:`` lines, then a blank line."""
    return f"id: {ev.event_id}\ndata: {event_json(ev)}\n\n".encode()


async def resume_after(
    events: AsyncIterator[events_pb2.JobEvent], last_id: str
) -> AsyncIterator[events_pb2.JobEvent]:
    """The events after ``last_id`` (all of them when ``last_id`` is empty).

    Events replay from the job's start in order, so everything up to and including the
    known id is skipped. An id that never shows up (not this job's) means the client
    knows nothing yet: the held events are sent when the stream ends.
    """
    if not last_id:
        async for ev in events:
            yield ev
        return
    held: list[events_pb2.JobEvent] = []
    found = False
    async for ev in events:
        if found:
            yield ev
        elif ev.event_id == last_id:
            found = True
            held.clear()
        else:
            held.append(ev)
    for ev in held:
        yield ev


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass
class EventsApp:
    """The HTTP app: one route, authenticated, zone-checked, streaming."""

    servicer: SnapshotServicer
    link: NatsLink
    authenticator: Authenticator
    keepalive_seconds: float = KEEPALIVE_SECONDS

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(EVENTS_PATH, self.job_events)
        return app

    def _error(self, err: AlethiaError) -> web.Response:
        return web.json_response(error_body(err), status=http_status(err.code))

    async def job_events(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]
        authorization = request.headers.get("Authorization", "")
        if not authorization and request.query.get("access_token"):
            authorization = f"Bearer {request.query['access_token']}"
        try:
            caller = self.authenticator.authenticate(authorization)
            if caller.kind == "runner":
                raise PermissionDenied("runner credentials are for RunnerService only")
            set_caller(caller)  # this task's caller, as the gRPC interceptor does
            await self.servicer.visible_job(job_id)
        except AlethiaError as err:
            return self._error(err)
        include_logs = _truthy(request.query.get("include_logs", "true"))
        last_id = request.headers.get("Last-Event-ID", "").strip()

        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=256)

        async def pump() -> None:
            try:
                events = watch_job(self.servicer.queue, self.link, job_id, include_logs)
                async for ev in resume_after(events, last_id):
                    await queue.put(("event", ev))
                await queue.put(("end", None))
            except AlethiaError as err:
                await queue.put(("error", err))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event stream of job %s failed", job_id)
                await queue.put(("error", Internal()))

        task = asyncio.create_task(pump(), name=f"sse-{job_id}")
        # The replay starts at once when events can be read: wait for its first item before
        # answering, so that "events unavailable" is a 503, not a 200 that says so inside.
        first: tuple[str, Any] | None = None
        try:
            first = await asyncio.wait_for(queue.get(), timeout=self.keepalive_seconds)
        except TimeoutError:
            pass
        if first is not None and first[0] == "error":
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return self._error(first[1])
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            while True:
                if first is not None:
                    (kind, item), first = first, None
                else:
                    try:
                        kind, item = await asyncio.wait_for(queue.get(), timeout=self.keepalive_seconds)
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                if kind == "event":
                    await response.write(sse_frame(item))
                elif kind == "error":
                    body = json.dumps(error_body(item), separators=(",", ":"))
                    await response.write(f"event: error\ndata: {body}\n\n".encode())
                    break
                else:
                    break
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away: stop watching
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return response


async def start_events_server(events: EventsApp, listen: str) -> tuple[web.AppRunner, int]:
    """Serve the event stream on ``listen`` (``host:port``, port 0 = any); returns (runner, port)."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(events.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or "127.0.0.1", int(port or 0), reuse_port=False)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only through the asyncio server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else int(port)
    return runner, bound
