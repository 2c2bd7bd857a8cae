"""Issue 12: the runner reads its environment at the edge only (settings, wiring), never deep
inside executor logic, which gets what it needs passed down, typed."""

from __future__ import annotations

import ast
from pathlib import Path

import services.executor

EXECUTOR = Path(services.executor.__file__).parent
EDGES = {"settings.py", "app.py", "__main__.py"}


def environment_reads(source: str) -> list[str]:
    """Where ``source`` reads the process environment: ``os.environ``/``os.environb``/``os.getenv``
    (also under another name for ``os``) and ``from os import environ, getenv``."""
    tree = ast.parse(source)
    os_names = {"os"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"line {node.lineno}: from os import {a.name}" for a in node.names
                      if a.name in ("environ", "environb", "getenv", "getenvb")]  # fmt: skip
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "environb", "getenv", "getenvb")
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_check_sees_every_way_of_reading_the_environment() -> None:
    src = (
        "import os\nimport os as o\nfrom os import getenv\n"
        "a = os.environ['X']\nb = o.getenv('Y')\nc = os.environb\nd = os.path.join('a')\n"
    )
    assert sorted(environment_reads(src)) == [
        "line 3: from os import getenv",
        "line 4: os.environ",
        "line 5: o.getenv",
        "line 6: os.environb",
    ]


def test_only_the_edges_of_the_executor_read_os_environ() -> None:
    modules = sorted(EXECUTOR.glob("*.py"))
    assert {p.name for p in modules} >= {"jobs.py", "terraform.py", "guard.py", "postapply.py", *EDGES}
    offenders = {
        p.name: reads for p in modules if p.name not in EDGES and (reads := environment_reads(p.read_text()))
    }
    assert offenders == {}, f"read the environment in settings.py/app.py and pass it down: {offenders}"
