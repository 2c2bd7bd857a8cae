import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunningJob(_message.Message):
    __slots__ = ("job_id", "type", "stage", "start_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    type: str
    stage: str
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., type: _Optional[str] = ..., stage: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunnerStatus(_message.Message):
    __slots__ = ("runner_id", "concurrency", "draining", "running", "jobs_completed", "terraform_version", "terraform_path")
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    JOBS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TERRAFORM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TERRAFORM_PATH_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    concurrency: int
    draining: bool
    running: _containers.RepeatedCompositeFieldContainer[RunningJob]
    jobs_completed: int
    terraform_version: str
    terraform_path: str
    def __init__(self, runner_id: _Optional[str] = ..., concurrency: _Optional[int] = ..., draining: _Optional[bool] = ..., running: _Optional[_Iterable[_Union[RunningJob, _Mapping]]] = ..., jobs_completed: _Optional[int] = ..., terraform_version: _Optional[str] = ..., terraform_path: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
