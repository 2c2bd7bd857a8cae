"""Stage 4 building blocks: a provider's mapping declared as data.

A provider is a :class:`ProviderMapping`: a tuple of :class:`Var` rows (SpecConfig field
-> Terraform variable, type, description) and a table of :class:`Option` s, the
``provider_config`` / ``config`` keys it accepts. The same rows produce the tfvars
(:meth:`ProviderMapping.tfvars`), ``DescribeMapping`` and ``docs/mapping.md``
(:meth:`ProviderMapping.rows`), and ``templates/spec/<provider>/variables.tf``
(:mod:`alethia.mapping.hcl`), so the three cannot drift apart.

Invariants:
- every option key is checked (an unknown key is an error naming it, never dropped) and
  given its default when absent, so each emitted object has every attribute;
- the output depends only on the SpecConfig: the same Spec gives byte-identical JSON.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import orjson

from alethia import cloud_limits
from alethia.cloud_limits import NameLimit
from alethia.errors import FieldViolation
from alethia.mapping.spec_config import Data, SpecConfig


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

    @functools.cached_property
    def accepts(self) -> Callable[[Any], bool]:
        """A fast test that passes the common, valid value of this key (bool, string, finite
        number within bounds, list of strings, one of the choices); :meth:`check` words the rest."""
        test = self._type_test()
        if not self.choices:
            return test
        # Choices are compared as check() compares them (==), after the same type test.
        allowed = frozenset(self.choices)
        if self.tf_type == "list(string)":
            return lambda v: test(v) and allowed.issuperset(v)
        return lambda v: test(v) and v in allowed

    def _type_test(self) -> Callable[[Any], bool]:
        if self.tf_type == "bool":
            return _is_bool
        if self.tf_type == "string":
            return _is_str
        if self.tf_type == "list(string)":
            return _is_str_list
        if self.tf_type == "number":
            low = -math.inf if self.minimum is None else self.minimum
            high = math.inf if self.maximum is None else self.maximum
            # An int within bounds is finite and integral; floats take the slow path.
            return lambda v: v.__class__ is int and low <= v <= high
        return _never

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this key, or None when it is."""
        if self.tf_type == "bool":
            if not isinstance(value, bool):
                return "expected true or false"
        elif self.tf_type == "number":
            # ints are compared as ints: float(10**400) would raise OverflowError, not refuse.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return "expected a number"
            if isinstance(value, float) and not math.isfinite(value):
                return "expected a number"
            if self.integer and isinstance(value, float) and not value.is_integer():
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


def _never(value: Any) -> bool:
    return False


def _is_bool(value: Any) -> bool:
    return value is True or value is False


def _is_str(value: Any) -> bool:
    return value.__class__ is str


