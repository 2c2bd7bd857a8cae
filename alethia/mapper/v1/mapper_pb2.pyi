from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RenderTfvarsRequest(_message.Message):
    __slots__ = ("snapshot_json",)
    SNAPSHOT_JSON_FIELD_NUMBER: _ClassVar[int]
    snapshot_json: str
    def __init__(self, snapshot_json: _Optional[str] = ...) -> None: ...

class RenderTfvarsResponse(_message.Message):
    __slots__ = ("provider", "template", "tfvars_json")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TFVARS_JSON_FIELD_NUMBER: _ClassVar[int]
    provider: str
    template: str
    tfvars_json: str
    def __init__(self, provider: _Optional[str] = ..., template: _Optional[str] = ..., tfvars_json: _Optional[str] = ...) -> None: ...

class DescribeMappingRequest(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: str
    def __init__(self, provider: _Optional[str] = ...) -> None: ...

class MappingRow(_message.Message):
    __slots__ = ("spec_field", "variable", "type", "description")
    SPEC_FIELD_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    spec_field: str
    variable: str
    type: str
    description: str
    def __init__(self, spec_field: _Optional[str] = ..., variable: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DescribeMappingResponse(_message.Message):
    __slots__ = ("provider", "rows")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    rows: _containers.RepeatedCompositeFieldContainer[MappingRow]
    def __init__(self, provider: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[MappingRow, _Mapping]]] = ...) -> None: ...
