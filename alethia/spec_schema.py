"""The Spec's one declaration, read from the proto descriptors (docs/architecture.md).

``protos/alethia/specs/v1/specs.proto`` declares every component and field of a Spec;
the ``(schema)`` options of ``schema.proto`` add what a proto type cannot say (column
width, required in a snapshot, default, bounds, choices, sets). Everything that needs the
Spec's shape derives it from here instead of spelling it out again:

- :data:`COMPONENTS` and :data:`SPEC_COLUMNS`: the spec service's tables and columns
  (``services/specs/models.py``) and the row <-> value mapping both ways
  (:func:`component_row`, :func:`component_item`, used by ``services/specs/store.py``);
- :func:`build_snapshot`: the frozen snapshot of a Spec (``services/snapshot``);
- :func:`spec_config_source`: the mapper's typed ``SpecConfig`` classes, generated into
  ``alethia/mapping/spec_model.py`` (``make gen``; a test fails when it is stale);
- :func:`console_schema`: the Console form's field list, generated into
  ``alethia/console/static/spec_schema.json`` (``make gen``; a test fails when it is stale);
- :func:`apply_defaults`: declared defaults of absent ``optional`` fields, at write time.

Conventions, so that no field needs a rule of its own: a component is a message field of
``Spec`` (one table ``spec_<field>``); a list item with a ``name`` is keyed by it, any
other by its position; a nested message (``scaling``) becomes prefixed columns
(``scaling_min_capacity``); Structs, lists of scalars and lists of messages inside an
item are JSON columns; lists of messages are ordered by their scalar fields in
declaration order (so by ``name`` first), sets (``cluster_admins``) are sorted, other lists
of scalars keep their order.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from alethia import field_paths
from alethia.errors import FieldViolation
from alethia.rpc.structs import struct_to_dict
from alethia.specs.v1 import schema_pb2, specs_pb2

STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name

# Fields the spec service fills in; they are not the team's configuration.
OUTPUT_ONLY_FIELDS = frozenset(
    {"id", "revision", "provider", "cloud_account_id", "create_time", "update_time"}
)
# Snapshot keys that are not Spec fields, or are Spec fields under another name.
SNAPSHOT_ONLY = {"spec_id": "id"}
SNAPSHOT_LEFT_OUT = frozenset({"id", "revision", "create_time", "update_time"})


def options(fd: FieldDescriptor) -> schema_pb2.FieldSchema:
    """The ``(schema)`` options of a field (all unset when it has none)."""
    opts = fd.GetOptions()
    if opts.HasExtension(schema_pb2.schema):
        return opts.Extensions[schema_pb2.schema]
    return schema_pb2.FieldSchema()


def default_of(fd: FieldDescriptor) -> Any:
    """The value an absent field stands for: its declared default, else the type's zero value."""
    declared = options(fd).default
    if declared:
        return json.loads(declared)
    if fd.is_repeated:
        return []
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return {} if fd.message_type.full_name == STRUCT else None
    if fd.type == FieldDescriptor.TYPE_STRING:
        return ""
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return False
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 0.0
    return 0


def _bound(x: float) -> str:
    return f"{x:g}"


def range_violations(spec: Mapping[str, Any]) -> list[FieldViolation]:
    """Every number of the Spec dict outside its declared ``min``/``max``, by field path.

    Wrong types are not reported here (the proto conversion refuses them first); an
    absent value is not checked (its default applies).
    """
    out: list[FieldViolation] = []
    _check_ranges(specs_pb2.Spec.DESCRIPTOR, spec, "", out)
    return out


def _check_ranges(message: Descriptor, value: Any, path: str, out: list[FieldViolation]) -> None:
    if not isinstance(value, Mapping):
        return
    for fd in message.fields:
        item = value.get(fd.name)
        sub = field_paths.join(path, fd.name)
        if item is None:
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.full_name in (STRUCT, TIMESTAMP):
                continue
            items = list(enumerate(item)) if fd.is_repeated and isinstance(item, list) else [(None, item)]
            for i, elem in items:
                _check_ranges(fd.message_type, elem, sub if i is None else field_paths.item(sub, i), out)
            continue
        opts = options(fd)
        lo = opts.min if opts.HasField("min") else None
        hi = opts.max if opts.HasField("max") else None
        if (lo is None and hi is None) or isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if (lo is not None and item < lo) or (hi is not None and item > hi):
            if lo is not None and hi is not None:
                text = f"must be between {_bound(lo)} and {_bound(hi)}"
            else:
                text = f"must be >= {_bound(lo)}" if lo is not None else f"must be <= {_bound(hi or 0)}"
            out.append(FieldViolation(sub, text))


