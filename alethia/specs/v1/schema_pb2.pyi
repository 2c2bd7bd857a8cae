from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
SCHEMA_FIELD_NUMBER: _ClassVar[int]
schema: _descriptor.FieldDescriptor

class FieldSchema(_message.Message):
    __slots__ = ("max_length", "required", "default", "min", "max", "choices", "set")
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    max_length: int
    required: bool
    default: str
    min: float
    max: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    set: bool
    def __init__(self, max_length: _Optional[int] = ..., required: _Optional[bool] = ..., default: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ..., set: _Optional[bool] = ...) -> None: ...
