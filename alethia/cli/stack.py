"""``alethia up`` and ``alethia demo``: the embedded stack from the command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alethia.cli.common import JsonOpt
from alethia.cli.render import EXIT_ERROR, print_error, print_json, stderr, stdout
from alethia.errors import AlethiaError
from alethia.stack.datadir import DEFAULT_DATA_DIR, StackAlreadyRunning, StackInfo


def up(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where everything is kept (SQLite, NATS, S3, git, logs).")
    ] = Path(DEFAULT_DATA_DIR),
    free_ports: Annotated[
        bool,
        typer.Option(
            "--free-ports", help="Listen on free ports instead of 50051-50054 (recorded in stack.json)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole stack on this machine until Ctrl-C: NATS, S3, and the four services."""
    from alethia.stack.supervisor import Stack, StackConfig, StackStartError, run_until_signal

    started = time.monotonic()
    # Progress goes to stderr so that --json leaves stdout to the one JSON document.
    stack = Stack(
        StackConfig(data_dir=data_dir, free_ports=free_ports), say=lambda m: stderr.print(f"[dim]{m}[/]")
    )

    def ready(info: StackInfo) -> None:
        if as_json:
            print_json({**info.to_json(), "pids": stack.pids()})
            return
        table = Table(
            "part", "listens on", "log", title=f"Alethia stack up in {time.monotonic() - started:.1f}s"
        )
        for name, addr in info.services.items():
            table.add_row(name, addr, info.logs.get(name, ""))
        table.add_row("nats", info.nats_url, info.logs.get("nats", "(external)"))
        table.add_row("s3", info.s3_endpoint, info.logs.get("s3", "(external)"))
        if info.gateway:
            table.add_row("gateway", info.gateway, info.logs.get("gateway", ""))
        stdout.print(table)
        if info.gateway_token_file:
            stdout.print(
                f"gateway: REST, gRPC-Web and gRPC on {info.gateway} (docs/api.md); the local admin's "
                f"token is in {info.gateway_token_file}."
            )
            stdout.print(
                f"console: {info.gateway}/ in a browser; sign in by pasting that token (docs/console.md)."
            )
        stdout.print(
            f"data in {info.data_dir}. Run `alethia` commands from this directory, or set "
            f"ALETHIA_STACK_DIR={info.data_dir}. Ctrl-C stops everything."
        )

    try:
        code = run_until_signal(stack, ready)
    except StackAlreadyRunning as exc:
        print_error(AlethiaError(str(exc)))
        raise typer.Exit(EXIT_ERROR) from None
    except (StackStartError, OSError) as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"error: {line}\n")
        raise typer.Exit(EXIT_ERROR) from None
    if code == 0 and not as_json:
        stdout.print("stopped")
    raise typer.Exit(code)


def demo(
    results: Annotated[
        Path | None,
        typer.Option(
            "--results", help="Where to copy the kubeconfig and apps checkout (default: a new temp dir)."
        ),
    ] = None,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep the stack's temporary data directory.")
    ] = False,
    provider: Annotated[
        str,
        typer.Option("--provider", help="Which example Spec: aws, gcp or azure (examples/<provider>.yaml)."),
    ] = "aws",
    example: Annotated[Path | None, typer.Option("--example", hidden=True, help="Another Spec file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan and deploy an example Spec on a throwaway stack (sandbox templates, real Terraform)."""
    from alethia.cli.demo import run_demo
    from alethia.stack.supervisor import StackStartError

    # With --json the narration goes to stderr and stdout carries only the result.
    console = stderr if as_json else stdout
    try:
        result = run_demo(console, results, keep_data, provider, example)
    except AlethiaError as err:
        print_error(err)
        raise typer.Exit(EXIT_ERROR) from None
    except (StackStartError, OSError) as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"error: {line}\n")
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        sys.stderr.write("error: demo interrupted; the stack was stopped\n")
        raise typer.Exit(130) from None
    if as_json:
        print_json(result.to_json())
        return
    stdout.rule("[bold green]demo finished")
    stdout.print(f"done in {result.seconds:.0f}s; results in {result.results_dir}")
    stdout.print(f"kubeconfig: {result.kubeconfig}")
    stdout.print(f"apps repository checkout: {result.apps_checkout}")


def register(app: typer.Typer) -> None:
    """Add ``up`` and ``demo``."""
    app.command("up")(up)
    app.command("demo")(demo)
