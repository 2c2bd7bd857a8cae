"""NATS JetStream names and connection, shared by the publisher (snapshot) and the runners.

Two streams, created idempotently at start-up by whoever connects first:

- ``ALETHIA_EVENTS`` (subjects ``alethia.jobs.<job_id>.<event>``): every job event, kept for
  ``events_max_age``; ``WatchJob`` replays a job's subject from the start. De-duplicated by
  ``Nats-Msg-Id`` within the duplicate window (the outbox relay may publish twice).
- ``ALETHIA_DISPATCH`` (subject ``alethia.dispatch``): work-queue wake-ups for runners,
  consumed by the one durable pull consumer ``runners`` that every runner shares, so adding
  runners adds throughput. A message only says "something is claimable"; the claim itself
  is atomic in the database, so a duplicate delivery never runs a job twice.

Authentication and authorisation: the embedded stack and the test servers run NATS with
one user per role (:data:`PERMISSIONS`), credentials generated per data directory and
carried in each service's ``ALETHIA_NATS_URL`` (``nats://user:password@host:port``). Only
the snapshot service publishes job events and dispatch and manages the streams; a runner
publishes only ``log`` events and what its pull consumer needs; ``cli`` only subscribes.
Each user's replies come on its own inbox prefix (``_INBOX.<user>.``), so no user reads
another's replies.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

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


# Subject permissions per NATS user (nats-server ``authorization.users[].permissions``).
PERMISSIONS: dict[str, dict[str, dict[str, list[str]]]] = {
    "snapshot": {
        "publish": {
            "allow": [f"{EVENTS_SUBJECT_PREFIX}.>", DISPATCH_SUBJECT, "$JS.API.>", "$JS.FC.>", "$JS.ACK.>"],
            "deny": [f"{EVENTS_SUBJECT_PREFIX}.*.log"],
        },
        "subscribe": {"allow": ["_INBOX.snapshot.>"]},
    },
    "runner": {
        "publish": {
            "allow": [
                f"{EVENTS_SUBJECT_PREFIX}.*.log",
                "$JS.API.INFO",
                f"$JS.API.STREAM.INFO.{EVENTS_STREAM}",
                f"$JS.API.STREAM.INFO.{DISPATCH_STREAM}",
                f"$JS.API.CONSUMER.INFO.{DISPATCH_STREAM}.{RUNNERS_CONSUMER}",
                f"$JS.API.CONSUMER.MSG.NEXT.{DISPATCH_STREAM}.{RUNNERS_CONSUMER}",
                f"$JS.ACK.{DISPATCH_STREAM}.{RUNNERS_CONSUMER}.>",
            ]
        },
        "subscribe": {"allow": ["_INBOX.runner.>"]},
    },
    "cli": {
        "publish": {"deny": [">"]},
        "subscribe": {"allow": [f"{EVENTS_SUBJECT_PREFIX}.>", "_INBOX.cli.>"]},
    },
    "admin": {},  # the operator: everything (stream maintenance, reading the streams)
}


def server_authorization(passwords: dict[str, str]) -> str:
    """The ``authorization`` block of a nats-server config for these users (JSON is valid config)."""
    users = [
        {
            "user": user,
            "password": passwords[user],
            **({"permissions": PERMISSIONS[user]} if PERMISSIONS[user] else {}),
        }
        for user in sorted(passwords)
    ]
    return "authorization " + json.dumps({"users": users}, indent=2) + "\n"


def user_url(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` (replacing any credentials it had)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def display_url(url: str) -> str:
    """``url`` without its credentials (for log lines and errors)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


async def connect(url: str, name: str, **kwargs: Any) -> NATS:
    """A connection that keeps reconnecting forever: a NATS outage delays, never kills, a service.

    A user in the URL also names the inbox prefix (``_INBOX.<user>``), which that user's
    permissions allow it to subscribe to.
    """

    async def _on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    user = unquote(urlsplit(url).username or "")
    if user and "inbox_prefix" not in kwargs:
        kwargs["inbox_prefix"] = f"_INBOX.{user}"
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


async def check_streams(js: JetStreamContext) -> None:
    """Raise unless both streams and the runners consumer exist (a runner never creates them)."""
    await js.stream_info(EVENTS_STREAM)
    await js.stream_info(DISPATCH_STREAM)
    await js.consumer_info(DISPATCH_STREAM, RUNNERS_CONSUMER)


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
