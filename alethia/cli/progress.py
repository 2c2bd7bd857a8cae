"""Following a job to its end: the live Terraform view, and the plain/JSON event stream.

The job's event stream (``WatchJob``) drives the display; a slow poll of ``GetJob`` runs
beside it so that a lost stream (NATS restarting, a proxy timing out) never leaves the
CLI waiting forever: whichever sees the terminal state first ends the wait, and the
final job row is always read back, because the row is the source of truth.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from alethia.cli.client import Api
from alethia.cli.render import TERMINAL, status_name, type_name
from alethia.errors import AlethiaError
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2

POLL_SECONDS = 1.0
LOG_LINES = 12
STREAM_GRACE_SECONDS = 3.0


def event_text(ev: events_pb2.JobEvent) -> str:
    """One human line for an event (Terraform's own message for log events)."""
    if ev.HasField("log") and ev.log.message:
        return ev.log.message
    if ev.type == "planned":
        c = ev.changes
        return f"planned: {c.add} to add, {c.change} to change, {c.destroy} to destroy"
    text = ev.type
    if ev.message:
        text += f": {ev.message}"
    return text


class JobView:
    """What the live view shows: the job's headline and its latest Terraform lines."""

    def __init__(self, job: snapshot_pb2.Job) -> None:
        self.job = job
        self.status = status_name(job.status)
        self.stage = ""
        self.lines: deque[str] = deque(maxlen=LOG_LINES)

    def apply(self, ev: events_pb2.JobEvent) -> None:
        if ev.status:
            self.status = status_name(ev.status)
        if ev.HasField("log") and ev.log.stage:
            self.stage = ev.log.stage
        line = event_text(ev)
        if line:
            self.lines.append(line)

    def render(self) -> Group:
        head = f"{type_name(self.job.type)} job {self.job.id}  {self.status}"
        if self.stage:
            head += f"  (terraform {self.stage})"
        if self.status == "QUEUED" and self.job.queue_position:
            head += f"  queue position {self.job.queue_position}"
        return Group(Spinner("dots", text=Text(head, style="bold")), *(Text("  " + s) for s in self.lines))


async def follow_job(
    api: Api,
    job: snapshot_pb2.Job,
    on_event: Callable[[events_pb2.JobEvent], None] | None = None,
    include_logs: bool = True,
) -> snapshot_pb2.Job:
    """Wait until ``job`` is terminal, feeding each event to ``on_event``; returns the final row."""
    done = asyncio.Event()

    async def stream() -> None:
        try:
            async for ev in api.watch_job(job.id, include_logs=include_logs):
                if on_event is not None:
                    on_event(ev)
                if status_name(ev.status) in TERMINAL:
                    done.set()
                    return
        except AlethiaError:
            return  # the poll still sees the end

    async def poll() -> None:
        while not done.is_set():
            current = await api.get_job(job.id)
            if status_name(current.status) in TERMINAL:
                done.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), POLL_SECONDS)

    streamer = asyncio.create_task(stream())
    poller = asyncio.create_task(poll())
    waiter = asyncio.create_task(done.wait())
    try:
        # The poller ends only at the terminal state or with an error (service gone): either ends the wait.
        await asyncio.wait({waiter, poller}, return_when=asyncio.FIRST_COMPLETED)
        if poller.done() and not poller.cancelled() and poller.exception() is not None:
            raise poller.exception()  # type: ignore[misc]
        # The stream ends by itself after the terminal event: give it time to deliver the rest
        # (a job that had already ended is replayed from its start).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(streamer), STREAM_GRACE_SECONDS)
    finally:
        for task in (streamer, poller, waiter):
            task.cancel()
        for task in (streamer, poller, waiter):
            with contextlib.suppress(asyncio.CancelledError, AlethiaError):
                await task
    return await api.get_job(job.id)


async def follow_live(api: Api, job: snapshot_pb2.Job, console: Console) -> snapshot_pb2.Job:
    """``--wait`` without ``--json``: a rich live view on a terminal, plain lines otherwise."""
    view = JobView(job)
    if not console.is_terminal:

        def plain(ev: events_pb2.JobEvent) -> None:
            console.print(event_text(ev), markup=False, highlight=False)

        return await follow_job(api, job, plain)

    with Live(view.render(), console=console, refresh_per_second=8, transient=True) as live:

        def update(ev: events_pb2.JobEvent) -> None:
            view.apply(ev)
            live.update(view.render())

        return await follow_job(api, job, update)
