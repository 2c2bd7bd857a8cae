"""Options every command shares, and the one place that turns errors into exit codes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from alethia.cli.client import Api
from alethia.cli.render import EXIT_ERROR, exit_code_for, print_error
from alethia.cli.target import resolve
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
T = TypeVar("T")


def handle_errors(fn: F) -> F:
    """Errors become ``error: ...`` lines on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AlethiaError as err:
            print_error(err)
            raise typer.Exit(exit_code_for(err)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except OSError as exc:
            print_error(AlethiaError(str(exc)))
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


def with_api(stack_dir: str | None, work: Callable[[Api], Awaitable[T]]) -> T:
    """Find the stack, open an :class:`Api`, run ``work`` on it, close the channels."""
    target = resolve(stack_dir)

    async def main() -> T:
        async with Api(target) as api:
            return await work(api)

    return asyncio.run(main())
