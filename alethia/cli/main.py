"""Entry point of the ``alethia`` console script.

Command modules each expose ``register(app)``; this file only lists them, so adding a
command group never touches another group's module. The plain ``--json`` read commands
are answered by :mod:`alethia.cli.fast` before Typer (and rich) are imported at all; every
other command line goes to the Typer app, built on first use.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# Modules that provide commands, each with ``register(app)``.
COMMAND_MODULES = [
    "alethia.cli.specs",
    "alethia.cli.jobs",
    "alethia.cli.tfvars",
    "alethia.cli.stack",
    "alethia.cli.unlock",
]


@functools.cache
def _app() -> typer.Typer:
    import typer

    return typer.Typer(
        name="alethia",
        help="Alethia provisioning pipeline: Specs to cloud infrastructure through Terraform.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


def __getattr__(name: str) -> Any:
    # ``main.app``: the Typer app (tests drive it with CliRunner), made on first access.
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_registered: list[str] = []


def _register_all() -> None:
    """Add every command module's commands to the app (once)."""
    for name in COMMAND_MODULES:
        if name not in _registered:
            importlib.import_module(name).register(_app())
            _registered.append(name)


def _exit_now(code: int) -> None:
    """Flush and end the process without the interpreter's teardown.

    The answer is printed and every channel is closed; what is left is Python tearing down
    some 300 modules and gRPC core's shutdown, about a third of a fast command's wall time
    on 2 cores (bench: ``cli_latency``). Nothing of ours runs at exit.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1  # stdout closed under us (``| head``): as a normal exit would report
    os._exit(code)


def main() -> None:
    """Run the CLI; an unexpected exception is one ``error:`` line (``ALETHIA_DEBUG=1``: traceback)."""
    try:
        from alethia.cli import fast

        code = fast.run(sys.argv[1:])
        if code is not None:
            _exit_now(code)
        _register_all()
        _app()()
    except Exception as exc:
        if os.environ.get("ALETHIA_DEBUG"):
            raise
        detail = " ".join(str(exc).split()) or "no detail"
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {detail} (ALETHIA_DEBUG=1 shows the traceback)\n"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
