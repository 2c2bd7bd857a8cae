"""Spec files: a plain dict (parsed YAML/JSON) <-> ``alethia.specs.v1.Spec``, and back.

The dict uses the proto field names (the snapshot contract of docs/architecture.md), with
``provider_config`` / ``config`` / ``metadata`` as plain dicts. Conversion is strict and
pure: a wrong type or an unknown key is an :class:`~alethia.errors.InvalidArgument` naming
the field path (``cluster.node_min_size: expected an integer``), every problem at once.
It checks shapes only; whether the values make sense is the spec service's validation.

Canonical form: every nested message inside a list item (``scaling``) and every
``provider_config``/``config``/``metadata`` Struct of a present message is set, even when
empty, so a Spec converted from a dict, stored and read back compares equal.
The conversion is driven by the proto descriptors, so compatible proto additions need
no change here.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor

from alethia import field_paths
from alethia.errors import FieldViolation, InvalidArgument
from alethia.rpc.structs import dict_to_struct
from alethia.specs.v1 import specs_pb2

# Fields the service fills in; accepted on input (so a dumped Spec loads again), never required.
OUTPUT_ONLY_FIELDS = frozenset(
    {"id", "revision", "provider", "cloud_account_id", "create_time", "update_time"}
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
# Integers beyond this cannot survive a Struct (doubles) or a JSON round trip exactly.
_MAX_SAFE_INT = 2**53


_join = field_paths.join


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value),
        "a list"
        if isinstance(value, list)
        else "a mapping"
        if isinstance(value, dict)
        else type(value).__name__,
    )


def _check_json(value: Any, path: str, errors: list[FieldViolation]) -> None:
    """Struct values must be plain JSON (YAML can produce dates, sets, non-string keys)."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            errors.append(FieldViolation(path, "integer too large for a JSON number (max 2^53)"))
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(FieldViolation(path, "expected a finite number"))
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", errors)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(FieldViolation(path, f"keys must be strings, got {k!r}"))
                continue
            _check_json(v, _join(path, k), errors)
        return
    errors.append(
        FieldViolation(path, f"expected a JSON value, got {type(value).__name__} (quote it in YAML)")
    )


def _scalar(fd: FieldDescriptor, value: Any, path: str, errors: list[FieldViolation]) -> Any:
    """The value converted for ``fd``, or ``None`` after recording a violation."""
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            return value
        hint = (
            " (quote the value in YAML)"
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else ""
        )
        errors.append(FieldViolation(path, f"expected a string, got {_type_name(value)}{hint}"))
        return None
    if t == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        errors.append(FieldViolation(path, f"expected a boolean, got {_type_name(value)}"))
        return None
    if t in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(FieldViolation(path, f"expected an integer, got {_type_name(value)}"))
            return None
        lo, hi = _INT_RANGES[t]
        if not lo <= value <= hi:
            errors.append(FieldViolation(path, f"integer out of range ({lo}..{hi})"))
            return None
        return value
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                errors.append(FieldViolation(path, "expected a finite number"))
                return None
            return float(value)
        errors.append(FieldViolation(path, f"expected a number, got {_type_name(value)}"))
        return None
    errors.append(FieldViolation(path, "unsupported field type"))  # pragma: no cover - no such field today
    return None


def _fill_message(msg: pb_message.Message, value: Any, path: str, errors: list[FieldViolation]) -> None:
    """Fill a (non-Struct, non-Timestamp) message from a mapping."""
    if not isinstance(value, Mapping):
        errors.append(FieldViolation(path, f"expected a mapping, got {_type_name(value)}"))
        return
    fields = msg.DESCRIPTOR.fields_by_name
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldViolation(path, f"keys must be strings, got {key!r}"))
            continue
        p = _join(path, key)
        fd = fields.get(key)
        if fd is None:
            errors.append(FieldViolation(p, "unknown field"))
            continue
        if item is None:  # `key:` with no value in YAML: same as leaving it out
            continue
        if fd.is_repeated:
            if not isinstance(item, list):
                errors.append(FieldViolation(p, f"expected a list, got {_type_name(item)}"))
                continue
            target = getattr(msg, key)
            for i, elem in enumerate(item):
                ep = f"{p}[{i}]"
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    if elem is None:
                        errors.append(FieldViolation(ep, "expected a mapping, got null"))
                        continue
                    _fill_message(target.add(), elem, ep, errors)
                else:
                    v = _scalar(fd, elem, ep, errors)
                    if v is not None:
                        target.append(v)
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            name = fd.message_type.full_name
            if name == _STRUCT:
                if not isinstance(item, Mapping):
                    errors.append(FieldViolation(p, f"expected a mapping, got {_type_name(item)}"))
                    continue
                before = len(errors)
                _check_json(item, p, errors)
                if len(errors) == before:
                    dict_to_struct(dict(item), getattr(msg, key))
            elif name == _TIMESTAMP:
                if not isinstance(item, str):
                    errors.append(FieldViolation(p, "expected an RFC 3339 timestamp string"))
                    continue
                try:
                    getattr(msg, key).FromJsonString(item)
                except ValueError:
                    errors.append(FieldViolation(p, "expected an RFC 3339 timestamp string"))
            else:
                _fill_message(getattr(msg, key), item, p, errors)
            continue
        v = _scalar(fd, item, p, errors)
        if v is not None:
            setattr(msg, key, v)
    _canonicalize(msg)