def _is_str_list(value: Any) -> bool:
    return value.__class__ is list and all(v.__class__ is str for v in value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def integral(value: Any) -> Any:
    """Integral floats as ints: ``1`` and ``1.0`` in a snapshot (or a protobuf Struct double)
    render alike."""
    return int(value) if value.__class__ is float and value.is_integer() else value


def _bind(env: dict[str, Any], function: Callable[..., Any]) -> str:
    """Put ``function`` in the namespace of compiled code under a fresh name, and return it."""
    name = f"_derive{len(env)}"
    env[name] = function
    return name


def _read(path: str, name: str) -> str:
    """Python source reading ``path`` ("scaling.min_capacity") from the variable ``name``."""
    return name + "".join(f"[{part!r}]" for part in path.split("."))


@dataclass(frozen=True)
class Attr:
    """One attribute of the objects of a list variable (one object per Spec item)."""

    name: str
    tf_type: str
    source: str  # path inside the item: "engine", "scaling.min_capacity", "provider_config.multi_az"
    description: str
    derive: Callable[[Data, Data], Any] | None = None  # (item, spec) -> value
    spec_field: str = ""  # documentation of a derived attribute's inputs (default: source)


@dataclass(frozen=True)
class Var:
    """One Terraform variable and the SpecConfig field(s) it comes from."""

    name: str
    source: str  # SpecConfig path ("network.cidr_block"), a list ("databases"), or inputs of a derived value
    description: str
    tf_type: str = ""
    attrs: tuple[Attr, ...] = ()
    derive: Callable[[Data], Any] | None = None  # spec -> value

    @property
    def type(self) -> str:
        """The Terraform type constraint, on one line."""
        if self.attrs:
            inner = ", ".join(f"{a.name} = {a.tf_type}" for a in self.attrs)
            return f"list(object({{ {inner} }}))"
        return self.tf_type

    def source_code(self, env: dict[str, Any]) -> str:
        """Python source of this variable's value from the resolved Spec ``d`` (see
        :meth:`ProviderMapping.tfvars`); derive functions are put in ``env`` under unique names."""
        if self.derive is not None:
            return f"{_bind(env, self.derive)}(d)"
        if self.attrs:
            item_model = _field_type(SpecConfig, self.source)
            fields = []
            for a in self.attrs:
                if a.derive is not None:
                    value = f"{_bind(env, a.derive)}(item, d)"
                else:
                    value = _number(_read(a.source, "item"), a.tf_type, item_model, a.source)
                fields.append(f"{a.name!r}: {value}")
            return f"[{{{', '.join(fields)}}} for item in {_read(self.source, 'd')}]"
        return _number(_read(self.source, "d"), self.tf_type, SpecConfig, self.source)


def _field_type(model: Any, path: str) -> Any:
    """The type at ``path`` in a pydantic model (a list's item type), or None past the models."""
    for part in path.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        model = fields[part].annotation
        if get_origin(model) is list:
            model = get_args(model)[0]
    return model


def _number(code: str, tf_type: str, model: Any, path: str) -> str:
    """``code`` wrapped in ``integral`` where the value may be an integral float: a float field
    of the Spec, or anything not known to be an int. Option values were normalized by resolve
    and int fields hold ints, so most numbers skip the call."""
    if tf_type != "number" or any(p in _OPTION_KEYS for p in path.split(".")):
        return code
    return code if _field_type(model, path) is int else f"integral({code})"


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
_OPTION_KEYS = {key for _, _, key in OPTION_CONTAINERS}


def _options_pass(cfg: Mapping[str, Any], tests: Mapping[str, Callable[[Any], bool]]) -> bool:
    """Whether every value of ``cfg`` passes its key's fast test (the common case: nothing to word).

    ``tests``: each key's :attr:`Option.accepts`, looked up once per table rather than per value.
    """
    for key, value in cfg.items():
        test = tests.get(key)
        if test is None or not test(value):
            return False
    return True


def _check_options(
    cfg: Mapping[str, Any], by_key: Mapping[str, Option], path: str, provider: str, out: list[FieldViolation]
) -> None:
    """The violations of an options object that did not pass :func:`_options_pass`, by key."""
    for key in sorted(cfg):
        opt = by_key.get(key)
        if opt is not None and opt.accepts(cfg[key]):
            continue
        if opt is None:
            accepted = ", ".join(sorted(by_key)) or "none"
            out.append(FieldViolation(f"{path}.{key}", f"unknown key for {provider} (accepted: {accepted})"))
            continue
        problem = opt.check(cfg[key])
        if problem:
            out.append(FieldViolation(f"{path}.{key}", problem))


@dataclass(frozen=True)
class _Defaults:
    """One container's options, ready to fill an object in: built once per table."""

    values: dict[str, Any]  # every accepted key with its default, in table order
    lists: tuple[str, ...]  # keys whose default is a list: shared table data, copied out
    # Keys whose integral values travel as JSON integers (2.0 -> 2), so the same Spec given as
    # YAML or through a protobuf Struct (doubles) renders identically.
    numbers: frozenset[str]

    @classmethod
    def of(cls, options: Sequence[Option]) -> _Defaults:
        return cls(
            {o.key: o.default for o in options},
            tuple(o.key for o in options if isinstance(o.default, list)),
            frozenset(o.key for o in options if o.tf_type == "number"),
        )

    def complete(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """Every accepted key present, so each emitted object has every attribute."""
        out = self.values.copy()
        for key in self.lists:
            out[key] = list(out[key])
        numbers = self.numbers
        for key, value in cfg.items():
            if key in out:  # checked before: an unknown key was a violation
                # integral() inlined: this runs for every option key of every render.
                if value.__class__ is float and key in numbers and value.is_integer():
                    value = int(value)
                out[key] = value
        return out


@dataclass(frozen=True)
class ProviderMapping:
    """A cloud's ProviderTfvars: its variables and accepted options, as data."""

    name: str
    template: str
    title: str
    variables: tuple[Var, ...]
    options: Mapping[str, tuple[Option, ...]]
    checks: Callable[[Data], list[FieldViolation]] = field(default=lambda spec: [])

    @property
    def name_limits(self) -> tuple[NameLimit, ...]:
        """Cloud names built from Spec names, and their limits (``alethia.cloud_limits``)."""
        return cloud_limits.NAME_LIMITS.get(self.name, ())

    @property
    def engines(self) -> tuple[str, ...]:
        """Database engines the cloud's template builds (``alethia.cloud_limits``)."""
        return cloud_limits.ENGINES.get(self.name, ())

    @functools.cached_property
    def _accepted(
        self,
    ) -> tuple[tuple[str, str, bool, dict[str, Callable[[Any], bool]], dict[str, Option]], ...]:
        # (component, key, is a list, fast tests by key, options by key) per container, built
        # once rather than for every object checked.
        return tuple(
            (
                attr,
                key,
                attr in _LISTS,
                {o.key: o.accepts for o in self.options.get(container, ())},
                {o.key: o for o in self.options.get(container, ())},
            )
            for container, attr, key in OPTION_CONTAINERS
        )

    def violations(self, spec: Data) -> list[FieldViolation]:
        """Unknown or ill-typed option keys, the provider's own rules, and ``alethia.cloud_limits``.

        ``spec`` is a well-typed Spec as data (``SpecConfig.model_dump()``); it is only read.
        """
        out: list[FieldViolation] = []
        for attr, key, is_list, tests, by_key in self._accepted:
            # A path is only built for an object with something to word (most are empty or pass).
            if is_list:
                for i, item in enumerate(spec[attr]):
                    cfg = item[key]
                    if cfg and not _options_pass(cfg, tests):
                        _check_options(cfg, by_key, f"{attr}[{i}].{key}", self.name, out)
            else:
                cfg = spec[attr][key]
                if cfg and not _options_pass(cfg, tests):
                    _check_options(cfg, by_key, f"{attr}.{key}", self.name, out)
        out.extend(self.checks(spec))
        # The per-cloud rules CreateSpec enforces too (versions, engines, sizes, name limits).
        out.extend(cloud_limits.violations(self.name, spec))
        return out

    def resolve(self, data: Data) -> Data:
        """A checked Spec's data with every option key filled in (defaults), in place.

        In place because the data is the caller's own fresh copy (``decode_snapshot_data``):
        no deep copy.
        """
        for attr, key, is_list, complete in self._fills:
            if is_list:
                for item in data[attr]:
                    item[key] = complete(item[key])
            else:
                item = data[attr]
                item[key] = complete(item[key])
        return data

    @functools.cached_property
    def _fills(self) -> tuple[tuple[str, str, bool, Callable[[Mapping[str, Any]], dict[str, Any]]], ...]:
        # (component, key, is a list, how to complete its objects) per container, built once.
        return tuple(
            (attr, key, attr in _LISTS, _Defaults.of(self.options.get(container, ())).complete)
            for container, attr, key in OPTION_CONTAINERS
        )

    @functools.cached_property
    def _tfvars(self) -> Callable[[Data], dict[str, Any]]:
        # The table compiled once into one function returning one dict display: it runs for
        # every render, and reading each path through a chain of small getters cost several
        # times more. Only our own table goes in (names and paths as repr() literals).
        env: dict[str, Any] = {"integral": integral}
        entries = ",\n        ".join(f"{v.name!r}: {v.source_code(env)}" for v in self.variables)
        exec(f"def tfvars(d):\n    return {{\n        {entries}\n    }}\n", env)
        return env["tfvars"]  # type: ignore[no-any-return]

    def tfvars(self, data: Data) -> dict[str, Any]:
        """The variables for resolved data (see :meth:`resolve`)."""
        return self._tfvars(data)

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


def dumps(tfvars: Mapping[str, Any]) -> str:
    """Canonical ``terraform.tfvars.json`` text: sorted keys, compact separators, ASCII, newline.

    The standard library's encoder (``_TFVARS_ENCODER``) defines these bytes. orjson writes
    the same bytes for almost every tfvars several times faster, so it goes first, and its
    output is taken only when nothing in it could differ (:func:`_same_as_standard`);
    otherwise, or when orjson refuses a value, the standard encoder writes the file. Compact
    on purpose: without ``indent`` the standard library uses its C encoder; ``python -m
    json.tool`` shows the same file indented.
    """
    try:
        raw = orjson.dumps(tfvars, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # ints past 64 bits, lone surrogates, subclasses, nesting past 254: the standard encoder's
    else:
        if _same_as_standard(raw):
            return raw.decode("ascii") + "\n"
    return _TFVARS_ENCODER.encode(tfvars) + "\n"


def _same_as_standard(raw: bytes) -> bool:
    """Whether orjson's ``raw`` is byte for byte what ``_TFVARS_ENCODER`` writes.

    They differ only where checked here (tests/mapper/test_encoding.py holds them to it):
    - non-ASCII text and DEL, which orjson writes as UTF-8 and the standard library escapes
      (``ensure_ascii``); every other character both escape alike;
    - floats below 1e-4, written ``0.00001`` / ``1e-6`` by orjson and ``1e-05`` / ``1e-06``
      by ``repr``: both forms contain ``0.0000`` or a digit before ``e-``;
    - NaN and infinities, which orjson writes as ``null`` where the standard encoder refuses
      them (``allow_nan=False``): any ``null`` takes the standard path.
    Each test is one scan in C; a string that merely contains such text takes the slow path.
    """
    return (
        raw.isascii()
        and b"\x7f" not in raw
        and b"0.0000" not in raw
        and b"null" not in raw
        and _SMALL_EXPONENT.search(raw) is None
    )


# Built once: json.dumps with arguments builds a new encoder at every call.
_TFVARS_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
# Sorted keys like the standard encoder; types orjson would write but the standard encoder
# writes differently or refuses (subclasses of str/int/dict/list, datetimes, dataclasses)
# raise instead, and go to the standard encoder.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# "e-" after a digit: the exponent of a small float (the "e-" of "kube-proxy" is not one).
_SMALL_EXPONENT = re.compile(rb"e-(?<=[0-9]e-)")


# --- helpers shared by the provider tables ----------------------------------------------


def first(items_attr: str, field_name: str) -> Callable[[Data], str]:
    """The single-value variables of docs/mapping.md: the first item's value, "" when the list is empty."""

    def pick(spec: Data) -> str:
        items = spec[items_attr]
        return str(items[0][field_name]) if items else ""

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
        elif value is True or value is False:
            out[key] = "true" if value else "false"
        elif value.__class__ is int:
            out[key] = int.__repr__(value)  # what json.dumps writes, without building an encoder
        else:
            out[key] = json.dumps(value)
    return out


def identity_tags(spec: Data) -> dict[str, str]:
    """Tags every resource carries: who owns it and which Spec made it (empty ones left out)."""
    tags = {
        "managed_by": "alethia",
        "project": spec["project_name"],
        "environment": spec["environment"],
        "zone": spec["zone_id"],
        "spec_id": spec["spec_id"],
        "cloud_identity": spec["cloud_identity_id"],
    }
    return {k: v for k, v in tags.items() if v}


TAG_SOURCE = "project_name, environment, zone_id, spec_id, cloud_identity_id"

SUBSCRIPTION_TYPE = "list(object({ name = string, protocol = string, endpoint = string }))"


def subscriptions(topic: Data, spec: Data) -> list[dict[str, str]]:
    """A topic's subscriptions as plain objects."""
    return [
        {"name": s["name"], "protocol": s["protocol"], "endpoint": s["endpoint"]}
        for s in topic["subscriptions"]
    ]


def common_variables(region_var: str, account_var: str, account_desc: str) -> tuple[Var, ...]:
    """The variables every provider declares (names as documented in docs/mapping.md)."""
    return (
        Var("project_name", "project_name", "Project name; prefix of every resource name.", "string"),
        Var("environment", "environment", "Environment name (dev, staging, prod, ...).", "string"),
        Var(region_var, "region", "Cloud region all resources are created in.", "string"),
        Var(account_var, "cloud_account_id", account_desc, "string"),
        Var("spec_id", "spec_id", "Id of the Spec this configuration comes from.", "string"),
        Var("tenant_zone_id", "zone_id", "Tenant zone that owns the Spec.", "string"),
    )


def secrets_var(variable: str, description: str, name_description: str, metadata_description: str) -> Var:
    """A cloud's secret store entries: names and metadata only, never values (same shape everywhere)."""
    return Var(
        variable,
        "secrets",
        description,
        attrs=(
            Attr("name", "string", "name", name_description),
            Attr(
                "metadata",
                "map(string)",
                "metadata",
                metadata_description,
                derive=lambda s, _: metadata_strings(s["metadata"]),
            ),
        ),
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


# Environments that get deletion protection and final snapshots whatever the Spec says.
PRODUCTION_ENVIRONMENTS = ("prod", "production")


def api_cidrs_option() -> Option:
    """The networks allowed to reach the cluster API (same key on every cloud)."""
    return Option(
        "api_authorized_cidrs",
        "list(string)",
        [],
        "IPv4 CIDRs allowed to reach the Kubernetes API; the runner adds its egress CIDRs "
        "(ALETHIA_RUNNER_EGRESS_CIDRS) so post-apply steps reach it; none at all = private API "
        "endpoint only.",
    )


def hardening_variables() -> tuple[Var, ...]:
    """Variables every cloud's template uses to stay secure by default."""
    return (
        Var(
            "cluster_api_authorized_cidrs",
            "cluster.provider_config.api_authorized_cidrs",
            "The Spec's CIDRs allowed to reach the Kubernetes API (the runner's egress CIDRs are added); "
            "none at all = private only.",
            "list(string)",
        ),
        Var(
            "production",
            "environment",
            'Production environment ("prod" or "production"): deletion protection everywhere.',
            "bool",
            derive=lambda spec: spec["environment"] in PRODUCTION_ENVIRONMENTS,
        ),
    )
