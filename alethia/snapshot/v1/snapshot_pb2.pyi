import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from alethia.events.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttemptError(_message.Message):
    __slots__ = ("attempt", "runner_id", "error", "time")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    runner_id: str
    error: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, attempt: _Optional[int] = ..., runner_id: _Optional[str] = ..., error: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec_id", "type", "status", "plan_job_id", "config_hash", "spec_revision", "workspace", "snapshot_json", "queue_position", "changes", "cost", "outputs", "error", "attempt", "max_attempts", "runner_id", "requested_by", "cancel_requested", "artifacts", "post_apply_steps", "attempt_errors", "idempotency_key", "create_time", "start_time", "end_time", "applied_by_job_id", "lock_id", "state_lock_id", "resources_applied")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PLAN_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_HASH_FIELD_NUMBER: _ClassVar[int]
    SPEC_REVISION_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_JSON_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    POST_APPLY_STEPS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec_id: str
    type: _events_pb2.JobType
    status: _events_pb2.JobStatus
    plan_job_id: str
    config_hash: str
    spec_revision: int
    workspace: str
    snapshot_json: str
    queue_position: int
    changes: _events_pb2.ChangeSummary
    cost: _events_pb2.CostEstimate
    outputs: _containers.RepeatedCompositeFieldContainer[_events_pb2.Output]
    error: str
    attempt: int
    max_attempts: int
    runner_id: str
    requested_by: str
    cancel_requested: bool
    artifacts: _containers.RepeatedCompositeFieldContainer[_events_pb2.Artifact]
    post_apply_steps: _containers.RepeatedCompositeFieldContainer[_events_pb2.StepResult]
    attempt_errors: _containers.RepeatedCompositeFieldContainer[AttemptError]
    idempotency_key: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    applied_by_job_id: str
    lock_id: str
    state_lock_id: str
    resources_applied: int
    def __init__(self, id: _Optional[str] = ..., spec_id: _Optional[str] = ..., type: _Optional[_Union[_events_pb2.JobType, str]] = ..., status: _Optional[_Union[_events_pb2.JobStatus, str]] = ..., plan_job_id: _Optional[str] = ..., config_hash: _Optional[str] = ..., spec_revision: _Optional[int] = ..., workspace: _Optional[str] = ..., snapshot_json: _Optional[str] = ..., queue_position: _Optional[int] = ..., changes: _Optional[_Union[_events_pb2.ChangeSummary, _Mapping]] = ..., cost: _Optional[_Union[_events_pb2.CostEstimate, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[_events_pb2.Output, _Mapping]]] = ..., error: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., runner_id: _Optional[str] = ..., requested_by: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., artifacts: _Optional[_Iterable[_Union[_events_pb2.Artifact, _Mapping]]] = ..., post_apply_steps: _Optional[_Iterable[_Union[_events_pb2.StepResult, _Mapping]]] = ..., attempt_errors: _Optional[_Iterable[_Union[AttemptError, _Mapping]]] = ..., idempotency_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by_job_id: _Optional[str] = ..., lock_id: _Optional[str] = ..., state_lock_id: _Optional[str] = ..., resources_applied: _Optional[int] = ...) -> None: ...

class BuildSnapshotRequest(_message.Message):
    __slots__ = ("spec_id",)
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    def __init__(self, spec_id: _Optional[str] = ...) -> None: ...

class BuildSnapshotResponse(_message.Message):
    __slots__ = ("snapshot_json", "config_hash", "spec_revision")
    SNAPSHOT_JSON_FIELD_NUMBER: _ClassVar[int]
    CONFIG_HASH_FIELD_NUMBER: _ClassVar[int]
    SPEC_REVISION_FIELD_NUMBER: _ClassVar[int]
    snapshot_json: str
    config_hash: str
    spec_revision: int
    def __init__(self, snapshot_json: _Optional[str] = ..., config_hash: _Optional[str] = ..., spec_revision: _Optional[int] = ...) -> None: ...

