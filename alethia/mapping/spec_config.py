"""Stage 3: the frozen snapshot (docs/architecture.md, "The snapshot contract") as a strict, typed ``SpecConfig``.

Deserialization is all-or-nothing: :func:`parse_snapshot` either returns a complete
``SpecConfig`` or raises :class:`alethia.errors.InvalidArgument` listing *every* problem
by its path (``cluster.node_min_size: expected an integer``). Pydantic's own wording and
tracebacks never reach a user: :func:`_translate` turns each pydantic error into one plain
sentence. Types are strict (``"3"`` is not an integer, ``1`` is not ``true``) and unknown
keys are errors at every level, so a typo in a snapshot cannot be silently dropped.

The classes themselves are generated from the Spec declaration (``spec_model.py``, see
:mod:`alethia.spec_schema`); this module parses into them. The mapper and the rule set read
the Spec as plain data: :func:`decode_snapshot_data` validates with the very same schema
straight into dicts (``model_dump()``'s shape), without building the models.

Checks that need more than one field (node sizes in order, unique names, a CIDR when a
network is provisioned) run after the types are known, in :func:`semantic_violations`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from alethia import field_paths
from alethia.cloud_limits import ipv4_prefixlen
from alethia.errors import FieldViolation, InvalidArgument
from alethia.mapping.spec_model import (
    CacheConfig,
    ClusterConfig,
    DatabaseConfig,
    DnsConfig,
    JsonObject,
    NetworkConfig,
    NosqlTableConfig,
    QueueConfig,
    RepositoryConfig,
    ScalingConfig,
    SecretConfig,
    SpecConfig,
    StorageBucketConfig,
    SubscriptionConfig,
    TopicConfig,
)
from alethia.naming import repository_url_credentials
from alethia.terraform_versions import ConstraintError, parse_constraints

__all__ = [
    "PROVIDERS",
    "CacheConfig",
    "ClusterConfig",
    "Data",
    "DatabaseConfig",
    "DnsConfig",
    "JsonObject",
    "NetworkConfig",
    "NosqlTableConfig",
    "QueueConfig",
    "RepositoryConfig",
    "ScalingConfig",
    "SecretConfig",
    "SpecConfig",
    "StorageBucketConfig",
    "SubscriptionConfig",
    "TopicConfig",
    "decode_snapshot",
    "decode_snapshot_data",
    "drop_optional_nulls",
    "field_path",
    "parse_snapshot",
    "semantic_violations",
]

PROVIDERS = ("aws", "gcp", "azure")

# Names become parts of cloud resource names and for_each keys: DNS labels keep them valid
# everywhere (the specs service enforces the same rule when a Spec is written).
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")

Data = dict[str, Any]  # a validated Spec (or one of its items) as plain JSON data: SpecConfig.model_dump()

# --- parsing ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN/Infinity (not JSON, and Terraform cannot read them)."""
    return json.loads(text, parse_constant=_reject_constant)


def parse_snapshot(snapshot: str | bytes | Mapping[str, Any]) -> SpecConfig:
    """The snapshot (JSON text or an already decoded object) as a validated ``SpecConfig``.

    Raises ``InvalidArgument`` with one violation per problem (types and cross-field rules);
    never returns a partially filled object.
    """
    spec = decode_snapshot(snapshot)
    problems = semantic_violations(spec.model_dump())
    if problems:
        raise InvalidArgument(problems)
    return spec


