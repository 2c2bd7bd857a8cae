"""What the CLI prints: protobuf -> plain dicts (the ``--json`` shape), tables, errors.

Machine output (``--json``) goes to stdout as one JSON document (``jobs watch --json``:
one event per line). Errors go to stderr, one line per problem, field first, never a
traceback. Exit codes: see :data:`alethia.cli.output.EXIT_CODES`; the printing of JSON and
errors lives there too (the fast path's small module), re-exported here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2

# Re-exported: the commands import printing and exit codes from here, with the rest.
from alethia.cli.output import (  # noqa: F401
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    error_lines,
    exit_code_for,
    print_error,
    print_json,
    print_json_line,
    report_error,
)
from alethia.spec_dict import cloud_identity_to_dict, spec_to_dict
from alethia.specs.v1 import specs_pb2

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from alethia.events.v1 import events_pb2
    from alethia.snapshot.v1 import snapshot_pb2

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "ERRORED"})
UNSUCCESSFUL = frozenset({"FAILED", "CANCELLED", "ERRORED"})

_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    """``stdout`` and ``stderr``: rich consoles, made (and rich imported) on first use.

    The ``--json`` read commands never touch them, so they do not pay for importing rich.
    """
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str) -> Console:
    if name not in _consoles:
        from rich.console import Console

        _consoles[name] = Console(stderr=name == "stderr", highlight=False, soft_wrap=True)
    return _consoles[name]


def _time(ts: timestamp_pb2.Timestamp, present: bool) -> str | None:
    return ts.ToJsonString() if present else None


def _json_value(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def status_name(status: int) -> str:
    from alethia.events.v1 import events_pb2  # loaded by the job commands only

    return events_pb2.JobStatus.Name(status)  # type: ignore[arg-type]


def type_name(job_type: int) -> str:
    from alethia.events.v1 import events_pb2

    return events_pb2.JobType.Name(job_type)  # type: ignore[arg-type]


def changes_to_dict(c: events_pb2.ChangeSummary) -> dict[str, Any]:
    return {
        "add": c.add,
        "change": c.change,
        "destroy": c.destroy,
        "resources": [{"address": r.address, "actions": list(r.actions)} for r in c.resources],
    }


def cost_to_dict(c: events_pb2.CostEstimate) -> dict[str, Any]:
    out: dict[str, Any] = {"status": c.status, "reason": c.reason}
    if c.status == "estimated":
        out["currency"] = c.currency
        out["total_monthly_cost"] = c.total_monthly_cost
    return out


def outputs_to_dict(outputs: Any) -> dict[str, Any]:
    """Terraform outputs by name; sensitive ones arrive already redacted."""
    return {o.name: _json_value(o.value_json) for o in outputs}


def job_to_dict(job: snapshot_pb2.Job) -> dict[str, Any]:
    """The job as ``--json`` prints it (the frozen snapshot is left to ``alethia snapshot``)."""
    return {
        "id": job.id,
        "spec_id": job.spec_id,
        "type": type_name(job.type),
        "status": status_name(job.status),
        "plan_job_id": job.plan_job_id or None,
        "config_hash": job.config_hash,
        "spec_revision": job.spec_revision,
        "workspace": job.workspace,
        "queue_position": job.queue_position,
        "changes": changes_to_dict(job.changes),
        "cost": cost_to_dict(job.cost),
        "outputs": outputs_to_dict(job.outputs),
        "sensitive_outputs": sorted(o.name for o in job.outputs if o.sensitive),
        "error": job.error or None,
        "attempt": job.attempt,
        "runner_id": job.runner_id or None,
        "requested_by": job.requested_by,
        "cancel_requested": job.cancel_requested,
        "artifacts": [
            {"name": a.name, "key": a.key, "sha256": a.sha256, "size": a.size} for a in job.artifacts
        ],
        "post_apply_steps": [
            {"name": s.name, "status": s.status, "detail": s.detail} for s in job.post_apply_steps
        ],
        "applied_by_job_id": job.applied_by_job_id or None,
        "lock_id": job.lock_id or None,
        "state_lock_id": job.state_lock_id or None,
        "resources_applied": job.resources_applied,
        "create_time": _time(job.create_time, job.HasField("create_time")),
        "start_time": _time(job.start_time, job.HasField("start_time")),
        "end_time": _time(job.end_time, job.HasField("end_time")),
    }


def event_to_dict(ev: events_pb2.JobEvent) -> dict[str, Any]:
    """One job event as a JSON line of ``jobs watch --json``."""
    out: dict[str, Any] = {
        "event_id": ev.event_id,
        "job_id": ev.job_id,
        "type": ev.type,
        "status": status_name(ev.status),
        "time": _time(ev.time, ev.HasField("time")),
        "message": ev.message,
    }
    if ev.HasField("log"):
        out["log"] = {
            "level": ev.log.level,
            "message": ev.log.message,
            "type": ev.log.type,
            "stage": ev.log.stage,
        }
    if ev.HasField("changes"):
        out["changes"] = changes_to_dict(ev.changes)
    if ev.outputs:
        out["outputs"] = outputs_to_dict(ev.outputs)
    return out


def identity_to_dict(identity: specs_pb2.CloudIdentity) -> dict[str, Any]:
    return cloud_identity_to_dict(identity)


def spec_dict(spec: specs_pb2.Spec) -> dict[str, Any]:
    return spec_to_dict(spec)


# ---------------------------------------------------------------- printing
# (the --json document, error lines and exit codes: alethia.cli.output)


def job_exit_code(job: snapshot_pb2.Job) -> int:
    return EXIT_JOB_FAILED if status_name(job.status) in UNSUCCESSFUL else EXIT_OK


def print_job_result(job: snapshot_pb2.Job, as_json: bool, label: str = "job") -> None:
    """Print the job; a job that ended FAILED/ERRORED/CANCELLED says so on stderr and exits non-zero."""
    import typer

    if as_json:
        print_json(job_to_dict(job))
    else:
        _console("stdout").print(job_table(job))
    code = job_exit_code(job)
    if code:
        detail = f": {' '.join(job.error.split())}" if job.error else ""
        _console("stderr").print(
            f"error: {label} {job.id} ended {status_name(job.status)}{detail}", markup=False
        )
        raise typer.Exit(code)


def job_table(job: snapshot_pb2.Job, show_outputs: bool = True) -> Table:
    """The summary shown after ``--wait`` and by ``jobs get``."""
    d = job_to_dict(job)
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    colour = {"SUCCEEDED": "green", "FAILED": "red", "ERRORED": "red", "CANCELLED": "yellow"}.get(
        d["status"], "cyan"
    )
    table.add_row("job", d["id"])
    table.add_row("type", d["type"])
    table.add_row("status", f"[{colour}]{d['status']}[/]")
    table.add_row("spec", d["spec_id"])
    if d["plan_job_id"]:
        table.add_row("plan job", d["plan_job_id"])
    table.add_row("workspace", d["workspace"])
    table.add_row("config hash", d["config_hash"][:16] + "…" if d["config_hash"] else "")
    if d["status"] == "QUEUED":
        table.add_row("queue position", str(d["queue_position"]))
    c = d["changes"]
    table.add_row(
        "changes",
        f"[green]+{c['add']} to add[/], [yellow]~{c['change']} to change[/], [red]-{c['destroy']} to destroy[/]",
    )
    cost = d["cost"]
    if cost["status"] == "estimated":
        table.add_row("cost", f"{cost['total_monthly_cost']:.2f} {cost['currency']}/month")
    elif cost["status"]:
        table.add_row("cost", f"{cost['status']}: {cost['reason']}")
    for name, value in d["outputs"].items() if show_outputs else ():
        shown = value if isinstance(value, str) else json.dumps(value)
        table.add_row(f"output {name}", shown)
    for step in d["post_apply_steps"]:
        table.add_row(f"step {step['name']}", f"{step['status']} {step['detail']}".strip())
    if d["error"]:
        table.add_row("error", f"[red]{d['error']}[/]")
    return table


def jobs_table(jobs: list[snapshot_pb2.Job]) -> Table:
    from rich.table import Table

    table = Table("id", "type", "status", "spec", "changes", "created")
    for job in jobs:
        d = job_to_dict(job)
        c = d["changes"]
        table.add_row(
            d["id"],
            d["type"],
            d["status"],
            d["spec_id"],
            f"+{c['add']} ~{c['change']} -{c['destroy']}",
            d["create_time"] or "",
        )
    return table


def specs_table(specs: list[specs_pb2.Spec]) -> Table:
    from rich.table import Table

    table = Table("id", "rev", "workspace", "provider", "identity")
    for s in specs:
        table.add_row(
            s.id,
            str(s.revision),
            f"{s.zone_id}/{s.project_name}-{s.environment}-{s.region}",
            s.provider,
            s.cloud_identity_id,
        )
    return table


def identities_table(identities: list[specs_pb2.CloudIdentity]) -> Table:
    from rich.table import Table

    table = Table("id", "name", "provider", "account id")
    for i in identities:
        table.add_row(i.id, i.name, i.provider, i.account_id)
    return table
