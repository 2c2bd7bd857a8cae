"""Specs and cloud identities as plain dicts (proto field names): the output half of :mod:`alethia.specfile`.

Kept apart from the file loading and the strict dict -> proto conversion so that the
CLI's ``--json`` reads (``alethia spec list --json`` runs in loops) import only this:
no YAML, no regular expressions, no error model. :mod:`alethia.specfile` re-exports
:func:`spec_to_dict` and :func:`cloud_identity_to_dict`.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor

from alethia.specs.v1 import specs_pb2

# Fields the service fills in; accepted on input (so a dumped Spec loads again), never required.
OUTPUT_ONLY_FIELDS = frozenset(
    {"id", "revision", "provider", "cloud_account_id", "create_time", "update_time"}
)
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
# Integers beyond this cannot survive a Struct (doubles) or a JSON round trip exactly.
_MAX_SAFE_INT = 2**53
# Messages that only occur as list items: their nested messages (``scaling``) are always present.
_LIST_ITEM_TYPES = frozenset(
    fd.message_type.full_name
    for fd in specs_pb2.Spec.DESCRIPTOR.fields
    if fd.is_repeated and fd.type == FieldDescriptor.TYPE_MESSAGE
)


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


__all__ = ["OUTPUT_ONLY_FIELDS", "cloud_identity_to_dict", "spec_to_dict"]
