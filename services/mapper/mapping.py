"""Stage 4 building blocks: a provider's mapping declared as data.

A provider is a :class:`ProviderMapping`: a tuple of :class:`Var` rows (SpecConfig field
-> Terraform variable, type, description) and a table of :class:`Option` s, the
``provider_config`` / ``config`` keys it accepts. The same rows produce the tfvars
(:meth:`ProviderMapping.tfvars`), ``DescribeMapping`` and ``docs/mapping.md``
(:meth:`ProviderMapping.rows`), and ``templates/spec/<provider>/variables.tf``
(:mod:`services.mapper.hcl`), so the three cannot drift apart.

Invariants:
- every option key is checked (an unknown key is an error naming it, never dropped) and
  given its default when absent, so each emitted object has every attribute;
- the output depends only on the SpecConfig: the same Spec gives byte-identical JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alethia.errors import FieldViolation
from services.mapper.spec_config import SpecConfig


@dataclass(frozen=True)
class Option:
    """One accepted key of a ``provider_config`` (or a queue's ``config``) object."""

    key: str
    tf_type: str  # bool | number | string | list(string)
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this key, or None when it is."""
        if self.tf_type == "bool":
            if not isinstance(value, bool):
                return "expected true or false"
        elif self.tf_type == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return "expected a number"
            if self.integer and not float(value).is_integer():
                return "expected an integer"
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {_num(self.minimum)}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {_num(self.maximum)}"
        elif self.tf_type == "string":
            if not isinstance(value, str):
                return "expected a string"
        elif self.tf_type == "list(string)" and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            return "expected a list of strings"
        if self.choices:
            items = value if isinstance(value, list) else [value]
            bad = [v for v in items if v not in self.choices]
            if bad:
                return "must be one of " + ", ".join(str(c) for c in self.choices)
        return None

    def normalize(self, value: Any) -> Any:
        # Integral numbers travel as JSON integers (2.0 -> 2), so the same Spec given as
        # YAML or through protobuf Struct (doubles) renders identically.
        if self.tf_type == "number" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def get_path(obj: Any, path: str) -> Any:
    """``get_path(db, "scaling.min_capacity")``: attributes of models, keys of dicts."""
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Attr:
    """One attribute of the objects of a list variable (one object per Spec item)."""

    name: str
    tf_type: str
    source: str  # path inside the item: "engine", "scaling.min_capacity", "provider_config.multi_az"
    description: str
    derive: Callable[[Any, SpecConfig], Any] | None = None
    spec_field: str = ""  # documentation of a derived attribute's inputs (default: source)

    def value(self, item: Any, spec: SpecConfig) -> Any:
        if self.derive is not None:
            return self.derive(item, spec)
        return get_path(item, self.source)


@dataclass(frozen=True)
class Var:
    """One Terraform variable and the SpecConfig field(s) it comes from."""

    name: str
    source: str  # SpecConfig path ("network.cidr_block"), a list ("databases"), or inputs of a derived value
    description: str
    tf_type: str = ""
    attrs: tuple[Attr, ...] = ()
    derive: Callable[[SpecConfig], Any] | None = None

    @property
    def type(self) -> str:
        """The Terraform type constraint, on one line."""
        if self.attrs:
            inner = ", ".join(f"{a.name} = {a.tf_type}" for a in self.attrs)
            return f"list(object({{ {inner} }}))"
        return self.tf_type

    def value(self, spec: SpecConfig) -> Any:
        if self.derive is not None:
            return self.derive(spec)
        if self.attrs:
            return [{a.name: a.value(item, spec) for a in self.attrs} for item in get_path(spec, self.source)]
        return get_path(spec, self.source)


@dataclass(frozen=True)
class Row:
    """One line of ``DescribeMapping`` / ``docs/mapping.md``."""

    spec_field: str
    variable: str
    type: str
    description: str


# Where option objects live in a Spec: (container path for messages, list attribute or "", key).
OPTION_CONTAINERS: tuple[tuple[str, str, str], ...] = (
    ("network.provider_config", "network", "provider_config"),
    ("cluster.provider_config", "cluster", "provider_config"),
    ("dns.provider_config", "dns", "provider_config"),
    ("databases[].provider_config", "databases", "provider_config"),
    ("caches[].provider_config", "caches", "provider_config"),
    ("queues[].config", "queues", "config"),
    ("nosql_tables[].provider_config", "nosql_tables", "provider_config"),
    ("storage_buckets[].provider_config", "storage_buckets", "provider_config"),
)
_LISTS = {"databases", "caches", "queues", "nosql_tables", "storage_buckets"}


def _resolve_one(
    cfg: Mapping[str, Any], options: Sequence[Option], path: str, provider: str, out: list[FieldViolation]
) -> dict[str, Any]:
    by_key = {o.key: o for o in options}
    full: dict[str, Any] = {}
    for key in sorted(cfg):
        opt = by_key.get(key)
        if opt is None:
            accepted = ", ".join(sorted(by_key)) or "none"
            out.append(FieldViolation(f"{path}.{key}", f"unknown key for {provider} (accepted: {accepted})"))
            continue
        problem = opt.check(cfg[key])
        if problem:
            out.append(FieldViolation(f"{path}.{key}", problem))
    for opt in options:
        full[opt.key] = opt.normalize(cfg[opt.key]) if opt.key in cfg else opt.default
    return full


@dataclass(frozen=True)
class ProviderMapping:
    """A cloud's ProviderTfvars: its variables and accepted options, as data."""

    name: str
    template: str
    title: str
    variables: tuple[Var, ...]
    options: Mapping[str, tuple[Option, ...]]
    checks: Callable[[SpecConfig], list[FieldViolation]] = field(default=lambda spec: [])

    def resolve(self, spec: SpecConfig) -> tuple[SpecConfig, list[FieldViolation]]:
        """Check every option key and fill defaults; plus the provider's own rules.

        Returns the SpecConfig with complete option objects and the violations found.
        """
        out: list[FieldViolation] = []
        update: dict[str, Any] = {}
        for container, attr, key in OPTION_CONTAINERS:
            options = self.options.get(container, ())
            if attr in _LISTS:
                items = []
                for i, item in enumerate(getattr(spec, attr)):
                    full = _resolve_one(getattr(item, key), options, f"{attr}[{i}].{key}", self.name, out)
                    items.append(item.model_copy(update={key: full}))
                update[attr] = items
            else:
                comp = getattr(spec, attr)
                full = _resolve_one(getattr(comp, key), options, f"{attr}.{key}", self.name, out)
                update[attr] = comp.model_copy(update={key: full})
        out.extend(self.checks(spec))
        return spec.model_copy(update=update), out

    def tfvars(self, resolved: SpecConfig) -> dict[str, Any]:
        """The variables for a resolved SpecConfig (see :meth:`resolve`)."""
        return {v.name: integral(v.value(resolved)) for v in self.variables}

    def rows(self) -> list[Row]:
        """Every variable, and every attribute of list variables, as documentation rows."""
        out: list[Row] = []
        for var in self.variables:
            if var.attrs:
                # A derived list names its inputs itself ("queues[], topics[]").
                source = var.source if var.derive is not None else f"{var.source}[]"
                out.append(Row(source, var.name, var.type, var.description))
                for a in var.attrs:
                    spec_field = a.spec_field or f"{var.source}[].{a.source}"
                    out.append(Row(spec_field, f"{var.name}[].{a.name}", a.tf_type, a.description))
            else:
                out.append(Row(var.source, var.name, var.type, var.description))
        return out


def integral(value: Any) -> Any:
    """Integral floats as ints, recursively: ``1`` and ``1.0`` in a snapshot render alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def dumps(tfvars: Mapping[str, Any]) -> str:
    """Canonical ``terraform.tfvars.json`` text: sorted keys, fixed separators, ASCII, newline."""
    return (
        json.dumps(
            tfvars, sort_keys=True, indent=2, separators=(",", ": "), ensure_ascii=True, allow_nan=False
        )
        + "\n"
    )


# --- helpers shared by the provider tables ----------------------------------------------


def first(items_attr: str, field_name: str) -> Callable[[SpecConfig], str]:
    """The seed's single-value variables: the first item's value, "" when the list is empty."""

    def pick(spec: SpecConfig) -> str:
        items = getattr(spec, items_attr)
        return str(getattr(items[0], field_name)) if items else ""

    return pick


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Secret metadata as ``map(string)``: booleans and numbers written as JSON would."""
    out: dict[str, str] = {}
    for key in sorted(metadata):
        value = metadata[key]
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, float) and value.is_integer():
            out[key] = str(int(value))
        else:
            out[key] = json.dumps(value)
    return out


