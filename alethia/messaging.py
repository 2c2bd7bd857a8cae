"""NATS JetStream names and connection, shared by the publisher (snapshot) and the runners.

Two streams, created idempotently at start-up by whoever connects first:

- ``ALETHIA_EVENTS`` (subjects ``alethia.jobs.<job_id>.<event>``): every job event, kept for
  ``events_max_age``; ``WatchJob`` replays a job's subject from the start. De-duplicated by
  ``Nats-Msg-Id`` within the duplicate window (the outbox relay may publish twice).
- ``ALETHIA_DISPATCH`` (subject ``alethia.dispatch``): work-queue wake-ups for runners,
  consumed by the one durable pull consumer ``runners`` that every runner shares, so adding
  runners adds throughput. A message only says "something is claimable"; the claim itself
  is atomic in the database, so a duplicate delivery never runs a job twice.
"""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

log = logging.getLogger(__name__)

EVENTS_STREAM = "ALETHIA_EVENTS"
EVENTS_SUBJECT_PREFIX = "alethia.jobs"
DISPATCH_STREAM = "ALETHIA_DISPATCH"
DISPATCH_SUBJECT = "alethia.dispatch"
RUNNERS_CONSUMER = "runners"
DUPLICATE_WINDOW_S = 120.0


def job_subject(job_id: str, event_type: str) -> str:
    """The subject of one event of one job."""
    return f"{EVENTS_SUBJECT_PREFIX}.{job_id}.{event_type}"


def job_subjects(job_id: str) -> str:
    """All events of one job (a filter subject)."""
    return f"{EVENTS_SUBJECT_PREFIX}.{job_id}.>"


async def connect(url: str, name: str, **kwargs: Any) -> NATS:
    """A connection that keeps reconnecting forever: a NATS outage delays, never kills, a service."""

    async def _on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        error_cb=_on_error,
        **kwargs,
    )


async def ensure_streams(js: JetStreamContext, events_max_age_s: float = 7 * 24 * 3600) -> None:
    """Create or update both streams and the shared runners consumer (idempotent)."""
    streams = [
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=[f"{EVENTS_SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=events_max_age_s,
            duplicate_window=DUPLICATE_WINDOW_S,
        ),
        StreamConfig(
            name=DISPATCH_STREAM,
            subjects=[DISPATCH_SUBJECT],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_S,
        ),
    ]
    for cfg in streams:
        try:
            await js.add_stream(cfg)
        except BadRequestError:
            await js.update_stream(cfg)
    await js.add_consumer(
        DISPATCH_STREAM,
        ConsumerConfig(
            durable_name=RUNNERS_CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_ack_pending=10_000,
        ),
    )
