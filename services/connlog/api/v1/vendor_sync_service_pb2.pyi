import datetime

from connlog.api.v1 import connection_event_pb2 as _connection_event_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncSourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_SOURCE_STATE_UNSPECIFIED: _ClassVar[SyncSourceState]
    SYNC_SOURCE_STATE_ACTIVE: _ClassVar[SyncSourceState]
    SYNC_SOURCE_STATE_PAUSED: _ClassVar[SyncSourceState]
    SYNC_SOURCE_STATE_CREDENTIAL_REJECTED: _ClassVar[SyncSourceState]
SYNC_SOURCE_STATE_UNSPECIFIED: SyncSourceState
SYNC_SOURCE_STATE_ACTIVE: SyncSourceState
SYNC_SOURCE_STATE_PAUSED: SyncSourceState
SYNC_SOURCE_STATE_CREDENTIAL_REJECTED: SyncSourceState

class SyncSource(_message.Message):
    __slots__ = ("name", "display_name", "vendor", "base_url", "credential", "has_credential", "network_id", "vendor_network_id", "clients", "poll_interval", "rate_limit_per_second", "organization_id", "client_identifier", "enabled", "tenant_id", "create_time", "update_time", "discover_clients")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    HAS_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISCOVER_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    vendor: _connection_event_pb2.Vendor
    base_url: str
    credential: str
    has_credential: bool
    network_id: str
    vendor_network_id: str
    clients: _containers.RepeatedScalarFieldContainer[str]
    poll_interval: _duration_pb2.Duration
    rate_limit_per_second: float
    organization_id: str
    client_identifier: str
    enabled: bool
    tenant_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    discover_clients: bool
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., vendor: _Optional[_Union[_connection_event_pb2.Vendor, str]] = ..., base_url: _Optional[str] = ..., credential: _Optional[str] = ..., has_credential: _Optional[bool] = ..., network_id: _Optional[str] = ..., vendor_network_id: _Optional[str] = ..., clients: _Optional[_Iterable[str]] = ..., poll_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rate_limit_per_second: _Optional[float] = ..., organization_id: _Optional[str] = ..., client_identifier: _Optional[str] = ..., enabled: _Optional[bool] = ..., tenant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., discover_clients: _Optional[bool] = ...) -> None: ...

class CreateSyncSourceRequest(_message.Message):
    __slots__ = ("sync_source",)
    SYNC_SOURCE_FIELD_NUMBER: _ClassVar[int]
    sync_source: SyncSource
    def __init__(self, sync_source: _Optional[_Union[SyncSource, _Mapping]] = ...) -> None: ...

class GetSyncSourceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSyncSourcesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSyncSourcesResponse(_message.Message):
    __slots__ = ("sync_sources", "next_page_token")
    SYNC_SOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sync_sources: _containers.RepeatedCompositeFieldContainer[SyncSource]
    next_page_token: str
    def __init__(self, sync_sources: _Optional[_Iterable[_Union[SyncSource, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSyncSourceRequest(_message.Message):
    __slots__ = ("sync_source", "update_mask")
    SYNC_SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    sync_source: SyncSource
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, sync_source: _Optional[_Union[SyncSource, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteSyncSourceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RunSyncSourceRequest(_message.Message):
    __slots__ = ("name", "wait")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    wait: bool
    def __init__(self, name: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class RunSyncSourceResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: SyncSourceStatus
    def __init__(self, status: _Optional[_Union[SyncSourceStatus, _Mapping]] = ...) -> None: ...

class GetSyncSourceStatusRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClientSyncStatus(_message.Message):
    __slots__ = ("client", "checkpoint_time", "last_success_time", "lag", "fetched_count", "ingested_count", "duplicate_count", "rejected_count", "malformed_count", "last_error")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    FETCHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    INGESTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MALFORMED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    client: str
    checkpoint_time: _timestamp_pb2.Timestamp
    last_success_time: _timestamp_pb2.Timestamp
    lag: _duration_pb2.Duration
    fetched_count: int
    ingested_count: int
    duplicate_count: int
    rejected_count: int
    malformed_count: int
    last_error: str
    def __init__(self, client: _Optional[str] = ..., checkpoint_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fetched_count: _Optional[int] = ..., ingested_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., malformed_count: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class SyncSourceStatus(_message.Message):
    __slots__ = ("name", "state", "last_error", "clients", "clients_known", "clients_polled_last_sweep", "requests_last_sweep", "last_sweep_time", "last_sweep_duration", "clients_due_next_sweep", "next_sweep_estimate", "budget_per_second", "last_discovery_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_POLLED_LAST_SWEEP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_LAST_SWEEP_FIELD_NUMBER: _ClassVar[int]
    LAST_SWEEP_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SWEEP_DURATION_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_DUE_NEXT_SWEEP_FIELD_NUMBER: _ClassVar[int]
    NEXT_SWEEP_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LAST_DISCOVERY_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: SyncSourceState
    last_error: str
    clients: _containers.RepeatedCompositeFieldContainer[ClientSyncStatus]
    clients_known: int
    clients_polled_last_sweep: int
    requests_last_sweep: int
    last_sweep_time: _timestamp_pb2.Timestamp
    last_sweep_duration: _duration_pb2.Duration
    clients_due_next_sweep: int
    next_sweep_estimate: _duration_pb2.Duration
    budget_per_second: float
    last_discovery_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[SyncSourceState, str]] = ..., last_error: _Optional[str] = ..., clients: _Optional[_Iterable[_Union[ClientSyncStatus, _Mapping]]] = ..., clients_known: _Optional[int] = ..., clients_polled_last_sweep: _Optional[int] = ..., requests_last_sweep: _Optional[int] = ..., last_sweep_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sweep_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., clients_due_next_sweep: _Optional[int] = ..., next_sweep_estimate: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., budget_per_second: _Optional[float] = ..., last_discovery_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