def decode_snapshot(snapshot: str | bytes | Mapping[str, Any]) -> SpecConfig:
    """Types only: JSON text or a decoded object as a ``SpecConfig`` (every type error at once).

    Cross-field rules are left to :func:`semantic_violations`, so a caller can report them
    together with its own (the mapper adds the provider's accepted options).
    """
    if isinstance(snapshot, (str, bytes)):
        # Fast path: parse and validate in one pass inside pydantic-core. Any failure is
        # redone below with the standard library parser, whose errors we can word for users
        # (a snapshot with ``null`` optional values takes that path too, and passes there).
        # NaN/Infinity, which that parser accepts, cannot slip through: float fields refuse
        # them (allow_inf_nan=False) and free-form values are checked where they are read
        # (option values and secret metadata must be finite).
        try:
            return SpecConfig.model_validate_json(snapshot)
        except ValidationError:
            pass
        try:
            data = load_json(snapshot)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument.one("", f"snapshot is not valid JSON ({_json_reason(exc)})") from None
        except RecursionError:
            # "[[[[…" nested past the parser's stack: hostile input, not a server fault.
            raise InvalidArgument.one("", "snapshot is nested too deeply") from None
    else:
        data = snapshot
    if not isinstance(data, Mapping):
        raise InvalidArgument.one("", "snapshot must be a JSON object")
    try:
        spec = SpecConfig.model_validate(drop_optional_nulls(SpecConfig, data))
    except ValidationError as exc:
        raise InvalidArgument(_translate(exc.errors(include_url=False))) from None
    return spec