def is_struct(fd: FieldDescriptor) -> bool:
    """A ``google.protobuf.Struct`` field (free-form JSON object)."""
    return fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type.full_name == STRUCT


def is_nested(fd: FieldDescriptor) -> bool:
    """A singular message field that is neither a Struct nor a Timestamp (``scaling``)."""
    return (
        fd.type == FieldDescriptor.TYPE_MESSAGE
        and not fd.is_repeated
        and fd.message_type.full_name not in (STRUCT, TIMESTAMP)
    )


# --- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a component table: where its value sits in the item, and its type."""

    name: str
    path: tuple[str, ...]  # field names from the item down to the value
    field: FieldDescriptor
    kind: str  # "string" | "bool" | "int" | "bigint" | "float" | "json"
    max_length: int = 0
    key: bool = False


@dataclass(frozen=True)
class Component:
    """A message field of ``Spec`` and its table."""

    field: str  # name in the Spec (``databases``)
    table: str  # ``spec_databases``
    repeated: bool
    message: Descriptor
    columns: tuple[Column, ...]

    @property
    def keyed_by_name(self) -> bool:
        return "name" in self.message.fields_by_name

    @property
    def has_position(self) -> bool:
        return self.repeated and not self.keyed_by_name


def _kind(fd: FieldDescriptor) -> str:
    if fd.is_repeated or fd.type == FieldDescriptor.TYPE_MESSAGE:
        return "json"
    return _scalar_kind(fd)


def _scalar_kind(fd: FieldDescriptor) -> str:
    return {
        FieldDescriptor.TYPE_STRING: "string",
        FieldDescriptor.TYPE_BOOL: "bool",
        FieldDescriptor.TYPE_INT32: "int",
        FieldDescriptor.TYPE_INT64: "bigint",
        FieldDescriptor.TYPE_DOUBLE: "float",
        FieldDescriptor.TYPE_FLOAT: "float",
    }[fd.type]


def _columns(message: Descriptor, prefix: tuple[str, ...], keyed: bool) -> list[Column]:
    out: list[Column] = []
    for fd in message.fields:
        path = (*prefix, fd.name)
        if is_nested(fd):
            out += _columns(fd.message_type, path, keyed=False)
            continue
        out.append(
            Column(
                name="_".join(path),
                path=path,
                field=fd,
                kind=_kind(fd),
                max_length=options(fd).max_length,
                key=keyed and not prefix and fd.name == "name",
            )
        )
    return out


def _components() -> tuple[Component, ...]:
    out = []
    for fd in specs_pb2.Spec.DESCRIPTOR.fields:
        if fd.type != FieldDescriptor.TYPE_MESSAGE or fd.message_type.full_name == TIMESTAMP:
            continue
        out.append(
            Component(
                field=fd.name,
                table=f"spec_{fd.name}",
                repeated=fd.is_repeated,
                message=fd.message_type,
                columns=tuple(_columns(fd.message_type, (), keyed=fd.is_repeated)),
            )
        )
    return tuple(out)


COMPONENTS: tuple[Component, ...] = _components()
COMPONENTS_BY_FIELD = {c.field: c for c in COMPONENTS}

# The Spec's own scalar fields stored in the ``specs`` row (the service adds id, revision, times).
SPEC_COLUMNS: tuple[Column, ...] = tuple(
    Column(fd.name, (fd.name,), fd, _kind(fd), options(fd).max_length)
    for fd in specs_pb2.Spec.DESCRIPTOR.fields
    if fd.type != FieldDescriptor.TYPE_MESSAGE and fd.name not in OUTPUT_ONLY_FIELDS
)


# --- values -------------------------------------------------------------------------------


