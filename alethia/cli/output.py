"""What every CLI command prints the same way: ``--json`` documents, error lines, exit codes.

The small part of :mod:`alethia.cli.render` that the ``--json`` reads of
:mod:`alethia.cli.fast` need. Under ``PYTHONDONTWRITEBYTECODE`` (or before the first run
has cached bytecode) each module on a CLI call's path is compiled on every call, so that
path is kept to small modules; :mod:`alethia.cli.render` re-exports these names.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from alethia.errors import AlethiaError

EXIT_OK = 0
EXIT_ERROR = 1  # the request was refused or failed (bad input, not found, stale plan, ...)
EXIT_USAGE = 2  # wrong command line (typer's own code)
EXIT_JOB_FAILED = 3  # the job ended FAILED, ERRORED or CANCELLED
EXIT_UNAVAILABLE = 4  # no stack / a service cannot be reached
EXIT_CODES = {
    "ok": EXIT_OK,
    "error": EXIT_ERROR,
    "usage": EXIT_USAGE,
    "job_failed": EXIT_JOB_FAILED,
    "unavailable": EXIT_UNAVAILABLE,
}


def print_json(data: Any) -> None:
    """One JSON document on stdout (plain print: no wrapping, no markup)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def error_lines(err: AlethiaError) -> list[str]:
    """``error: <field>: <problem>`` lines; one per problem, single-line each."""
    return ["error: " + " ".join(line.split()) for line in err.lines() if line.strip()]


def print_error(err: AlethiaError) -> None:
    for line in error_lines(err):
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def exit_code_for(err: AlethiaError) -> int:
    if err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def report_error(exc: BaseException) -> int | None:
    """Print a handled error (domain error, Ctrl-C, OS error) and return its exit code.

    None when ``exc`` is not one the CLI handles (the caller re-raises it). The one place
    that turns errors into exit codes, for the Typer commands and the fast path alike.
    """
    # Here, not at the top: a successful ``--json`` read never needs the error model.
    from alethia.errors import AlethiaError

    if isinstance(exc, AlethiaError):
        print_error(exc)
        return exit_code_for(exc)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, OSError):
        print_error(AlethiaError(str(exc)))
        return EXIT_ERROR
    return None


__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_JOB_FAILED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "error_lines",
    "exit_code_for",
    "print_error",
    "print_json",
    "print_json_line",
    "report_error",
]
