"""``google.protobuf.Struct`` <-> plain dict, keeping integers integers.

Struct stores every number as a double; JSON configs use integers (``max_pods: 110``),
so integral doubles come back as ``int``. This is the only place that conversion lives.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2


def _value(value: struct_pb2.Value) -> Any:
    # What json_format.MessageToDict gives, integral doubles back as ints, in one walk: a
    # 50-component snapshot reads ~50 Structs, and json_format's generic message walk
    # (then a second walk for the ints) was a third of building it.
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) < 2**53:
            return int(number)
        if math.isinf(number) or math.isnan(number):  # json_format refuses them too
            raise ValueError(f"Struct number {number} has no JSON form")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _fields(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    return None  # null_value, or no kind set (JSON null either way)


def _fields(msg: struct_pb2.Struct) -> dict[str, Any]:
    fields = msg.fields
    return {key: _value(fields[key]) for key in fields}


def struct_to_dict(msg: struct_pb2.Struct | None) -> dict[str, Any]:
    """A Struct as a dict (empty dict for an unset Struct)."""
    if msg is None:
        return {}
    return _fields(msg)


def dict_to_struct(
    value: dict[str, Any] | None, target: struct_pb2.Struct | None = None
) -> struct_pb2.Struct:
    """A dict as a Struct; fills ``target`` in place when given (for message fields)."""
    msg = target if target is not None else struct_pb2.Struct()
    msg.Clear()
    if value:
        msg.update(value)
    return msg
