"""``alethia snapshot|plan|deploy|destroy`` and ``alethia jobs ...``: stages 2 and 5 from the CLI."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from alethia.cli import fast
from alethia.cli.client import Api
from alethia.cli.common import JsonOpt, StackDirOpt, handle_errors, with_api
from alethia.cli.progress import event_text, follow_job, follow_live
from alethia.cli.render import (
    EXIT_USAGE,
    event_to_dict,
    job_exit_code,
    job_table,
    job_to_dict,
    jobs_table,
    print_job_result,
    print_json,
    print_json_line,
    status_name,
    stderr,
    stdout,
    type_name,
)
from alethia.events.v1 import events_pb2
from alethia.snapshot.v1 import snapshot_pb2

jobs_app = typer.Typer(help="Jobs: plans, deploys and destroys, queued and running.", no_args_is_help=True)

SpecIdArg = Annotated[str, typer.Argument(metavar="SPEC_ID", help="The Spec's id.")]
JobIdArg = Annotated[str, typer.Argument(metavar="JOB_ID")]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Follow the job to its end (live Terraform view), then summarize.")
]


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _interrupted(job_id: str, spec_id: str = "") -> typer.Exit:
    """Ctrl-C while following a job: the job is not stopped; say so, and how to go on."""
    if job_id:
        stderr.print(
            f"interrupted: job {job_id} goes on (Ctrl-C only stopped following it).\n"
            f"  follow it:  alethia jobs watch {job_id}\n"
            f"  cancel it:  alethia jobs cancel {job_id}",
            markup=False,
            highlight=False,
        )
    else:
        stderr.print(
            "interrupted before the job was confirmed; it may have been queued: "
            f"alethia jobs list --spec {spec_id}",
            markup=False,
            highlight=False,
        )
    return typer.Exit(EXIT_INTERRUPTED)


def _queue(
    stack_dir: str | None, spec_id: str, job_type: int, plan_job_id: str, wait: bool, as_json: bool
) -> None:
    queued: list[str] = []  # the job id, once the service answered

    async def work(api: Api) -> snapshot_pb2.Job:
        job = await api.queue_job(spec_id, job_type, plan_job_id)
        queued.append(job.id)
        if not wait:
            return job
        if as_json:
            return await follow_job(api, job, include_logs=False)
        stdout.print(
            f"queued {type_name(job.type)} job [bold]{job.id}[/]"
            + (f" (queue position {job.queue_position})" if job.queue_position > 1 else "")
        )
        return await follow_live(api, job, stdout)

    try:
        job = with_api(stack_dir, work)
    except KeyboardInterrupt:
        raise _interrupted(queued[0] if queued else "", spec_id) from None
    if not wait and not as_json:
        stdout.print(
            f"queued {type_name(job.type)} job [bold]{job.id}[/]; follow it with `alethia jobs watch {job.id}`"
        )
        stdout.print(job_table(job))
        return
    print_job_result(job, as_json)


@handle_errors
def snapshot(spec_id: SpecIdArg, as_json: JsonOpt = False, stack_dir: StackDirOpt = None) -> None:
    """The Spec frozen as a job would freeze it, and its config hash (no job is created)."""
    resp = with_api(stack_dir, lambda api: api.build_snapshot(spec_id))
    data = {
        "snapshot": json.loads(resp.snapshot_json),
        "config_hash": resp.config_hash,
        "spec_revision": resp.spec_revision,
    }
    if as_json:
        print_json(data)
    else:
        stdout.print_json(data=data)


@handle_errors
def plan(
    spec_id: SpecIdArg, wait: WaitOpt = False, as_json: JsonOpt = False, stack_dir: StackDirOpt = None
) -> None:
    """Queue a PLAN: what Terraform would change, with the plan saved for a later deploy."""
    _queue(stack_dir, spec_id, events_pb2.PLAN, "", wait, as_json)


@handle_errors
def deploy(
    spec_id: SpecIdArg,
    plan_job: Annotated[
        str,
        typer.Option("--plan-job", metavar="JOB_ID", help="Apply exactly this PLAN job's saved plan."),
    ] = "",
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve",
            help="Without --plan-job: apply whatever a fresh plan finds, unreviewed (as terraform apply -auto-approve).",
        ),
    ] = False,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Queue a DEPLOY of a reviewed plan (--plan-job; refused if the Spec changed since).

    Without --plan-job the runner plans and applies in one go, so nobody sees the changes
    first: that needs --auto-approve.
    """
    if not plan_job and not auto_approve:
        stderr.print(
            "error: --plan-job: required (or --auto-approve): without a reviewed plan the deploy "
            "applies whatever a fresh plan finds.\n"
            f"  review first:  alethia plan {spec_id} --wait, then alethia deploy {spec_id} --plan-job JOB_ID\n"
            f"  or accept it:  alethia deploy {spec_id} --auto-approve",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE)
    _queue(stack_dir, spec_id, events_pb2.DEPLOY, plan_job, wait, as_json)


