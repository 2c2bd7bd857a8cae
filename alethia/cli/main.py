"""Entry point of the ``alethia`` console script.

Command modules each expose ``register(app)``; this file only lists them, so adding a
command group never touches another group's module.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

app = typer.Typer(
    name="alethia",
    help="Alethia provisioning pipeline: Specs to cloud infrastructure through Terraform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Modules that provide commands, each with ``register(app)``.
COMMAND_MODULES = [
    "alethia.cli.specs",
    "alethia.cli.jobs",
    "alethia.cli.tfvars",
    "alethia.cli.stack",
    "alethia.cli.unlock",
]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    """Run the CLI; an unexpected exception is one ``error:`` line (``ALETHIA_DEBUG=1``: traceback)."""
    _register_all()
    try:
        app()
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
