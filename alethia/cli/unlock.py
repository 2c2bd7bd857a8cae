"""``alethia unlock SPEC_ID --lock-id ID``: release a stale Terraform state lock through a runner.

The release is an UNLOCK job, queued and claimed like any other, so it runs with the
backend configuration and credentials the runners use, and only when no other job of the
workspace runs (the snapshot service refuses it while one is RUNNING). The runner runs
``terraform force-unlock`` only when the lock held has exactly that ID.
"""

from __future__ import annotations

from typing import Annotated

import typer

from alethia.cli.client import Api
from alethia.cli.common import JsonOpt, StackDirOpt, handle_errors, with_api
from alethia.cli.progress import follow_job
from alethia.cli.render import print_job_result, stdout
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2


@handle_errors
def unlock(
    spec_id: Annotated[str, typer.Argument(metavar="SPEC_ID", help="The Spec whose state is locked.")],
    lock_id: Annotated[
        str,
        typer.Option(
            "--lock-id",
            metavar="ID",
            help="The lock to release, as the ERRORED job or the refused PLAN names it.",
        ),
    ],
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Release a stale state lock (terraform force-unlock, run by a runner); waits for the result."""

    async def work(api: Api) -> snapshot_pb2.Job:
        job = await api.queue_job(spec_id, events_pb2.UNLOCK, lock_id=lock_id)
        return await follow_job(api, job, include_logs=False)

    job = with_api(stack_dir, work)
    print_job_result(job, as_json, label="unlock job")
    if not as_json:
        stdout.print(f"released lock {lock_id} of workspace {job.workspace}")


def register(app: typer.Typer) -> None:
    """Add ``unlock``."""
    app.command("unlock")(unlock)
