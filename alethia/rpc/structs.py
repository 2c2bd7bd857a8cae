"""``google.protobuf.Struct`` <-> plain dict, keeping integers integers.

Struct stores every number as a double; JSON configs use integers (``max_pods: 110``),
so integral doubles come back as ``int``. This is the only place that conversion lives.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def struct_to_dict(msg: struct_pb2.Struct | None) -> dict[str, Any]:
    """A Struct as a dict (empty dict for an unset Struct)."""
    if msg is None:
        return {}
    from google.protobuf import json_format  # only when there is a Struct to read

    return _ints(json_format.MessageToDict(msg))  # type: ignore[no-any-return]


def dict_to_struct(
    value: dict[str, Any] | None, target: struct_pb2.Struct | None = None
) -> struct_pb2.Struct:
    """A dict as a Struct; fills ``target`` in place when given (for message fields)."""
    msg = target if target is not None else struct_pb2.Struct()
    msg.Clear()
    if value:
        msg.update(value)
    return msg
