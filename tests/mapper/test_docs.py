"""docs/mapping.md and templates/spec/*/variables.tf are generated from the mapper's tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alethia.mapping import hcl, providers
from alethia.mapping.docs import render

ROOT = Path(__file__).resolve().parents[2]


def test_docs_mapping_md_is_current() -> None:
    committed = (ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/mapping.md is stale: run `make docs`"


def test_docs_command_prints_the_page() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alethia.mapping.docs"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout == render()


def test_docs_name_every_variable_of_every_provider() -> None:
    page = render()
    for mapping in providers.REGISTRY.values():
        for var in mapping.variables:
            assert f"| `{var.name}` |" in page
    # The multi-variable rows appear in the summary table.
    assert "| `databases[]` | `rds_config` | `cloud_sql_databases` | `azure_databases` |" in page
    assert "`git_access_token`" in page


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_variables_tf_is_generated_from_the_table(provider: str) -> None:
    path = ROOT / "templates" / "spec" / provider / "variables.tf"
    assert path.read_text(encoding="utf-8") == hcl.variables_tf(providers.get(provider)), (
        "stale: run python -m alethia.mapping.hcl"
    )
    assert hcl.main(["--check"]) == 0
