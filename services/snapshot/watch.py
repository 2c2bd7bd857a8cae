"""WatchJob: a job's events from its start, then live, ending after its terminal event.

Events are read from the ALETHIA_EVENTS stream with an ephemeral ordered consumer that
delivers everything on ``alethia.jobs.<job_id>.>`` from the first message. The database
stays the source of truth: when the job is finished and every one of its outbox rows has
been relayed but the stream has no terminal event (it aged out, or NATS is down and the
job already ended), the terminal event is rebuilt from the row so that a watch always ends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import nats.errors
from google.protobuf.message import DecodeError
from nats.js.api import DeliverPolicy

from alethia.errors import Unavailable
from alethia.events.v1 import events_pb2
from alethia.messaging import job_subject, job_subjects
from services.snapshot import store
from services.snapshot.events import terminal_event_from_row
from services.snapshot.job_queue import JobQueue, is_terminal
from services.snapshot.jobs import TERMINAL_EVENT_TYPES
from services.snapshot.relay import NatsLink

log = logging.getLogger(__name__)


def decode_event(subject: str, data: bytes, job_id: str) -> events_pb2.JobEvent | None:
    """The event in a message of ``job_id``'s subjects, or None (one warning line) when it is not one.

    A message that does not decode, names another job, or whose type is not the one its
    subject says (``alethia.jobs.<id>.<type>``: NATS permissions decide who may publish on
    which subject, so a runner's ``log`` subject can never carry a ``succeeded``) is dropped:
    never a traceback, never shown as a job state.
    """
    ev = events_pb2.JobEvent()
    try:
        ev.ParseFromString(data)
    except (DecodeError, ValueError):
        log.warning(
            "watch %s: dropped a message on %s that is not a job event (%d bytes)", job_id, subject, len(data)
        )
        return None
    expected_type = subject.rsplit(".", 1)[-1]
    if ev.job_id != job_id or ev.type != expected_type or subject != job_subject(job_id, expected_type):
        log.warning(
            "watch %s: dropped a message on %s claiming job %r type %r",
            job_id,
            subject,
            ev.job_id[:64],
            ev.type[:32],
        )
        return None
    return ev


async def watch_job(
    queue: JobQueue, link: NatsLink, job_id: str, include_logs: bool, idle_seconds: float = 1.0
) -> AsyncIterator[events_pb2.JobEvent]:
    """Yield the job's events in order; skip ``log`` events unless ``include_logs``."""
    row, _ = await queue.get_job(job_id)  # NOT_FOUND before touching NATS
    js = link.js
    if js is None:
        if is_terminal(row):
            yield terminal_event_from_row(row)
            return
        raise Unavailable("job events are unavailable while NATS is unreachable: retry, or poll GetJob")
    try:
        sub = await js.subscribe(
            job_subjects(job_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
    except Exception as exc:
        if is_terminal(row):
            yield terminal_event_from_row(row)
            return
        raise Unavailable(f"job events are unavailable: {type(exc).__name__}") from exc
    quiet = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_seconds)
            except nats.errors.TimeoutError:
                async with queue.sessions() as session:
                    current = await store.get_job(session, job_id)
                    pending = await store.unpublished_count(session, job_id)
                if current is not None and is_terminal(current) and pending == 0:
                    # Everything was relayed; give delivery one more quiet period before
                    # concluding the terminal event is not in the stream.
                    quiet += 1
                    if quiet >= 2:
                        yield terminal_event_from_row(current)
                        return
                else:
                    quiet = 0
                continue
            ev = decode_event(msg.subject, msg.data, job_id)
            if ev is None:
                continue
            if ev.type == "log" and not include_logs:
                continue
            yield ev
            if ev.type in TERMINAL_EVENT_TYPES:
                return
    finally:
        try:
            await sub.unsubscribe()
        except Exception as exc:  # NATS went away: the ephemeral consumer expires on its own
            log.debug("watch: unsubscribe failed: %s", type(exc).__name__)