def identity_tags(spec: SpecConfig) -> dict[str, str]:
    """Tags every resource carries: who owns it and which Spec made it (empty ones left out)."""
    tags = {
        "managed_by": "alethia",
        "project": spec.project_name,
        "environment": spec.environment,
        "zone": spec.zone_id,
        "spec_id": spec.spec_id,
        "cloud_identity": spec.cloud_identity_id,
    }
    return {k: v for k, v in tags.items() if v}


TAG_SOURCE = "project_name, environment, zone_id, spec_id, cloud_identity_id"

SUBSCRIPTION_TYPE = "list(object({ name = string, protocol = string, endpoint = string }))"


def subscriptions(topic: Any, spec: SpecConfig) -> list[dict[str, str]]:
    """A topic's subscriptions as plain objects."""
    return [{"name": s.name, "protocol": s.protocol, "endpoint": s.endpoint} for s in topic.subscriptions]


def common_variables(region_var: str, account_var: str, account_desc: str) -> tuple[Var, ...]:
    """The variables every provider declares (names from the seed's table where it has one)."""
    return (
        Var("project_name", "project_name", "Project name; prefix of every resource name.", "string"),
        Var("environment", "environment", "Environment name (dev, staging, prod, ...).", "string"),
        Var(region_var, "region", "Cloud region all resources are created in.", "string"),
        Var(account_var, "cloud_account_id", account_desc, "string"),
        Var("spec_id", "spec_id", "Id of the Spec this configuration comes from.", "string"),
        Var("tenant_zone_id", "zone_id", "Tenant zone that owns the Spec.", "string"),
    )


def apps_repositories_var() -> Var:
    """The GitOps repositories ArgoCD syncs from (never with credentials)."""
    return Var(
        "apps_repositories",
        "repositories",
        "Git repositories ArgoCD syncs applications from (no credentials).",
        attrs=(
            Attr("url", "string", "url", "Repository URL (https or ssh, no credentials)."),
            Attr("branch", "string", "branch", "Branch to sync."),
            Attr("path", "string", "path", "Path inside the repository."),
        ),
    )
