"""``alethia tfvars``: the mapping of stages 3-4, offline, without any service running.

Prints exactly the ``terraform.tfvars.json`` the executor would give Terraform. Bad input
(a missing file, text that is not JSON, a malformed snapshot) exits with status 2 and one
line per problem on stderr, each naming the field; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from alethia.errors import AlethiaError


def tfvars(
    snapshot: Path = typer.Option(
        ..., "--snapshot", help="Snapshot JSON file (the snapshot, or what `alethia snapshot --json` prints)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the tfvars JSON to this file instead of stdout."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Accepted for consistency: the output is JSON anyway."
    ),
) -> None:
    """Map a config snapshot to the Spec cloud's terraform.tfvars.json."""
    # Imported here so `alethia --help` does not load the mapper.
    from alethia.mapping.render import render_tfvars

    try:
        data = snapshot.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {snapshot}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    try:
        rendered = render_tfvars(_unwrap(data))
    except AlethiaError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    if out is None:
        sys.stdout.write(rendered.tfvars_json)
        sys.stdout.flush()
        return
    try:
        out.write_text(rendered.tfvars_json, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out} ({rendered.provider}, template {rendered.template})", err=True)


# What `alethia snapshot --json` prints around the snapshot itself.
_ENVELOPE = {"snapshot", "config_hash", "spec_revision"}


def _unwrap(data: bytes) -> bytes | dict[str, Any]:
    """The snapshot itself, also when given the output of ``alethia snapshot --json``.

    Anything else goes to the mapper untouched, so its errors are the mapper's own.
    """
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser: the mapper says so
        return data
    if isinstance(doc, dict) and isinstance(doc.get("snapshot"), dict) and set(doc) <= _ENVELOPE:
        return doc["snapshot"]  # type: ignore[no-any-return]
    return data


def register(app: typer.Typer) -> None:
    """Add the ``tfvars`` command to the ``alethia`` CLI."""
    app.command("tfvars")(tfvars)
