"""``docs/mapping.md`` generated from the provider registry itself.

``python -m alethia.mapping.docs`` prints the page (``make docs`` writes it); a test fails
when the committed file and this output differ, so the documentation cannot drift from
the mapping the code performs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from alethia import cloud_limits
from alethia.mapping.core import OPTION_CONTAINERS, ProviderMapping
from alethia.mapping.providers import REGISTRY

# Snapshot fields that deliberately never reach terraform.tfvars.json, and why.
NOT_MAPPED: dict[str, str] = {
    "git_access_token": "a secret: always empty in the snapshot; the runner fetches it at run time "
    "for the GitOps step, and it never reaches Terraform",
    "terraform_version": "read by the executor, which checks it against the Terraform it runs",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _summary(mappings: list[ProviderMapping]) -> list[str]:
    order: list[str] = []
    by_field: dict[str, dict[str, list[str]]] = {}
    for m in mappings:
        for row in m.rows():
            if row.spec_field not in by_field:
                order.append(row.spec_field)
                by_field[row.spec_field] = {}
            by_field[row.spec_field].setdefault(m.name, []).append(row.variable)
    head = "| SpecConfig field | " + " | ".join(m.title for m in mappings) + " |"
    lines = [head, "|" + "---|" * (len(mappings) + 1)]
    for spec_field in order:
        cells = [", ".join(f"`{v}`" for v in by_field[spec_field].get(m.name, [])) or "—" for m in mappings]
        lines.append(f"| `{_cell(spec_field)}` | " + " | ".join(cells) + " |")
    return lines


def _provider(m: ProviderMapping) -> list[str]:
    lines = [
        f"## {m.title} (`templates/*/{m.template}/`)",
        "",
        "| variable | Terraform type | from SpecConfig | description |",
        "|---|---|---|---|",
    ]
    for row in m.rows():
        lines.append(
            f"| `{row.variable}` | `{_cell(row.type)}` | `{_cell(row.spec_field)}` | {_cell(row.description)} |"
        )
    lines += [
        "",
        f"### {m.title}: accepted `provider_config` / `config` keys",
        "",
        "Any other key is an error that names it. An absent key takes the default.",
        "",
        "| where | key | type | default | allowed | description |",
        "|---|---|---|---|---|---|",
    ]
    for container, _, _ in OPTION_CONTAINERS:
        for opt in m.options.get(container, ()):
            allowed = ", ".join(str(c) for c in opt.choices if c != "")
            if opt.minimum is not None or opt.maximum is not None:
                lo = "" if opt.minimum is None else f"≥ {opt.minimum:g}"
                hi = "" if opt.maximum is None else f"≤ {opt.maximum:g}"
                allowed = " ".join(x for x in (lo, hi) if x)
            lines.append(
                f"| `{container}` | `{opt.key}` | `{opt.tf_type}` | {_default(opt.default)} | {allowed} | {_cell(opt.description)} |"
            )
    lines += [
        "",
        f"### {m.title}: name limits",
        "",
        "Cloud names the template builds from Spec names; a longer one is an error on the Spec",
        "field that makes it long (`<prefix>` is `<project>-<environment>`).",
        "",
        "| name | built as | at most |",
        "|---|---|---|",
    ]
    for limit in m.name_limits:
        built = limit.pattern.replace("{prefix}", "<prefix>").replace("{name}", f"<{limit.component}[].name>")
        lines.append(f"| {limit.what} | `{built}` | {limit.limit} |")
    return lines


def _cloud_rules() -> list[str]:
    sizes = ", ".join(str(s) for s in cloud_limits.AZURE_POSTGRES_STORAGE_GB)
    return [
        "## Cloud rules (CreateSpec and the mapper)",
        "",
        "`alethia/cloud_limits.py` holds what each cloud accepts; CreateSpec refuses a Spec that breaks",
        "a rule (naming the field) and the mapper checks the same rules again before rendering.",
        "",
        "Supported Kubernetes versions (`cluster.cluster_version`):",
        "",
        *cloud_limits.kubernetes_versions_table(),
        "",
        f"- Azure PostgreSQL flexible servers: `storage_gb` is one of {sizes}.",
        "- GCP Memorystore: `node_type` is BASIC (`cluster_size` 1) or STANDARD_HA (`cluster_size` nodes =",
        f"  1 primary + up to {cloud_limits.MEMORYSTORE_MAX_REPLICAS} replicas; more than one replica needs "
        f"`memory_size_gb` >= {cloud_limits.MEMORYSTORE_READ_REPLICAS_MIN_GB}).",
        "- `cluster.provider_config.api_authorized_cidrs`: IPv4 CIDRs, never `0.0.0.0/0`, at most "
        f"{cloud_limits.MAX_API_CIDRS}.",
        "- Database engines per cloud and the name limits below.",
        "",
    ]


def render() -> str:
    """The whole ``docs/mapping.md``."""
    mappings = list(REGISTRY.values())
    lines = [
        "# Provider mapping: SpecConfig → terraform.tfvars.json",
        "",
        "<!-- Generated by `python -m alethia.mapping.docs` (`make docs`); a test fails when it is stale. -->",
        "",
        "The mapper (`services/mapper`, calling the library `alethia/mapping`) turns a frozen snapshot",
        "into a typed SpecConfig and then into",
        "the `terraform.tfvars.json` of the Spec's cloud (the stages and the snapshot contract:",
        "[architecture.md](architecture.md)). The established variable names (`rds_config`,",
        "`cloud_sql_engine`, `azure_db_engine`, `redis_instance_type`, `pubsub_topics`, ...) are kept",
        "exactly; every variable is named once, in `alethia/mapping/providers/<cloud>.py`. This",
        "page, `DescribeMapping` and `templates/spec/<cloud>/variables.tf` are all generated from",
        "those tables.",
        "",
        "Rules:",
        "",
        "- Where a single-value variable stands for a list component (`redis_instance_type`,",
        "  `cloud_sql_engine`, `memorystore_instance_type`, `azure_db_engine`, `azure_cache_sku`), it",
        '  carries the first item\'s value (`""` when the list is empty) and the whole list travels in',
        "  a list variable.",
        '- On GCP each queue becomes a Pub/Sub topic (`kind = "queue"`) with one pull subscription',
        "  named `<queue>-pull`, inside `pubsub_topics` next to the Spec's topics.",
        "- An existing network (`provision_network: false`) passes its id (`existing_vpc_id`,",
        "  `existing_network_id`, `existing_vnet_id`).",
        "- Every object of a list variable has every attribute: option keys take their defaults.",
        "- Values are data: Terraform does not evaluate `${...}` in `terraform.tfvars.json`.",
        "- Output is canonical JSON (sorted keys, compact separators, ASCII, trailing newline): the",
        "  same snapshot always gives the same bytes.",
        "",
        "Not passed to Terraform:",
        "",
    ]
    lines += [f"- `{k}`: {v}." for k, v in NOT_MAPPED.items()]
    lines += ["", "## Summary", "", *_summary(mappings), ""]
    lines += _cloud_rules()
    for m in mappings:
        lines += [*_provider(m), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    """Print the page on stdout."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
