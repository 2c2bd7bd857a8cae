import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_TYPE_UNSPECIFIED: _ClassVar[JobType]
    PLAN: _ClassVar[JobType]
    DEPLOY: _ClassVar[JobType]
    DESTROY: _ClassVar[JobType]
    UNLOCK: _ClassVar[JobType]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    QUEUED: _ClassVar[JobStatus]
    RUNNING: _ClassVar[JobStatus]
    SUCCEEDED: _ClassVar[JobStatus]
    FAILED: _ClassVar[JobStatus]
    CANCELLED: _ClassVar[JobStatus]
    ERRORED: _ClassVar[JobStatus]
JOB_TYPE_UNSPECIFIED: JobType
PLAN: JobType
DEPLOY: JobType
DESTROY: JobType
UNLOCK: JobType
JOB_STATUS_UNSPECIFIED: JobStatus
QUEUED: JobStatus
RUNNING: JobStatus
SUCCEEDED: JobStatus
FAILED: JobStatus
CANCELLED: JobStatus
ERRORED: JobStatus

class ResourceChange(_message.Message):
    __slots__ = ("address", "actions")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    address: str
    actions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, address: _Optional[str] = ..., actions: _Optional[_Iterable[str]] = ...) -> None: ...

class ChangeSummary(_message.Message):
    __slots__ = ("add", "change", "destroy", "resources")
    ADD_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    DESTROY_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    add: int
    change: int
    destroy: int
    resources: _containers.RepeatedCompositeFieldContainer[ResourceChange]
    def __init__(self, add: _Optional[int] = ..., change: _Optional[int] = ..., destroy: _Optional[int] = ..., resources: _Optional[_Iterable[_Union[ResourceChange, _Mapping]]] = ...) -> None: ...

class CostEstimate(_message.Message):
    __slots__ = ("status", "reason", "currency", "total_monthly_cost", "breakdown_json")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MONTHLY_COST_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    currency: str
    total_monthly_cost: float
    breakdown_json: str
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ..., currency: _Optional[str] = ..., total_monthly_cost: _Optional[float] = ..., breakdown_json: _Optional[str] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("name", "sensitive", "value_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    sensitive: bool
    value_json: str
    def __init__(self, name: _Optional[str] = ..., sensitive: _Optional[bool] = ..., value_json: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "key", "sha256", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    key: str
    sha256: str
    size: int
    def __init__(self, name: _Optional[str] = ..., key: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("name", "status", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    detail: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("level", "message", "type", "json", "stage")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    level: str
    message: str
    type: str
    json: str
    stage: str
    def __init__(self, level: _Optional[str] = ..., message: _Optional[str] = ..., type: _Optional[str] = ..., json: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("event_id", "job_id", "spec_id", "type", "status", "time", "attempt", "message", "changes", "outputs", "log", "cost", "job_type", "workspace")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    job_id: str
    spec_id: str
    type: str
    status: JobStatus
    time: _timestamp_pb2.Timestamp
    attempt: int
    message: str
    changes: ChangeSummary
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    log: LogLine
    cost: CostEstimate
    job_type: JobType
    workspace: str
    def __init__(self, event_id: _Optional[str] = ..., job_id: _Optional[str] = ..., spec_id: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., message: _Optional[str] = ..., changes: _Optional[_Union[ChangeSummary, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ..., cost: _Optional[_Union[CostEstimate, _Mapping]] = ..., job_type: _Optional[_Union[JobType, str]] = ..., workspace: _Optional[str] = ...) -> None: ...

class Dispatch(_message.Message):
    __slots__ = ("job_id", "workspace")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    workspace: str
    def __init__(self, job_id: _Optional[str] = ..., workspace: _Optional[str] = ...) -> None: ...