def canonical(message: Descriptor, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every field of ``message`` present: absent ones take their default, lists are ordered."""
    value = value or {}
    out: dict[str, Any] = {}
    for fd in message.fields:
        item = value.get(fd.name)
        if item is None:
            item = default_of(fd)
            if is_nested(fd):
                item = canonical(fd.message_type, None)
        elif is_nested(fd):
            item = canonical(fd.message_type, item)
        elif fd.is_repeated:
            item = ordered(fd, item)
        elif is_struct(fd):
            item = dict(item)
        out[fd.name] = item
    return out


def ordered(fd: FieldDescriptor, items: Iterable[Any]) -> list[Any]:
    """A list field in its one order (see the module docstring)."""
    values = list(items)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        full = [canonical(fd.message_type, v) for v in values]
        return [full[i] for i in _message_order(fd.message_type, full)]  # canonical once, not twice
    return [values[i] for i in order_of(fd, values)]


def order_of(fd: FieldDescriptor, items: Iterable[Any]) -> list[int]:
    """The positions of ``items`` (a list field's values) in the field's one order."""
    values = list(items)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        msg = fd.message_type
        return _message_order(msg, [canonical(msg, v) if isinstance(v, Mapping) else {} for v in values])
    if options(fd).set:
        return sorted(range(len(values)), key=lambda i: values[i])
    return list(range(len(values)))


def _message_order(message: Descriptor, full: list[dict[str, Any]]) -> list[int]:
    """The order of canonical ``message`` items: by their scalar fields, in declaration order."""
    scalars = [f.name for f in message.fields if f.type != FieldDescriptor.TYPE_MESSAGE and not f.is_repeated]
    return sorted(range(len(full)), key=lambda i: tuple(str(full[i].get(name, "")) for name in scalars))


def path_in_request(path: str, spec: Mapping[str, Any]) -> str:
    """A snapshot field path (lists in their one order) as the path into the Spec as sent.

    CreateSpec names list items by their position in the request; rules that ran on the
    snapshot name them by their position there. This maps one to the other.
    """
    try:
        parts = field_paths.parse(path)
    except ValueError:
        return path
    message: Descriptor | None = specs_pb2.Spec.DESCRIPTOR
    node: Any = spec
    fd: FieldDescriptor | None = None
    out: list[str | int] = []
    for idx, part in enumerate(parts):
        if isinstance(part, int):
            if fd is None or not fd.is_repeated or not isinstance(node, list) or not 0 <= part < len(node):
                return path
            original = order_of(fd, node)[part]
            out.append(original)
            node = node[original]
            message = fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None
            fd = None
            continue
        out.append(part)
        fd = message.fields_by_name.get(part) if message is not None else None
        node = node.get(part) if isinstance(node, Mapping) else None
        if fd is None or is_struct(fd):
            out.extend(parts[idx + 1 :])
            break
        if not fd.is_repeated and fd.type == FieldDescriptor.TYPE_MESSAGE:
            message = fd.message_type
    return field_paths.from_parts(out)


def apply_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The Spec dict with every absent ``optional`` field of its components set to its default."""
    out = dict(spec)
    for comp in COMPONENTS:
        value = out.get(comp.field)
        if value is None:
            continue
        if comp.repeated:
            out[comp.field] = [_fill(comp.message, v) for v in value]
        else:
            out[comp.field] = _fill(comp.message, value)
    return out


def _fill(message: Descriptor, value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    out = dict(value)
    for fd in message.fields:
        scalar = fd.type != FieldDescriptor.TYPE_MESSAGE
        if scalar and fd.has_presence and options(fd).default and out.get(fd.name) is None:
            out[fd.name] = default_of(fd)
    return out


def component_row(comp: Component, item: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of one component item (a Spec dict part), lists in their order."""
    full = canonical(comp.message, item)
    row: dict[str, Any] = {}
    for col in comp.columns:
        value: Any = full
        for part in col.path:
            value = value[part]
        row[col.name] = float(value) if col.kind == "float" else value
    return row


def component_item(comp: Component, row: Mapping[str, Any]) -> dict[str, Any]:
    """One component item back from its row (the inverse of :func:`component_row`)."""
    item: dict[str, Any] = {}
    for col in comp.columns:
        node = item
        for part in col.path[:-1]:
            node = node.setdefault(part, {})
        value = row[col.name]
        node[col.path[-1]] = list(value) if col.field.is_repeated else value
    return item


def component_rows(spec: Mapping[str, Any]) -> list[tuple[Component, list[dict[str, Any]]]]:
    """Every component of a Spec dict as (component, rows), lists in their one order."""
    out: list[tuple[Component, list[dict[str, Any]]]] = []
    for comp in COMPONENTS:
        value = spec.get(comp.field)
        if value is None:
            continue
        if not comp.repeated:
            out.append((comp, [component_row(comp, value)]))
            continue
        items = ordered(specs_pb2.Spec.DESCRIPTOR.fields_by_name[comp.field], value)
        rows = [component_row(comp, v) for v in items]
        if comp.has_position:
            for i, r in enumerate(rows):
                r["position"] = i
        out.append((comp, rows))
    return out


# --- the snapshot ---------------------------------------------------------------------------


def _number(value: float) -> float | int:
    """Integral doubles as ints so ``2.0`` and ``2`` freeze (and print) the same way."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


@functools.cache
def _sort_fields(message: Descriptor) -> tuple[str, ...]:
    """The scalar fields a list of ``message`` is ordered by (see :func:`order_of`)."""
    return tuple(
        f.name for f in message.fields if f.type != FieldDescriptor.TYPE_MESSAGE and not f.is_repeated
    )


def _freeze(msg: pb_message.Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.is_repeated:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                # A frozen item already has every field, so it is its own canonical form:
                # sorted as order_of sorts (stable, by the scalar fields as text) without
                # canonicalizing it twice more (half of BuildSnapshot's CPU at 50 components).
                names = _sort_fields(fd.message_type)
                items = [_freeze(v) for v in value]
                items.sort(key=lambda item: tuple(str(item.get(n, "")) for n in names))
                out[fd.name] = items
            else:
                out[fd.name] = ordered(fd, value)
        elif is_struct(fd):
            out[fd.name] = struct_to_dict(value)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.full_name != TIMESTAMP:
                out[fd.name] = _freeze(value)
        elif fd.has_presence and not msg.HasField(fd.name):
            out[fd.name] = default_of(fd)
        elif fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            out[fd.name] = _number(value)
        else:
            out[fd.name] = value
    return out


def build_snapshot(spec: specs_pb2.Spec) -> dict[str, Any]:
    """The snapshot of a Spec as read from ``GetSpec`` (docs/architecture.md, the snapshot contract)."""
    frozen = _freeze(spec)
    snapshot = {k: v for k, v in frozen.items() if k not in SNAPSHOT_LEFT_OUT}
    for key, source in SNAPSHOT_ONLY.items():
        snapshot[key] = frozen[source]
    snapshot["git_access_token"] = ""
    return snapshot


# --- the mapper's SpecConfig, generated -----------------------------------------------------


def _class_name(message: Descriptor) -> str:
    return f"{message.name}Config"


def _annotation(fd: FieldDescriptor) -> str:
    if is_struct(fd):
        base = "JsonObject"
    elif fd.type == FieldDescriptor.TYPE_MESSAGE:
        base = _class_name(fd.message_type)
    elif options(fd).choices:
        base = "Literal[" + ", ".join(repr(c) for c in options(fd).choices) + "]"
    else:
        base = {"string": "str", "bool": "bool", "int": "int", "bigint": "int", "float": "float"}[
            _scalar_kind(fd)
        ]
    return f"list[{base}]" if fd.is_repeated else base


def _field_args(fd: FieldDescriptor) -> str:
    opts = options(fd)
    args: list[str] = []
    if not opts.required:
        if fd.is_repeated or is_struct(fd):
            args.append("default_factory=" + ("list" if fd.is_repeated else "dict"))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            args.append(f"default_factory={_class_name(fd.message_type)}")
        else:
            args.append(f"default={default_of(fd)!r}")
    if opts.HasField("min"):
        args.append(f"ge={_number(opts.min)!r}")
    if opts.HasField("max"):
        args.append(f"le={_number(opts.max)!r}")
    return ", ".join(args)


def _messages_in_order() -> list[Descriptor]:
    """Every message the Spec uses, each after the messages it refers to."""
    seen: list[Descriptor] = []

    def visit(message: Descriptor) -> None:
        for fd in message.fields:
            if fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type.full_name not in (
                STRUCT,
                TIMESTAMP,
            ):
                visit(fd.message_type)
        if message not in seen:
            seen.append(message)

    visit(specs_pb2.Spec.DESCRIPTOR)
    return seen


def spec_config_source() -> str:
    """The Python source of the mapper's SpecConfig classes (``alethia/mapping/spec_model.py``)."""
    lines = [
        '"""The typed snapshot the mapper reads: generated from the Spec declaration. Do not edit.',
        "",
        "Generated by ``python -m alethia.spec_schema`` (``make gen``) from",
        "protos/alethia/specs/v1/specs.proto and its ``(schema)`` options; a test fails when it",
        "is stale. Parsing, error wording and cross-field rules are in spec_config.py.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any, Literal",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        "JsonObject = dict[str, Any]",
        "",
        "",
        "class Strict(BaseModel):",
        '    # strict: no coercion ("3" is not 3); forbid: an unknown key is an error, not dropped;',
        "    # frozen: a SpecConfig is a value, shared safely between requests. No Python validators:",
        "    # JSON is then validated inside pydantic-core in one pass (a JSON `null` for an optional",
        "    # field is dropped before validation, by spec_config.drop_optional_nulls).",
        '    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)',
    ]
    for message in _messages_in_order():
        is_spec = message.full_name == specs_pb2.Spec.DESCRIPTOR.full_name
        name = "SpecConfig" if is_spec else _class_name(message)
        lines += ["", "", f"class {name}(Strict):"]
        if is_spec:
            lines.append(
                '    """The typed Spec a job executes: exactly the keys of the snapshot contract."""'
            )
            lines.append("")
            lines.append('    spec_id: str = ""')
        for fd in message.fields:
            if is_spec and fd.name in SNAPSHOT_LEFT_OUT:
                continue
            lines.append(f"    {fd.name}: {_annotation(fd)} = Field({_field_args(fd)})")
        if is_spec:
            lines.append(
                '    # Always "" in a stored snapshot; accepted so a snapshot round-trips, never mapped.'
            )
            lines.append('    git_access_token: str = Field(default="", repr=False)')
    return "\n".join(lines) + "\n"


# --- the Console's field list, generated ------------------------------------------------------


def _form_kind(fd: FieldDescriptor) -> str:
    """How the Console's form edits a field: text, int, num, bool, json (an object), lines."""
    if is_struct(fd):
        return "json"
    if fd.is_repeated:
        return "lines"  # a list of strings (lists of messages are sections or sub-lists)
    return {"string": "text", "bool": "bool", "int": "int", "bigint": "int", "float": "num"}[_scalar_kind(fd)]


def _form_fields(
    fds: Iterable[FieldDescriptor], prefix: str = ""
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The editable fields among ``fds`` (nested messages flattened to ``scaling.min_capacity``),
    and the list of messages among them (a topic's subscriptions), if any."""
    fields: list[dict[str, Any]] = []
    sub = None
    for fd in fds:
        if is_nested(fd):
            fields += _form_fields(fd.message_type.fields, f"{prefix}{fd.name}.")[0]
            continue
        if fd.is_repeated and fd.type == FieldDescriptor.TYPE_MESSAGE and not is_struct(fd):
            sub = {"key": fd.name, "fields": _form_fields(fd.message_type.fields)[0]}
            continue
        opts = options(fd)
        entry: dict[str, Any] = {"name": prefix + fd.name, "kind": _form_kind(fd), "required": opts.required}
        if opts.default:
            entry["default"] = json.loads(opts.default)
        if opts.HasField("min"):
            entry["min"] = _number(opts.min)
        if opts.HasField("max"):
            entry["max"] = _number(opts.max)
        if opts.choices:
            entry["choices"] = list(opts.choices)
        if opts.max_length:
            entry["max_length"] = opts.max_length
        fields.append(entry)
    return fields, sub


def console_schema() -> dict[str, Any]:
    """The Spec's fields as the Console's form lays them out (``make gen`` writes
    ``alethia/console/static/spec_schema.json``; a test fails when it is stale): the Spec's
    own fields, then one section per component, in declaration order."""
    sections = []
    for comp in COMPONENTS:
        fields, sub = _form_fields(comp.message.fields)
        section: dict[str, Any] = {"key": comp.field, "repeated": comp.repeated, "fields": fields}
        if sub is not None:
            section["sub"] = sub
        sections.append(section)
    return {
        "generated_by": "python -m alethia.spec_schema --console (make gen) from protos/alethia/specs/v1/specs.proto",
        "fields": _form_fields(col.field for col in SPEC_COLUMNS)[0],
        "sections": sections,
        "output_only": sorted(OUTPUT_ONLY_FIELDS),
    }


def console_schema_json() -> str:
    """:func:`console_schema` as the committed file's text."""
    return json.dumps(console_schema(), indent=1) + "\n"


# --- the field reference, generated -----------------------------------------------------------


def _type_text(fd: FieldDescriptor) -> str:
    if is_struct(fd):
        base = "object"
    elif fd.type == FieldDescriptor.TYPE_MESSAGE:
        base = fd.message_type.name
    else:
        base = {
            "string": "string",
            "bool": "boolean",
            "int": "integer",
            "bigint": "integer",
            "float": "number",
        }[_scalar_kind(fd)]
    return f"list of {base}" if fd.is_repeated else base


def _rules_text(fd: FieldDescriptor) -> str:
    opts = options(fd)
    out = []
    if opts.HasField("min") and opts.HasField("max"):
        out.append(f"{_bound(opts.min)}..{_bound(opts.max)}")
    elif opts.HasField("min"):
        out.append(f">= {_bound(opts.min)}")
    elif opts.HasField("max"):
        out.append(f"<= {_bound(opts.max)}")
    if opts.choices:
        out.append("one of " + ", ".join(opts.choices))
    if opts.set:
        out.append("a set (stored sorted)")
    return "; ".join(out)


def _doc_rows(message: Descriptor, prefix: str, out: list[str], stored: str) -> None:
    for fd in message.fields:
        if message.full_name == specs_pb2.Spec.DESCRIPTOR.full_name and fd.name in OUTPUT_ONLY_FIELDS:
            continue
        path = f"{prefix}{fd.name}"
        if fd.is_repeated and fd.type == FieldDescriptor.TYPE_MESSAGE:
            path += "[]"
        opts = options(fd)
        comp = COMPONENTS_BY_FIELD.get(fd.name) if not prefix else None
        if opts.required:
            default = ""
        elif opts.default:
            default = f"`{opts.default}`"
        elif is_nested(fd):
            default = "each field's default"
        else:
            default = f"`{json.dumps(default_of(fd))}`"
        if comp is not None:
            where = f"table `{comp.table}`"
        elif is_nested(fd):
            where = stored.format(name=f"{fd.name}_*")
        else:
            where = stored.format(name=fd.name)
        if opts.max_length:
            where += f", VARCHAR({opts.max_length})"
        out.append(
            f"| `{path}` | {_type_text(fd)} | {'yes' if opts.required else 'no'} | {default} "
            f"| {_rules_text(fd)} | {where} |"
        )
        if fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type.full_name not in (STRUCT, TIMESTAMP):
            if comp is not None:
                inner = f"`{comp.table}.{{name}}`"
            elif fd.is_repeated:  # messages inside an item (subscriptions): part of its JSON column
                inner = stored.format(name=fd.name) + " (JSON)"
            else:  # a nested message (scaling): prefixed columns of the item's table
                inner = stored.replace("{name}", fd.name + "_{name}")
            _doc_rows(fd.message_type, path + ".", out, inner)


def field_reference() -> str:
    """``docs/spec.md``: every Spec field, its type, default, bounds and where it is stored."""
    out = [
        "# Spec fields",
        "",
        "<!-- Generated by `python -m alethia.spec_schema --docs` (`make docs`) from",
        "protos/alethia/specs/v1/specs.proto; a test fails when it is stale. -->",
        "",
        'Every field of a Spec as the spec service accepts it and the snapshot carries it. "required"',
        "means a snapshot must carry the field; a default applies when it is absent (or JSON `null`).",
        "Bounds are enforced by CreateSpec/UpdateSpec and again by the mapper. The cloud-specific",
        "`provider_config` keys are in [mapping.md](mapping.md); the design in",
        "[architecture.md](architecture.md).",
        "",
        "| field | type | required | default | rules | stored in |",
        "|---|---|---|---|---|---|",
    ]
    _doc_rows(specs_pb2.Spec.DESCRIPTOR, "", out, "`specs.{name}`")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    if "--docs" in sys.argv:
        print(field_reference(), end="")
    elif "--console" in sys.argv:
        print(console_schema_json(), end="")
    else:
        print(spec_config_source(), end="")