class QueueJobRequest(_message.Message):
    __slots__ = ("spec_id", "type", "plan_job_id", "idempotency_key", "requested_by", "lock_id")
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PLAN_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    type: _events_pb2.JobType
    plan_job_id: str
    idempotency_key: str
    requested_by: str
    lock_id: str
    def __init__(self, spec_id: _Optional[str] = ..., type: _Optional[_Union[_events_pb2.JobType, str]] = ..., plan_job_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., requested_by: _Optional[str] = ..., lock_id: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("spec_id", "status", "page_size", "page_token")
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    status: _events_pb2.JobStatus
    page_size: int
    page_token: str
    def __init__(self, spec_id: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.JobStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("id", "include_logs")
    ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_LOGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    include_logs: bool
    def __init__(self, id: _Optional[str] = ..., include_logs: _Optional[bool] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("job_id", "token", "expires_at", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    expires_at: _timestamp_pb2.Timestamp
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class ClaimJobRequest(_message.Message):
    __slots__ = ("runner_id", "lease_seconds")
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    lease_seconds: int
    def __init__(self, runner_id: _Optional[str] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class ClaimJobResponse(_message.Message):
    __slots__ = ("claimed", "job", "lease", "plan_artifacts")
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    PLAN_ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    claimed: bool
    job: Job
    lease: Lease
    plan_artifacts: _containers.RepeatedCompositeFieldContainer[_events_pb2.Artifact]
    def __init__(self, claimed: _Optional[bool] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ..., plan_artifacts: _Optional[_Iterable[_Union[_events_pb2.Artifact, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("lease", "state_lock_id")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    STATE_LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    lease: Lease
    state_lock_id: str
    def __init__(self, lease: _Optional[_Union[Lease, _Mapping]] = ..., state_lock_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("expires_at", "cancel_requested")
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    expires_at: _timestamp_pb2.Timestamp
    cancel_requested: bool
    def __init__(self, expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("status", "changes", "cost", "artifacts", "outputs", "error", "post_apply_steps", "resources_applied", "state_lock_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    POST_APPLY_STEPS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    STATE_LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    status: _events_pb2.JobStatus
    changes: _events_pb2.ChangeSummary
    cost: _events_pb2.CostEstimate
    artifacts: _containers.RepeatedCompositeFieldContainer[_events_pb2.Artifact]
    outputs: _containers.RepeatedCompositeFieldContainer[_events_pb2.Output]
    error: str
    post_apply_steps: _containers.RepeatedCompositeFieldContainer[_events_pb2.StepResult]
    resources_applied: int
    state_lock_id: str
    def __init__(self, status: _Optional[_Union[_events_pb2.JobStatus, str]] = ..., changes: _Optional[_Union[_events_pb2.ChangeSummary, _Mapping]] = ..., cost: _Optional[_Union[_events_pb2.CostEstimate, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[_events_pb2.Artifact, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_events_pb2.Output, _Mapping]]] = ..., error: _Optional[str] = ..., post_apply_steps: _Optional[_Iterable[_Union[_events_pb2.StepResult, _Mapping]]] = ..., resources_applied: _Optional[int] = ..., state_lock_id: _Optional[str] = ...) -> None: ...

class CompleteJobRequest(_message.Message):
    __slots__ = ("lease", "result")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    lease: Lease
    result: JobResult
    def __init__(self, lease: _Optional[_Union[Lease, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ...) -> None: ...

class CompleteAndClaimJobRequest(_message.Message):
    __slots__ = ("lease", "result", "next")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    lease: Lease
    result: JobResult
    next: ClaimJobRequest
    def __init__(self, lease: _Optional[_Union[Lease, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., next: _Optional[_Union[ClaimJobRequest, _Mapping]] = ...) -> None: ...

class CompleteAndClaimJobResponse(_message.Message):
    __slots__ = ("job", "next")
    JOB_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    job: Job
    next: ClaimJobResponse
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., next: _Optional[_Union[ClaimJobResponse, _Mapping]] = ...) -> None: ...

class GetGitTokenRequest(_message.Message):
    __slots__ = ("job_id", "lease_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_token: str
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[str] = ...) -> None: ...

class GetGitTokenResponse(_message.Message):
    __slots__ = ("token", "repository_url")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_URL_FIELD_NUMBER: _ClassVar[int]
    token: str
    repository_url: str
    def __init__(self, token: _Optional[str] = ..., repository_url: _Optional[str] = ...) -> None: ...

class GetInfrastructureStateRequest(_message.Message):
    __slots__ = ("spec_id",)
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    def __init__(self, spec_id: _Optional[str] = ...) -> None: ...

class InfrastructureState(_message.Message):
    __slots__ = ("spec_id", "workspace", "state_key", "state_bucket", "may_have_infrastructure", "last_deploy_job_id", "last_deploy_status", "last_destroy_job_id", "active_job_ids")
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    MAY_HAVE_INFRASTRUCTURE_FIELD_NUMBER: _ClassVar[int]
    LAST_DEPLOY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_DEPLOY_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_DESTROY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    workspace: str
    state_key: str
    state_bucket: str
    may_have_infrastructure: bool
    last_deploy_job_id: str
    last_deploy_status: _events_pb2.JobStatus
    last_destroy_job_id: str
    active_job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spec_id: _Optional[str] = ..., workspace: _Optional[str] = ..., state_key: _Optional[str] = ..., state_bucket: _Optional[str] = ..., may_have_infrastructure: _Optional[bool] = ..., last_deploy_job_id: _Optional[str] = ..., last_deploy_status: _Optional[_Union[_events_pb2.JobStatus, str]] = ..., last_destroy_job_id: _Optional[str] = ..., active_job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StateRecovery(_message.Message):
    __slots__ = ("workspace", "job_id", "spec_id", "state_key", "location", "resources_applied", "lock_id", "runner_id", "detail", "resolved", "create_time", "resolve_time", "resolution")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    job_id: str
    spec_id: str
    state_key: str
    location: str
    resources_applied: int
    lock_id: str
    runner_id: str
    detail: str
    resolved: bool
    create_time: _timestamp_pb2.Timestamp
    resolve_time: _timestamp_pb2.Timestamp
    resolution: str
    def __init__(self, workspace: _Optional[str] = ..., job_id: _Optional[str] = ..., spec_id: _Optional[str] = ..., state_key: _Optional[str] = ..., location: _Optional[str] = ..., resources_applied: _Optional[int] = ..., lock_id: _Optional[str] = ..., runner_id: _Optional[str] = ..., detail: _Optional[str] = ..., resolved: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution: _Optional[str] = ...) -> None: ...

class RecordStateRecoveryRequest(_message.Message):
    __slots__ = ("job_id", "location", "resources_applied", "lock_id", "runner_id", "detail")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    location: str
    resources_applied: int
    lock_id: str
    runner_id: str
    detail: str
    def __init__(self, job_id: _Optional[str] = ..., location: _Optional[str] = ..., resources_applied: _Optional[int] = ..., lock_id: _Optional[str] = ..., runner_id: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ResolveStateRecoveryRequest(_message.Message):
    __slots__ = ("job_id", "runner_id", "resolution")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    runner_id: str
    resolution: str
    def __init__(self, job_id: _Optional[str] = ..., runner_id: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ListStateRecoveriesRequest(_message.Message):
    __slots__ = ("include_resolved", "workspace")
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    workspace: str
    def __init__(self, include_resolved: _Optional[bool] = ..., workspace: _Optional[str] = ...) -> None: ...

class ListStateRecoveriesResponse(_message.Message):
    __slots__ = ("recoveries",)
    RECOVERIES_FIELD_NUMBER: _ClassVar[int]
    recoveries: _containers.RepeatedCompositeFieldContainer[StateRecovery]
    def __init__(self, recoveries: _Optional[_Iterable[_Union[StateRecovery, _Mapping]]] = ...) -> None: ...

class FindStateLockHolderRequest(_message.Message):
    __slots__ = ("workspace", "lock_id")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    LOCK_ID_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    lock_id: str
    def __init__(self, workspace: _Optional[str] = ..., lock_id: _Optional[str] = ...) -> None: ...