def _plain(schema: Any) -> Any:
    """A copy of a core schema in which every model is a typed dict with the same fields,
    configuration (strict, extra keys forbidden, no NaN) and defaults.

    The same constraints, so it accepts exactly what the models accept; its output is the
    models' ``model_dump()``, built without model instances in between.
    """
    if isinstance(schema, list):
        return [_plain(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "model":
        inner = schema["schema"]
        if inner.get("type") != "model-fields" or inner.get("computed_fields"):
            raise TypeError(f"{schema['cls'].__name__}: only plain model fields convert to a typed dict")
        config = schema["config"]
        fields = {}
        for name, f in inner["fields"].items():
            field_schema = _plain(f["schema"])
            fields[name] = cs.typed_dict_field(field_schema, required=field_schema["type"] != "default")
        return cs.typed_dict_schema(
            fields, extra_behavior=config["extra_fields_behavior"], config=config, ref=schema.get("ref")
        )
    out = {key: _plain(value) for key, value in schema.items()}
    factory = out.get("default_factory")
    if isinstance(factory, type) and issubclass(factory, BaseModel):
        # A component absent from the snapshot (``dns``, ``scaling``): its defaults as data.
        out["default_factory"] = lambda: factory().model_dump()
    return out


# SpecConfig's own schema, as typed dicts: the mapper's fast path (see decode_snapshot_data).
_SPEC_DATA = SchemaValidator(_plain(SpecConfig.__pydantic_core_schema__))


def decode_snapshot_data(snapshot: str | bytes | Mapping[str, Any]) -> Data:
    """:func:`decode_snapshot` as plain data: what ``decode_snapshot(snapshot).model_dump()`` gives.

    The mapper reads the Spec as data (rules, option defaults, tfvars); validating straight
    into dicts saves building the models and dumping them again. Any input that does not
    pass at once (a ``null`` optional value, any error) takes :func:`decode_snapshot`, so
    the errors are worded by it, exactly as before.
    """
    try:
        if isinstance(snapshot, (str, bytes)):
            return _SPEC_DATA.validate_json(snapshot)  # type: ignore[no-any-return]
        if snapshot.__class__ is dict:
            return _SPEC_DATA.validate_python(drop_optional_nulls(SpecConfig, snapshot))  # type: ignore[no-any-return]
    except ValidationError:
        pass
    return decode_snapshot(snapshot).model_dump()


@functools.cache
def _shape(model: type[BaseModel]) -> tuple[frozenset[str], tuple[tuple[str, type[BaseModel], bool], ...]]:
    """``model``'s optional fields, and its fields holding models: ``(name, model, is_list)``."""
    optional = frozenset(name for name, f in model.model_fields.items() if not f.is_required())
    nested = []
    for name, f in model.model_fields.items():
        is_list = get_origin(f.annotation) is list
        inner = get_args(f.annotation)[0] if is_list else f.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((name, inner, is_list))
    return optional, tuple(nested)


def drop_optional_nulls(model: type[BaseModel], data: Any) -> Any:
    """``data`` with every JSON ``null`` of an optional field left out, at every level.

    Other producers (a Console building snapshots from database rows) write absent optional
    values as ``null``; the default then applies. A ``null`` for a required field is left
    in place, so it is still refused naming the field. Done here rather than as a pydantic
    validator: a Python validator on the models would make pydantic-core hand every object
    of the JSON to Python, tripling the cost of the fast path (which never sees a ``null``).
    """
    if not isinstance(data, Mapping):
        return data
    optional, nested = _shape(model)
    out = {k: v for k, v in data.items() if not (v is None and k in optional)}
    for name, inner, is_list in nested:
        value = out.get(name)
        if is_list and isinstance(value, list):
            out[name] = [drop_optional_nulls(inner, item) for item in value]
        elif not is_list and isinstance(value, Mapping):
            out[name] = drop_optional_nulls(inner, value)
    return out


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def field_path(loc: Sequence[str | int]) -> str:
    """``("databases", 1, "engine")`` -> ``databases[1].engine`` (the one field-path format)."""
    return field_paths.from_parts(loc)


_TYPE_WORDS = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "missing": "is required",
    "extra_forbidden": "unknown field",
}


def _expected_choices(expected: str) -> str:
    # pydantic says "'aws', 'gcp' or 'azure'"; users read "aws, gcp, azure".
    return ", ".join(p.strip().strip("'\"") for p in re.split(r",| or ", expected) if p.strip())


def _translate(errors: Iterable[Mapping[str, Any]]) -> list[FieldViolation]:
    """Pydantic errors as plain field violations, in document order, without duplicates."""
    out: list[FieldViolation] = []
    seen: set[tuple[str, str]] = set()
    for err in errors:
        loc = [p for p in err.get("loc", ()) if isinstance(p, (str, int))]
        kind = str(err.get("type", ""))
        ctx = err.get("ctx") or {}
        if kind in _TYPE_WORDS:
            text = _TYPE_WORDS[kind]
        elif kind == "literal_error":
            text = "must be one of " + _expected_choices(str(ctx.get("expected", "")))
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            words = {
                "greater_than_equal": "at least",
                "greater_than": "greater than",
                "less_than_equal": "at most",
                "less_than": "less than",
            }[kind]
            bound = next(iter(ctx.values()), "")
            text = f"must be {words} {bound}"
        elif kind == "value_error":
            text = str(ctx.get("error", err.get("msg", "invalid value")))
        else:
            msg = str(err.get("msg", "invalid value"))
            text = msg[:1].lower() + msg[1:]
        key = (field_path(loc), text)
        if key not in seen:
            seen.add(key)
            out.append(FieldViolation(*key))
    return out


# --- cross-field rules -----------------------------------------------------------------


def _label(value: str, path: str, out: list[FieldViolation]) -> None:
    if not value:
        out.append(FieldViolation(path, "must not be empty"))
    elif not _DNS_LABEL.match(value):
        out.append(FieldViolation(path, "must be a DNS label: lowercase letters, digits and '-', at most 63"))


def _unique_names(items: Sequence[Data], path: str, out: list[FieldViolation]) -> None:
    names = [item["name"] for item in items]
    # The common case, decided in C: every name a DNS label, none twice. Otherwise each item
    # is looked at to word its violations.
    if len(set(names)) == len(names) and all(map(_DNS_LABEL.match, names)):
        return
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        _label(name, f"{path}[{i}].name", out)
        if name in seen:
            out.append(FieldViolation(f"{path}[{i}].name", f"duplicate of {path}[{seen[name]}].name"))
        else:
            seen[name] = i


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


@functools.lru_cache(maxsize=256)
def _constraint_problem(constraint: str) -> str | None:
    # A pure function of a short string, and Specs share a handful of constraints (">= 1.5"):
    # parsed once each rather than at every render and every write.
    try:
        parse_constraints(constraint)
    except ConstraintError as exc:
        return str(exc)
    return None


def semantic_violations(spec: Data) -> list[FieldViolation]:
    """Rules across fields that types cannot express; every violation, in field order.

    ``spec`` is a well-typed Spec as data (:func:`decode_snapshot_data`, or ``model_dump()``).
    """
    out: list[FieldViolation] = []
    if spec["terraform_version"].strip():
        problem = _constraint_problem(spec["terraform_version"])
        if problem:
            out.append(FieldViolation("terraform_version", problem))
    _label(spec["project_name"], "project_name", out)
    _label(spec["environment"], "environment", out)
    if not spec["region"].strip():
        out.append(FieldViolation("region", "must not be empty"))
    if not spec["cloud_account_id"].strip():
        out.append(FieldViolation("cloud_account_id", "must not be empty"))

    net = spec["network"]
    if net["provision_network"]:
        try:
            ipv4_prefixlen(net["cidr_block"])
        except ValueError:
            out.append(FieldViolation("network.cidr_block", "must be an IPv4 CIDR block such as 10.0.0.0/16"))
    elif not net["network_id"].strip():
        out.append(
            FieldViolation("network.network_id", "is required when network.provision_network is false")
        )

    cl = spec["cluster"]
    if not cl["cluster_version"].strip():
        out.append(FieldViolation("cluster.cluster_version", "must not be empty"))
    if not cl["instance_types"]:
        out.append(FieldViolation("cluster.instance_types", "must list at least one instance type"))
    for i, it in enumerate(cl["instance_types"]):
        if not it.strip():
            out.append(FieldViolation(f"cluster.instance_types[{i}]", "must not be empty"))
    low, desired, high = cl["node_min_size"], cl["node_desired_size"], cl["node_max_size"]
    if low > high:
        out.append(FieldViolation("cluster.node_min_size", "must not exceed cluster.node_max_size"))
    if not low <= desired <= high:
        out.append(
            FieldViolation(
                "cluster.node_desired_size", "must be between cluster.node_min_size and cluster.node_max_size"
            )
        )

    dns = spec["dns"]
    if dns["enabled"] and not dns["domain_name"].strip():
        out.append(FieldViolation("dns.domain_name", "is required when dns.enabled is true"))

    for i, repo in enumerate(spec["repositories"]):
        if not repo["url"].strip():
            out.append(FieldViolation(f"repositories[{i}].url", "must not be empty"))
        elif repository_url_credentials(repo["url"]):
            out.append(FieldViolation(f"repositories[{i}].url", "must not contain credentials"))

    _unique_names(spec["databases"], "databases", out)
    for i, db in enumerate(spec["databases"]):
        scaling = db["scaling"]
        if scaling["min_capacity"] > scaling["max_capacity"]:
            out.append(
                FieldViolation(f"databases[{i}].scaling.min_capacity", "must not exceed scaling.max_capacity")
            )
        if not db["instance_class"].strip():
            out.append(FieldViolation(f"databases[{i}].instance_class", "must not be empty"))
    _unique_names(spec["caches"], "caches", out)
    for i, cache in enumerate(spec["caches"]):
        if not cache["node_type"].strip():
            out.append(FieldViolation(f"caches[{i}].node_type", "must not be empty"))
    _unique_names(spec["queues"], "queues", out)
    _unique_names(spec["topics"], "topics", out)
    for i, topic in enumerate(spec["topics"]):
        _unique_names(topic["subscriptions"], f"topics[{i}].subscriptions", out)
    _unique_names(spec["nosql_tables"], "nosql_tables", out)
    for i, table in enumerate(spec["nosql_tables"]):
        if not table["partition_key"].strip():
            out.append(FieldViolation(f"nosql_tables[{i}].partition_key", "must not be empty"))
    _unique_names(spec["storage_buckets"], "storage_buckets", out)
    _unique_names(spec["secrets"], "secrets", out)
    for i, secret in enumerate(spec["secrets"]):
        metadata = secret["metadata"]
        for key in sorted(metadata):
            if not _scalar(metadata[key]):
                out.append(
                    FieldViolation(f"secrets[{i}].metadata.{key}", "must be a string, number or boolean")
                )
    return out