@handle_errors
def destroy(
    spec_id: SpecIdArg,
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve",
            help="Confirm: destroy everything the workspace manages (as terraform destroy -auto-approve).",
        ),
    ] = False,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Queue a DESTROY of everything the Spec's workspace manages (needs --auto-approve).

    A destroy is planned and applied by the runner in one go, so nobody reviews it first:
    like ``terraform destroy`` run without a terminal, it must be confirmed on the command line.
    """
    if not auto_approve:
        stderr.print(
            "error: --auto-approve: required: a destroy removes everything the Spec's workspace manages, "
            "without a review step.\n"
            f"  see what it manages:  alethia jobs list --spec {spec_id}\n"
            f"  then confirm:         alethia destroy {spec_id} --auto-approve",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE)
    _queue(stack_dir, spec_id, events_pb2.DESTROY, "", wait, as_json)


@jobs_app.command("list")
@handle_errors
def jobs_list(
    spec: Annotated[str, typer.Option("--spec", metavar="SPEC_ID", help="Only this Spec's jobs.")] = "",
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Jobs, newest first (optionally of one Spec)."""
    if as_json:
        fast.jobs_list_json(stack_dir, spec)
        return
    stdout.print(jobs_table(with_api(stack_dir, lambda api: api.list_jobs(spec))))


@jobs_app.command("get")
@handle_errors
def jobs_get(job_id: JobIdArg, as_json: JsonOpt = False, stack_dir: StackDirOpt = None) -> None:
    """One job: status, queue position, changes, cost, outputs, error."""
    if as_json:
        fast.jobs_get_json(stack_dir, job_id)
        return
    stdout.print(job_table(with_api(stack_dir, lambda api: api.get_job(job_id))))


@jobs_app.command("watch")
@handle_errors
def jobs_watch(job_id: JobIdArg, as_json: JsonOpt = False, stack_dir: StackDirOpt = None) -> None:
    """The job's events and Terraform log from its start, live until it ends.

    With --json: one event per line, then the final job as the last line.
    """

    def show(ev: events_pb2.JobEvent) -> None:
        if as_json:
            print_json_line(event_to_dict(ev))
        else:
            stdout.print(event_text(ev), markup=False, highlight=False)

    async def work(api: Api) -> snapshot_pb2.Job:
        job = await api.get_job(job_id)
        return await follow_job(api, job, show)

    try:
        job = with_api(stack_dir, work)
    except KeyboardInterrupt:
        raise _interrupted(job_id) from None
    if as_json:
        print_json_line({"job": job_to_dict(job)})
        code = job_exit_code(job)
        if code:
            stderr.print(f"error: job {job.id} ended {status_name(job.status)}", markup=False)
            raise typer.Exit(code)
        return
    print_job_result(job, False)


@jobs_app.command("cancel")
@handle_errors
def jobs_cancel(job_id: JobIdArg, as_json: JsonOpt = False, stack_dir: StackDirOpt = None) -> None:
    """Cancel a job: a queued one at once, a running one by stopping Terraform cleanly."""
    job = with_api(stack_dir, lambda api: api.cancel_job(job_id))
    if as_json:
        print_json(job_to_dict(job))
    else:
        stdout.print(job_table(job))


def register(app: typer.Typer) -> None:
    """Add ``snapshot``, ``plan``, ``deploy``, ``destroy`` and the ``jobs`` group."""
    app.command("snapshot")(snapshot)
    app.command("plan")(plan)
    app.command("deploy")(deploy)
    app.command("destroy")(destroy)
    app.add_typer(jobs_app, name="jobs")
