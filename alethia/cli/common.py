"""Options every command shares, and the wrapper that turns errors into exit codes (``render.report_error``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from alethia.cli.client import with_api
from alethia.cli.render import EXIT_ERROR, report_error
from alethia.errors import AlethiaError

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
StackDirOpt = Annotated[
    str | None,
    typer.Option(
        "--stack-dir",
        envvar="ALETHIA_STACK_DIR",
        help="Data directory of the running `alethia up` (default ./.alethia).",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Errors become ``error: ...`` lines on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (AlethiaError, KeyboardInterrupt, OSError) as exc:
            code = report_error(exc)
            raise typer.Exit(EXIT_ERROR if code is None else code) from None

    return wrapper  # type: ignore[return-value]


__all__ = ["JsonOpt", "StackDirOpt", "handle_errors", "with_api"]
