"""The layers point one way: ``alethia`` is the library, ``services`` run on top of it.

- No module of ``alethia/`` imports ``services.*`` (the CLI, the stack and the mapping library
  are usable without any service's internals).
- ``services.X`` imports no ``services.Y``: what two services share lives in ``alethia/``
  (the spec service runs the mapper's rule set from :mod:`alethia.mapping`, not from
  ``services.mapper``).

Imports are read with :mod:`ast`, so imports inside functions (the lazy ones of the CLI)
count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import statement of ``source`` (the text of ``module``).

    Relative imports are resolved; ``from services import mapper`` names ``services.mapper``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "services":
                # `from services import mapper`: the names are the modules imported.
                yield from ((node.lineno, f"{target}.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, target


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that go against the layering, as ``module:line -> imported``."""
    top, _, rest = module.partition(".")
    own_service = "services." + rest.split(".")[0] if top == "services" and rest else None
    out = []
    for line, name in imported_modules(source, module, is_package):
        if not name.startswith("services."):
            continue
        if top == "alethia" or (
            own_service and not (name == own_service or name.startswith(own_service + "."))
        ):
            out.append(f"{module}:{line} -> {name}")
    return out


def _sources(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["alethia", "services"])
def test_layers_point_one_way(package: str) -> None:
    found = []
    for path in _sources(package):
        found += violations(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")
    assert found == [], "imports against the layering:\n" + "\n".join(found)


def test_the_mapping_library_is_where_the_services_find_it() -> None:
    # The walk above must actually see modules, or it would pass on an empty tree.
    names = {_module_name(p) for p in _sources("alethia")}
    assert {"alethia.mapping.render", "alethia.mapping.rules", "alethia.cli.tfvars"} <= names


@pytest.mark.parametrize(
    ("module", "source", "is_package", "expected"),
    [
        ("alethia.cli.tfvars", "def f():\n    from services.mapper.render import x\n", False, 1),
        ("alethia.cli", "import services.specs.store\n", True, 1),
        ("alethia.mapping.rules", "from services import mapper\n", False, 1),
        ("services.specs.rules", "from services.mapper.rules import snapshot_violations\n", False, 1),
        ("services.specs.rules", "from ..mapper import rules\n", False, 1),
        ("services.specs", "from .. import mapper\n", True, 1),
        ("services.specs.rules", "from services.specs.validation import validate_spec\n", False, 0),
        ("services.specs.rules", "from . import validation\n", False, 0),
        ("services.specs.rules", "from alethia.mapping.rules import snapshot_violations\n", False, 0),
        ("alethia.cli.tfvars", "from alethia.mapping.render import render_tfvars\n", False, 0),
    ],
)
def test_the_check_catches_a_wrong_import(module: str, source: str, is_package: bool, expected: int) -> None:
    assert len(violations(source, module, is_package)) == expected