def _canonicalize(msg: pb_message.Message) -> None:
    """Set every Struct field and every nested message of a list item (see module docstring)."""
    for fd in msg.DESCRIPTOR.fields:
        if fd.type != FieldDescriptor.TYPE_MESSAGE or fd.is_repeated:
            continue
        name = fd.message_type.full_name
        if name == _STRUCT or (name != _TIMESTAMP and msg.DESCRIPTOR.full_name in _LIST_ITEM_TYPES):
            getattr(msg, fd.name).SetInParent()


# Messages that only occur as list items: their nested messages (``scaling``) are always present.
_LIST_ITEM_TYPES = frozenset(
    fd.message_type.full_name
    for fd in specs_pb2.Spec.DESCRIPTOR.fields
    if fd.is_repeated and fd.type == FieldDescriptor.TYPE_MESSAGE
)


def spec_from_dict(data: Any) -> specs_pb2.Spec:
    """A Spec from a plain dict; wrong types and unknown keys raise InvalidArgument (all at once)."""
    errors: list[FieldViolation] = []
    spec = specs_pb2.Spec()
    if not isinstance(data, Mapping):
        raise InvalidArgument([FieldViolation("", f"a Spec must be a mapping, got {_type_name(data)}")])
    _fill_message(spec, data, "", errors)
    if errors:
        raise InvalidArgument(errors)
    return spec


def cloud_identity_from_dict(data: Any) -> specs_pb2.CloudIdentity:
    """A CloudIdentity from a plain dict (``name``, ``provider``, ``account_id``, ``credentials_ref``)."""
    errors: list[FieldViolation] = []
    identity = specs_pb2.CloudIdentity()
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            [FieldViolation("", f"a CloudIdentity must be a mapping, got {_type_name(data)}")]
        )
    _fill_message(identity, data, "", errors)
    if errors:
        raise InvalidArgument(errors)
    return identity


def _value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        n = value.number_value
        # Integral doubles come back as ints (JSON configs use integers); NaN/inf stay floats
        # so that validation can refuse them by path instead of a serializer failing later.
        return int(n) if math.isfinite(n) and n.is_integer() and abs(n) < _MAX_SAFE_INT else n
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct_to_py(value.struct_value)
    if kind == "list_value":
        return [_value_to_py(v) for v in value.list_value.values]
    return None


def _struct_to_py(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict, without json_format (which raises on NaN from a client)."""
    return {k: _value_to_py(v) for k, v in struct.fields.items()}


def _message_to_dict(msg: pb_message.Message, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        if fd.name in skip:
            continue
        value = getattr(msg, fd.name)
        if fd.is_repeated:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                out[fd.name] = [_message_to_dict(v) for v in value]
            else:
                out[fd.name] = list(value)
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            name = fd.message_type.full_name
            if name == _STRUCT:
                out[fd.name] = _struct_to_py(value)
            elif name == _TIMESTAMP:
                if msg.HasField(fd.name):
                    out[fd.name] = value.ToJsonString()
            elif msg.HasField(fd.name) or msg.DESCRIPTOR.full_name in _LIST_ITEM_TYPES:
                out[fd.name] = _message_to_dict(value)
            continue
        if fd.has_presence and not msg.HasField(fd.name):
            continue  # an `optional` field left out: its declared default applies where it is read
        out[fd.name] = value
    return out


def spec_to_dict(spec: specs_pb2.Spec, include_output_only: bool = True) -> dict[str, Any]:
    """The Spec as a plain dict with the proto field names.

    ``network``/``cluster``/``dns`` appear only when set; Structs become dicts (integers
    stay integers); timestamps are RFC 3339 strings. With ``include_output_only=False``
    the fields the service fills in (id, revision, provider, cloud_account_id, times)
    are left out, which gives a dict fit for a Spec file.
    """
    return _message_to_dict(spec, frozenset() if include_output_only else OUTPUT_ONLY_FIELDS)


def cloud_identity_to_dict(identity: specs_pb2.CloudIdentity) -> dict[str, Any]:
    """The CloudIdentity as a plain dict."""
    return _message_to_dict(identity)


@functools.cache
def _unique_key_loader() -> type[Any]:
    """A YAML loader that refuses duplicate keys (the last one silently winning hides typos).

    Built on first use: PyYAML is imported only by commands that read a file, not by every
    CLI command that prints a Spec.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(
        loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)  # type: ignore[arg-type]
    return UniqueKeyLoader


def load_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON when the suffix is .json); InvalidArgument names the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument([FieldViolation(str(p), f"cannot read file: {exc}")]) from exc
    import yaml

    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        # A SafeLoader subclass: no arbitrary objects.
        return yaml.load(text, Loader=_unique_key_loader())
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "YAML or JSON"
        detail = " ".join(str(exc).split())
        raise InvalidArgument([FieldViolation(str(p), f"not a valid {kind} document: {detail}")]) from exc


def load_spec_file(path: str | Path) -> specs_pb2.Spec:
    """Read a Spec from a YAML or JSON file."""
    data = load_document(path)
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            [FieldViolation(str(path), f"a Spec file must hold a mapping, got {_type_name(data)}")]
        )
    try:
        return spec_from_dict(data)
    except InvalidArgument as exc:
        raise InvalidArgument(exc.violations, f"{path}: {exc.message}") from None
