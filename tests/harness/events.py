"""Reading what the pipeline published on NATS JetStream: the one event reader of the harness."""

from __future__ import annotations

import asyncio
from typing import Any

import nats

from alethia.events.v1 import events_pb2
from alethia.messaging import EVENTS_STREAM, job_subjects

TERMINAL_EVENTS = ("succeeded", "failed", "cancelled", "errored")


async def stream_messages(nats_url: str, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message still stored in ``stream``: (subject, headers, data), by sequence."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream, seq)
                except Exception:  # deleted (work queue) or purged
                    continue
                out.append((str(msg.subject), dict(msg.headers or {}), bytes(msg.data or b"")))
        return out
    finally:
        await nc.close()


async def job_events(nats_url: str, job_id: str = "") -> list[tuple[str, str, events_pb2.JobEvent]]:
    """(msg id, subject, event) for every event in the events stream, or of one job, by sequence.

    One job's events are read through a consumer filtered on its subjects (a shared NATS
    holds every test's log lines: fetching the whole stream message by message is slow).
    """
    if not job_id:
        stored = await stream_messages(nats_url, EVENTS_STREAM)
    else:
        stored = []
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(job_subjects(job_id), ordered_consumer=True, stream=EVENTS_STREAM)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except nats.errors.TimeoutError:
                        break  # nothing stored for this job (yet)
                    stored.append((str(msg.subject), dict(msg.headers or {}), bytes(msg.data or b"")))
                    if msg.metadata.num_pending == 0:
                        break
            finally:
                await sub.unsubscribe()
        finally:
            await nc.close()
    out = []
    for subject, headers, data in stored:
        ev = events_pb2.JobEvent()
        ev.ParseFromString(data)
        out.append((headers.get("Nats-Msg-Id", ""), subject, ev))
    return out


class TerminalEvents:
    """Terminal job events as they arrive, so waiting for a job costs no polling.

    Polling GetJob every few milliseconds would take CPU from the very services and
    Terraform runs being measured (a 2-core machine notices).
    """

    def __init__(self) -> None:
        self._nc: Any = None
        self._finished: dict[str, asyncio.Event] = {}

    async def open(self, nats_url: str) -> TerminalEvents:
        self._nc = await nats.connect(nats_url, name="alethia-harness")

        async def on_event(msg: Any) -> None:
            self.finished(msg.subject.split(".")[2]).set()

        for event in TERMINAL_EVENTS:
            await self._nc.subscribe(f"alethia.jobs.*.{event}", cb=on_event)
        await self._nc.flush()
        return self

    def finished(self, job_id: str) -> asyncio.Event:
        return self._finished.setdefault(job_id, asyncio.Event())

    def forget(self, job_id: str) -> None:
        self._finished.pop(job_id, None)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None
