"""Job rows -> the protobuf messages that go through the outbox (JobEvent, Dispatch).

Pure: a row (as the store returns it) and an event type in, an outbox row out. The payload
is what the relay publishes byte for byte; its ``event_id`` is also the ``Nats-Msg-Id``,
so a re-publish after a crash is dropped by JetStream's duplicate window.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_SUBJECT, job_subject
from services.snapshot.jobs import TERMINAL_EVENTS, JobStatus

SENSITIVE_VALUE = '"(sensitive)"'


def timestamp(value: datetime | None) -> Timestamp | None:
    """A datetime (UTC) as a protobuf Timestamp; None stays None."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def redact_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs with every sensitive value replaced (the runner redacts; this makes sure)."""
    out = []
    for o in outputs:
        o = dict(o)
        if o.get("sensitive"):
            o["value_json"] = SENSITIVE_VALUE
        out.append(o)
    return out


def job_event(
    row: dict[str, Any], event_type: str, message: str = "", now: datetime | None = None
) -> events_pb2.JobEvent:
    """The JobEvent announcing ``event_type`` for the job in ``row`` (its state after the change)."""
    ev = events_pb2.JobEvent(
        event_id=str(uuid.uuid4()),
        job_id=row["id"],
        spec_id=row["spec_id"],
        type=event_type,
        status=events_pb2.JobStatus.Value(row["status"]),
        attempt=int(row["attempt"] or 0),
        message=message,
        job_type=events_pb2.JobType.Value(row["type"]),
        workspace=row["workspace"],
    )
    ev.time.CopyFrom(timestamp(now or datetime.now(UTC)))
    if event_type == "planned":
        if row.get("changes"):
            json_format.ParseDict(row["changes"], ev.changes, ignore_unknown_fields=True)
        if row.get("cost"):
            json_format.ParseDict(row["cost"], ev.cost, ignore_unknown_fields=True)
    if event_type == "applied":
        if row.get("changes"):
            json_format.ParseDict(row["changes"], ev.changes, ignore_unknown_fields=True)
        for o in redact_outputs(row.get("outputs") or []):
            json_format.ParseDict(o, ev.outputs.add(), ignore_unknown_fields=True)
    return ev


def event_outbox_row(ev: events_pb2.JobEvent, now: datetime) -> dict[str, Any]:
    """The outbox row that publishes ``ev`` on the job's subject."""
    return {
        "id": ev.event_id,
        "job_id": ev.job_id,
        "subject": job_subject(ev.job_id, ev.type),
        "payload": ev.SerializeToString(),
        "msg_id": ev.event_id,
        "created_at": now,
        "published_at": None,
    }


def dispatch_outbox_row(job_id: str, workspace: str, now: datetime) -> dict[str, Any]:
    """The outbox row that wakes runners for a claimable job (a fresh id: wake-ups may repeat)."""
    msg_id = str(uuid.uuid4())
    return {
        "id": msg_id,
        "job_id": job_id,
        "subject": DISPATCH_SUBJECT,
        "payload": events_pb2.Dispatch(job_id=job_id, workspace=workspace).SerializeToString(),
        "msg_id": msg_id,
        "created_at": now,
        "published_at": None,
    }


def terminal_event_from_row(row: dict[str, Any]) -> events_pb2.JobEvent:
    """A terminal event rebuilt from the row, for a watcher when NATS has none (deterministic id)."""
    status = JobStatus(row["status"])
    ev = job_event(row, TERMINAL_EVENTS[status], row.get("error") or "", now=row.get("end_time"))
    ev.event_id = f"{row['id']}.{TERMINAL_EVENTS[status]}"
    return ev
