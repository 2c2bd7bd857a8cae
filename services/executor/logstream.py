"""Live job logs: Terraform's ``-json`` UI messages as ``JobEvent`` type ``log`` on JetStream.

Invariants:
- Publishing never blocks Terraform: :meth:`LogPublisher.emit` only appends to a bounded
  buffer; a background task publishes. When NATS is down the buffer drops its OLDEST lines
  and counts them (the full log is still in the ``terraform.log`` artifact).
- Every line is redacted before it is buffered (git token, S3 secret, sensitive values).
- Each event has ``event_id`` = ``Nats-Msg-Id`` = ``<job_id>:<attempt>:<seq>``, so a
  republished line is de-duplicated by the stream and a re-run attempt never collides.
- Lines go out in order, up to :data:`PUBLISH_WINDOW` at a time without waiting for each
  acknowledgement (one round trip per window, not per line); a window that is not wholly
  acknowledged within the timeout is sent again from its first line (the stream drops the
  duplicates). Only then can a re-sent line land after a later one: ``event_id`` keeps the order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from typing import Any

from nats.js import JetStreamContext

from alethia.events.v1 import events_pb2
from alethia.messaging import job_subject
from services.executor.redaction import Redactor

log = logging.getLogger(__name__)

# Log lines in flight at once (each acknowledged by JetStream on its own).
PUBLISH_WINDOW = 64


def log_event(
    job_id: str,
    spec_id: str,
    attempt: int,
    seq: int,
    stage: str,
    message: dict[str, Any],
    raw_redacted: str,
    job_type: int = 0,
    workspace: str = "",
) -> events_pb2.JobEvent:
    """The ``log`` JobEvent for one already-redacted Terraform UI message (pure)."""
    ev = events_pb2.JobEvent(
        event_id=f"{job_id}:{attempt}:{seq}",
        job_id=job_id,
        spec_id=spec_id,
        type="log",
        status=events_pb2.RUNNING,
        attempt=attempt,
        job_type=job_type,  # type: ignore[arg-type]
        workspace=workspace,
        log=events_pb2.LogLine(
            level=str(message.get("@level", "info")),
            message=str(message.get("@message", "")),
            type=str(message.get("type", "")),
            json=raw_redacted,
            stage=stage,
        ),
    )
    # Set in place from the clock's integer nanoseconds: Timestamp.GetCurrentTime goes through
    # a datetime and calendar.timegm, a visible share of the runner's CPU per log line.
    ev.time.FromNanoseconds(time.time_ns())
    return ev


class LogPublisher:
    """Buffers a job's log events and publishes them to JetStream in the background."""

    def __init__(
        self,
        js: JetStreamContext | None,
        job_id: str,
        spec_id: str,
        attempt: int,
        redactor: Redactor,
        job_type: int = 0,
        workspace: str = "",
        capacity: int = 5000,
        publish_timeout: float = 2.0,
    ) -> None:
        self.js = js
        self.job_id = job_id
        self.spec_id = spec_id
        self.attempt = attempt
        self.redactor = redactor
        self.job_type = job_type
        self.workspace = workspace
        self.publish_timeout = publish_timeout
        self.lines: list[str] = []  # the full redacted log, for the terraform.log artifact
        self.published = 0
        self.dropped = 0
        self._seq = 0
        self._buffer: collections.deque[events_pb2.JobEvent] = collections.deque()
        self._capacity = capacity
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LogPublisher:
        if self.js is not None:
            self._task = asyncio.create_task(self._pump(), name=f"log-publisher-{self.job_id}")
        return self

    def emit(self, stage: str, message: dict[str, Any], raw: str) -> None:
        """Record one Terraform UI message; never blocks, never raises."""
        self._seq += 1
        redacted_raw = self.redactor.redact(raw)
        if redacted_raw == raw and isinstance(message, dict):
            # Nothing redacted (nearly every line): ``message`` is ``raw`` already parsed by the
            # caller, so it is not parsed again.
            msg = message
        else:
            try:
                msg = json.loads(redacted_raw)
            except ValueError:
                msg = {"@level": "info", "@message": redacted_raw, "type": "text"}
        self.lines.append(json.dumps({"stage": stage, **msg}, sort_keys=False))
        if self.js is None or self._closing:
            return
        ev = log_event(
            self.job_id,
            self.spec_id,
            self.attempt,
            self._seq,
            stage,
            msg,
            redacted_raw,
            self.job_type,
            self.workspace,
        )
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(ev)
        self._wake.set()

    def note(self, stage: str, level: str, text: str) -> None:
        """A line of our own (not Terraform's) in the same stream, e.g. post-apply progress."""
        raw = json.dumps(
            {"@level": level, "@message": text, "@module": "alethia.executor", "type": "alethia"}
        )
        self.emit(stage, json.loads(raw), raw)

    def log_text(self) -> bytes:
        """The full log, one JSON object per line, redacted again with every secret known by now."""
        return self.redactor.redact("\n".join(self.lines) + "\n").encode()

    async def _pump(self) -> None:
        assert self.js is not None
        backoff = 0.2
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            window = [self._buffer[i] for i in range(min(len(self._buffer), PUBLISH_WINDOW))]
            acks: list[asyncio.Future[Any]] = []
            try:
                for ev in window:
                    acks.append(
                        await self.js.publish_async(
                            job_subject(self.job_id, "log"),
                            ev.SerializeToString(),
                            headers={"Nats-Msg-Id": ev.event_id},
                        )
                    )
                await asyncio.wait_for(asyncio.gather(*acks), self.publish_timeout)
            except Exception as exc:  # NATS down or slow: keep the lines, retry later
                for ack in acks:
                    ack.cancel()  # frees its slot in the client's pending set
                if self._closing:
                    return
                log.debug("log publish for %s failed: %s", self.job_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.2
            for ev in window:
                # The buffer may have dropped its oldest lines meanwhile (it is bounded).
                if self._buffer and self._buffer[0] is ev:
                    self._buffer.popleft()
                self.published += 1

    async def close(self, flush_seconds: float = 5.0) -> None:
        """Publish what is buffered (bounded by ``flush_seconds``), then stop.

        Lost live lines are counted in the full log, which stays complete.
        """
        self._closing = True
        if self._task is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), flush_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self.dropped += len(self._buffer)
                self._buffer.clear()
        if self.dropped:
            self.note(
                "finish",
                "warn",
                f"{self.dropped} live log lines were not published (NATS unavailable); this log is complete",
            )
