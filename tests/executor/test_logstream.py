"""Live log publisher: redaction, ids, never blocking, drop-oldest while NATS is down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats

from alethia import messaging
from alethia.events.v1 import events_pb2
from alethia.stack.infra import NatsServer
from services.executor.logstream import LogPublisher
from services.executor.redaction import Redactor


def _line(i: int, text: str = "") -> tuple[dict[str, object], str]:
    msg = {"@level": "info", "@message": f"line {i} {text}".strip(), "type": "apply_progress"}
    return msg, json.dumps(msg)


async def _stream_events(js: object, job_id: str) -> list[events_pb2.JobEvent]:
    sub = await js.subscribe(messaging.job_subjects(job_id), ordered_consumer=True)  # type: ignore[attr-defined]
    out = []
    while True:
        try:
            m = await sub.next_msg(timeout=0.5)
        except Exception:
            break
        ev = events_pb2.JobEvent()
        ev.ParseFromString(m.data)
        out.append(ev)
    await sub.unsubscribe()
    return out


async def test_lines_are_redacted_and_ids_are_job_attempt_seq(nats_server) -> None:  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    pub = LogPublisher(js, "job-redact", "spec-1", 3, Redactor(["s3cr3t-token-value"])).start()
    for i in range(3):
        msg, raw = _line(i, "with s3cr3t-token-value inside")
        pub.emit("apply", msg, raw)
    await pub.close()
    events = await _stream_events(js, "job-redact")
    assert [e.event_id for e in events] == ["job-redact:3:1", "job-redact:3:2", "job-redact:3:3"]
    assert all(e.type == "log" and e.log.stage == "apply" and e.attempt == 3 for e in events)
    assert all(b"s3cr3t-token-value" not in e.SerializeToString() for e in events)
    assert "(redacted)" in events[0].log.message
    assert b"s3cr3t-token-value" not in pub.log_text() and pub.log_text().count(b"\n") == 3
    await nc.close()


async def test_nats_outage_drops_oldest_and_never_blocks(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats").start()
    nc = await messaging.connect(server.url, name="logstream-test")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    pub = LogPublisher(js, "job-outage", "spec-1", 1, Redactor(), capacity=5, publish_timeout=0.3).start()
    server.stop()
    try:
        for i in range(12):
            pub.emit("apply", *_line(i))
        # emit is synchronous and only buffers: with the server gone, the 12 lines went into a
        # buffer of 5 at once, the oldest 7 dropped, nothing waited on NATS.
        assert not asyncio.iscoroutinefunction(pub.emit)
        assert pub.dropped == 7 and pub.published == 0
        await asyncio.sleep(0.5)
        assert pub.dropped >= 6 and pub.published == 0
        server = NatsServer(tmp_path / "nats", port=server.port).start()
        for _ in range(150):  # reconnects within ~0.5 s, then the buffer drains
            if pub.published + pub.dropped >= 12:
                break
            await asyncio.sleep(0.1)
        await pub.close()
        assert pub.published + pub.dropped == 12
        events = await _stream_events(js, "job-outage")
        # The newest lines survived, in order; the full log kept everything.
        seqs = [int(e.event_id.rsplit(":", 1)[1]) for e in events]
        assert seqs == sorted(seqs) and seqs[-1] == 12 and len(seqs) == pub.published
        assert pub.log_text().count(b"\n") == 12 + (1 if pub.dropped else 0)
        assert (b"live log lines were not published" in pub.log_text()) == bool(pub.dropped)
    finally:
        await nc.close()
        server.stop()


def test_log_lines_reuse_the_parsed_message_only_when_nothing_was_redacted() -> None:
    pub = LogPublisher(None, "job-lines", "spec-1", 1, Redactor(["s3cr3t-token-value"]))
    clean, clean_raw = _line(1)
    pub.emit("plan", clean, clean_raw)
    secret, secret_raw = _line(2, "with s3cr3t-token-value inside")
    pub.emit("plan", secret, secret_raw)
    pub.emit("plan", {"@level": "info", "@message": "not json", "type": "text"}, "not json")
    lines = [json.loads(x) for x in pub.log_text().decode().splitlines()]
    assert lines[0] == {"stage": "plan", **clean}
    assert lines[1]["@message"] == "line 2 with (redacted) inside"
    assert lines[2] == {"stage": "plan", "@level": "info", "@message": "not json", "type": "text"}
    assert b"s3cr3t-token-value" not in pub.log_text()
