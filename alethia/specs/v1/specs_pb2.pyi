import datetime

from alethia.specs.v1 import schema_pb2 as _schema_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CloudIdentity(_message.Message):
    __slots__ = ("id", "name", "provider", "account_id", "credentials_ref", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_REF_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    provider: str
    account_id: str
    credentials_ref: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., provider: _Optional[str] = ..., account_id: _Optional[str] = ..., credentials_ref: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("provision_network", "cidr_block", "network_id", "provider_config")
    PROVISION_NETWORK_FIELD_NUMBER: _ClassVar[int]
    CIDR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    provision_network: bool
    cidr_block: str
    network_id: str
    provider_config: _struct_pb2.Struct
    def __init__(self, provision_network: _Optional[bool] = ..., cidr_block: _Optional[str] = ..., network_id: _Optional[str] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("cluster_version", "instance_types", "node_min_size", "node_max_size", "node_desired_size", "cluster_admins", "provider_config")
    CLUSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPES_FIELD_NUMBER: _ClassVar[int]
    NODE_MIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    NODE_MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    NODE_DESIRED_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ADMINS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    cluster_version: str
    instance_types: _containers.RepeatedScalarFieldContainer[str]
    node_min_size: int
    node_max_size: int
    node_desired_size: int
    cluster_admins: _containers.RepeatedScalarFieldContainer[str]
    provider_config: _struct_pb2.Struct
    def __init__(self, cluster_version: _Optional[str] = ..., instance_types: _Optional[_Iterable[str]] = ..., node_min_size: _Optional[int] = ..., node_max_size: _Optional[int] = ..., node_desired_size: _Optional[int] = ..., cluster_admins: _Optional[_Iterable[str]] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Dns(_message.Message):
    __slots__ = ("enabled", "zone_id", "domain_name", "provider_config")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    zone_id: str
    domain_name: str
    provider_config: _struct_pb2.Struct
    def __init__(self, enabled: _Optional[bool] = ..., zone_id: _Optional[str] = ..., domain_name: _Optional[str] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Repository(_message.Message):
    __slots__ = ("url", "branch", "path")
    URL_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    url: str
    branch: str
    path: str
    def __init__(self, url: _Optional[str] = ..., branch: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class Scaling(_message.Message):
    __slots__ = ("min_capacity", "max_capacity")
    MIN_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    min_capacity: float
    max_capacity: float
    def __init__(self, min_capacity: _Optional[float] = ..., max_capacity: _Optional[float] = ...) -> None: ...

class Database(_message.Message):
    __slots__ = ("name", "engine", "engine_version", "instance_class", "storage_gb", "scaling", "provider_config", "backup_retention_days")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_CLASS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_GB_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BACKUP_RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    name: str
    engine: str
    engine_version: str
    instance_class: str
    storage_gb: int
    scaling: Scaling
    provider_config: _struct_pb2.Struct
    backup_retention_days: int
    def __init__(self, name: _Optional[str] = ..., engine: _Optional[str] = ..., engine_version: _Optional[str] = ..., instance_class: _Optional[str] = ..., storage_gb: _Optional[int] = ..., scaling: _Optional[_Union[Scaling, _Mapping]] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., backup_retention_days: _Optional[int] = ...) -> None: ...

class Cache(_message.Message):
    __slots__ = ("name", "node_type", "cluster_size", "provider_config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    node_type: str
    cluster_size: int
    provider_config: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., node_type: _Optional[str] = ..., cluster_size: _Optional[int] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Queue(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("name", "protocol", "endpoint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    protocol: str
    endpoint: str
    def __init__(self, name: _Optional[str] = ..., protocol: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("name", "subscriptions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    def __init__(self, name: _Optional[str] = ..., subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ...) -> None: ...

class NosqlTable(_message.Message):
    __slots__ = ("name", "partition_key", "sort_key", "provider_config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    SORT_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    partition_key: str
    sort_key: str
    provider_config: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., partition_key: _Optional[str] = ..., sort_key: _Optional[str] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StorageBucket(_message.Message):
    __slots__ = ("name", "versioning", "provider_config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSIONING_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    versioning: bool
    provider_config: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., versioning: _Optional[bool] = ..., provider_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("name", "metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    metadata: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Spec(_message.Message):
    __slots__ = ("id", "revision", "zone_id", "project_name", "environment", "region", "cloud_identity_id", "terraform_version", "network", "cluster", "dns", "repositories", "databases", "caches", "queues", "topics", "nosql_tables", "storage_buckets", "secrets", "provider", "cloud_account_id", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CLOUD_IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    TERRAFORM_VERSION_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    REPOSITORIES_FIELD_NUMBER: _ClassVar[int]
    DATABASES_FIELD_NUMBER: _ClassVar[int]
    CACHES_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    NOSQL_TABLES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CLOUD_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    revision: int
    zone_id: str
    project_name: str
    environment: str
    region: str
    cloud_identity_id: str
    terraform_version: str
    network: Network
    cluster: Cluster
    dns: Dns
    repositories: _containers.RepeatedCompositeFieldContainer[Repository]
    databases: _containers.RepeatedCompositeFieldContainer[Database]
    caches: _containers.RepeatedCompositeFieldContainer[Cache]
    queues: _containers.RepeatedCompositeFieldContainer[Queue]
    topics: _containers.RepeatedCompositeFieldContainer[Topic]
    nosql_tables: _containers.RepeatedCompositeFieldContainer[NosqlTable]
    storage_buckets: _containers.RepeatedCompositeFieldContainer[StorageBucket]
    secrets: _containers.RepeatedCompositeFieldContainer[Secret]
    provider: str
    cloud_account_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., revision: _Optional[int] = ..., zone_id: _Optional[str] = ..., project_name: _Optional[str] = ..., environment: _Optional[str] = ..., region: _Optional[str] = ..., cloud_identity_id: _Optional[str] = ..., terraform_version: _Optional[str] = ..., network: _Optional[_Union[Network, _Mapping]] = ..., cluster: _Optional[_Union[Cluster, _Mapping]] = ..., dns: _Optional[_Union[Dns, _Mapping]] = ..., repositories: _Optional[_Iterable[_Union[Repository, _Mapping]]] = ..., databases: _Optional[_Iterable[_Union[Database, _Mapping]]] = ..., caches: _Optional[_Iterable[_Union[Cache, _Mapping]]] = ..., queues: _Optional[_Iterable[_Union[Queue, _Mapping]]] = ..., topics: _Optional[_Iterable[_Union[Topic, _Mapping]]] = ..., nosql_tables: _Optional[_Iterable[_Union[NosqlTable, _Mapping]]] = ..., storage_buckets: _Optional[_Iterable[_Union[StorageBucket, _Mapping]]] = ..., secrets: _Optional[_Iterable[_Union[Secret, _Mapping]]] = ..., provider: _Optional[str] = ..., cloud_account_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateCloudIdentityRequest(_message.Message):
    __slots__ = ("identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    identity: CloudIdentity
    def __init__(self, identity: _Optional[_Union[CloudIdentity, _Mapping]] = ...) -> None: ...

class GetCloudIdentityRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListCloudIdentitiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCloudIdentitiesResponse(_message.Message):
    __slots__ = ("identities", "next_page_token")
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    identities: _containers.RepeatedCompositeFieldContainer[CloudIdentity]
    next_page_token: str
    def __init__(self, identities: _Optional[_Iterable[_Union[CloudIdentity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateSpecRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: Spec
    def __init__(self, spec: _Optional[_Union[Spec, _Mapping]] = ...) -> None: ...

class GetSpecRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateSpecRequest(_message.Message):
    __slots__ = ("spec", "expected_revision")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    spec: Spec
    expected_revision: int
    def __init__(self, spec: _Optional[_Union[Spec, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class ListSpecsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "zone_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    zone_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., zone_id: _Optional[str] = ...) -> None: ...

class ListSpecsResponse(_message.Message):
    __slots__ = ("specs", "next_page_token")
    SPECS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    specs: _containers.RepeatedCompositeFieldContainer[Spec]
    next_page_token: str
    def __init__(self, specs: _Optional[_Iterable[_Union[Spec, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSpecRequest(_message.Message):
    __slots__ = ("id", "expected_revision", "abandon")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    ABANDON_FIELD_NUMBER: _ClassVar[int]
    id: str
    expected_revision: int
    abandon: bool
    def __init__(self, id: _Optional[str] = ..., expected_revision: _Optional[int] = ..., abandon: _Optional[bool] = ...) -> None: ...

class DeleteSpecResponse(_message.Message):
    __slots__ = ("abandoned", "workspace", "state_bucket", "state_key", "last_deploy_job_id")
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    STATE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_DEPLOY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    abandoned: bool
    workspace: str
    state_bucket: str
    state_key: str
    last_deploy_job_id: str
    def __init__(self, abandoned: _Optional[bool] = ..., workspace: _Optional[str] = ..., state_bucket: _Optional[str] = ..., state_key: _Optional[str] = ..., last_deploy_job_id: _Optional[str] = ...) -> None: ...
