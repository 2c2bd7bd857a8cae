"""The ``--json`` read commands, run without Typer or rich when the command line is plain.

``alethia spec list --json`` is what scripts and dashboards run in a loop; importing Typer
(with click) and rich costs more than the call itself. :func:`run` recognises the plain
shapes of the read commands below (their own options, ``--json``, ``--stack-dir``) and
runs them with gRPC and the generated stubs only. Anything else, ``--help``, a typo, an
unknown or repeated option, returns None and the Typer app (the one definition of the
command line) handles it. The Typer commands call the same functions for ``--json``, so
both paths print the same document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alethia.cli.client import with_api
from alethia.cli.output import print_json, report_error
from alethia.spec_dict import cloud_identity_to_dict, spec_to_dict

# The job commands import alethia.cli.render (job_to_dict) when they run: the Spec commands,
# the ones run in loops, do not compile it (see alethia.cli.output on bytecode).


def spec_list_json(stack_dir: str | None, zone: str) -> None:
    """``alethia spec list --json``: all Specs (of one zone when given) as one JSON array."""
    specs = with_api(stack_dir, lambda api: api.list_specs(zone))
    print_json([spec_to_dict(s) for s in specs])


def spec_get_json(stack_dir: str | None, spec_id: str) -> None:
    """``alethia spec get ID --json``."""
    print_json(spec_to_dict(with_api(stack_dir, lambda api: api.get_spec(spec_id))))


def identity_list_json(stack_dir: str | None) -> None:
    """``alethia identity list --json``."""
    identities = with_api(stack_dir, lambda api: api.list_identities())
    print_json([cloud_identity_to_dict(i) for i in identities])


def jobs_list_json(stack_dir: str | None, spec_id: str) -> None:
    """``alethia jobs list --json``: jobs newest first (of one Spec when given)."""
    from alethia.cli.render import job_to_dict

    jobs = with_api(stack_dir, lambda api: api.list_jobs(spec_id))
    print_json([job_to_dict(j) for j in jobs])


def jobs_get_json(stack_dir: str | None, job_id: str) -> None:
    """``alethia jobs get ID --json``."""
    from alethia.cli.render import job_to_dict

    print_json(job_to_dict(with_api(stack_dir, lambda api: api.get_job(job_id))))


class _Shape:
    """A command's plain command line: positional arguments and value options besides ``--stack-dir``.

    A plain class: a dataclass costs about half a millisecond to make at import, on the
    path this module exists to keep short.
    """

    __slots__ = ("options", "positionals", "run")

    def __init__(
        self,
        positionals: int,
        options: tuple[str, ...],
        run: Callable[[str | None, list[str], dict[str, str]], None],
    ) -> None:
        self.positionals = positionals
        self.options = options
        self.run = run


_COMMANDS: dict[tuple[str, str], _Shape] = {
    ("spec", "list"): _Shape(0, ("--zone",), lambda d, _, o: spec_list_json(d, o.get("--zone", ""))),
    ("spec", "get"): _Shape(1, (), lambda d, p, _: spec_get_json(d, p[0])),
    ("identity", "list"): _Shape(0, (), lambda d, _, __: identity_list_json(d)),
    ("jobs", "list"): _Shape(0, ("--spec",), lambda d, _, o: jobs_list_json(d, o.get("--spec", ""))),
    ("jobs", "get"): _Shape(1, (), lambda d, p, _: jobs_get_json(d, p[0])),
}


def parse(argv: Sequence[str]) -> tuple[_Shape, str | None, list[str], dict[str, str]] | None:
    """The command, stack dir, positionals and options of a plain ``--json`` read; else None."""
    if len(argv) < 3:
        return None
    shape = _COMMANDS.get((argv[0], argv[1]))
    if shape is None:
        return None
    takes_value = (*shape.options, "--stack-dir")
    positionals: list[str] = []
    options: dict[str, str] = {}
    as_json = False
    rest = list(argv[2:])
    while rest:
        arg = rest.pop(0)
        if arg == "--json" and not as_json:
            as_json = True
            continue
        name, eq, value = arg.partition("=")
        if name in takes_value and name not in options:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            options[name] = value
            continue
        if arg.startswith("-") or len(positionals) == shape.positionals:
            return None  # --help, a short or unknown option, a repeat, one argument too many
        positionals.append(arg)
    if not as_json or len(positionals) != shape.positionals:
        return None
    stack_dir = options.pop("--stack-dir", None)
    return shape, stack_dir, positionals, options


def run(argv: Sequence[str]) -> int | None:
    """Run a plain ``--json`` read command; its exit code, or None when Typer must handle ``argv``."""
    parsed = parse(argv)
    if parsed is None:
        return None
    shape, stack_dir, positionals, options = parsed
    try:
        shape.run(stack_dir, positionals, options)
    except (Exception, KeyboardInterrupt) as exc:
        code = report_error(exc)
        if code is None:
            raise
        return code
    return 0


__all__ = [
    "identity_list_json",
    "jobs_get_json",
    "jobs_list_json",
    "parse",
    "run",
    "spec_get_json",
    "spec_list_json",
]
