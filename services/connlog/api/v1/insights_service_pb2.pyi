import datetime

from connlog.api.v1 import connection_event_pb2 as _connection_event_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_BY_UNSPECIFIED: _ClassVar[GroupBy]
    GROUP_BY_NETWORK: _ClassVar[GroupBy]
    GROUP_BY_ACCESS_POINT: _ClassVar[GroupBy]
    GROUP_BY_SSID: _ClassVar[GroupBy]
    GROUP_BY_BAND: _ClassVar[GroupBy]
    GROUP_BY_CLIENT: _ClassVar[GroupBy]
    GROUP_BY_FAILURE_CATEGORY: _ClassVar[GroupBy]
    GROUP_BY_STEP: _ClassVar[GroupBy]

class TimeToConnectBasis(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_TO_CONNECT_BASIS_UNSPECIFIED: _ClassVar[TimeToConnectBasis]
    TIME_TO_CONNECT_BASIS_TIMING_FACTS: _ClassVar[TimeToConnectBasis]
    TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE: _ClassVar[TimeToConnectBasis]
    TIME_TO_CONNECT_BASIS_MIXED: _ClassVar[TimeToConnectBasis]

class SessionEnd(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_END_UNSPECIFIED: _ClassVar[SessionEnd]
    SESSION_END_DISCONNECT: _ClassVar[SessionEnd]
    SESSION_END_INACTIVITY: _ClassVar[SessionEnd]
    SESSION_END_OPEN: _ClassVar[SessionEnd]

class SessionOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_OUTCOME_UNSPECIFIED: _ClassVar[SessionOutcome]
    SESSION_OUTCOME_CONNECTED: _ClassVar[SessionOutcome]
    SESSION_OUTCOME_FAILED: _ClassVar[SessionOutcome]
    SESSION_OUTCOME_INCOMPLETE: _ClassVar[SessionOutcome]
GROUP_BY_UNSPECIFIED: GroupBy
GROUP_BY_NETWORK: GroupBy
GROUP_BY_ACCESS_POINT: GroupBy
GROUP_BY_SSID: GroupBy
GROUP_BY_BAND: GroupBy
GROUP_BY_CLIENT: GroupBy
GROUP_BY_FAILURE_CATEGORY: GroupBy
GROUP_BY_STEP: GroupBy
TIME_TO_CONNECT_BASIS_UNSPECIFIED: TimeToConnectBasis
TIME_TO_CONNECT_BASIS_TIMING_FACTS: TimeToConnectBasis
TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE: TimeToConnectBasis
TIME_TO_CONNECT_BASIS_MIXED: TimeToConnectBasis
SESSION_END_UNSPECIFIED: SessionEnd
SESSION_END_DISCONNECT: SessionEnd
SESSION_END_INACTIVITY: SessionEnd
SESSION_END_OPEN: SessionEnd
SESSION_OUTCOME_UNSPECIFIED: SessionOutcome
SESSION_OUTCOME_CONNECTED: SessionOutcome
SESSION_OUTCOME_FAILED: SessionOutcome
SESSION_OUTCOME_INCOMPLETE: SessionOutcome

class SummarizeConnectionsRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "group_by", "bucket_duration", "page_size", "page_token", "client_id", "client_mac_address", "steps", "bands", "ssid", "ssid_number", "access_point_serial", "access_point_name", "bssid", "vendor")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    BUCKET_DURATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    SSID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_NAME_FIELD_NUMBER: _ClassVar[int]
    BSSID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[GroupBy]
    bucket_duration: _duration_pb2.Duration
    page_size: int
    page_token: str
    client_id: str
    client_mac_address: str
    steps: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.ConnectionStep]
    bands: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Band]
    ssid: str
    ssid_number: int
    access_point_serial: str
    access_point_name: str
    bssid: str
    vendor: _connection_event_pb2.Vendor
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[_Union[GroupBy, str]]] = ..., bucket_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., client_id: _Optional[str] = ..., client_mac_address: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionStep, str]]] = ..., bands: _Optional[_Iterable[_Union[_connection_event_pb2.Band, str]]] = ..., ssid: _Optional[str] = ..., ssid_number: _Optional[int] = ..., access_point_serial: _Optional[str] = ..., access_point_name: _Optional[str] = ..., bssid: _Optional[str] = ..., vendor: _Optional[_Union[_connection_event_pb2.Vendor, str]] = ...) -> None: ...

class ConnectionGroupKey(_message.Message):
    __slots__ = ("network_id", "access_point", "ssid", "band", "client", "failure_code", "step", "bucket_start_time")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BUCKET_START_TIME_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    access_point: _connection_event_pb2.AccessPoint
    ssid: str
    band: _connection_event_pb2.Band
    client: _connection_event_pb2.Client
    failure_code: int
    step: _connection_event_pb2.ConnectionStep
    bucket_start_time: _timestamp_pb2.Timestamp
    def __init__(self, network_id: _Optional[str] = ..., access_point: _Optional[_Union[_connection_event_pb2.AccessPoint, _Mapping]] = ..., ssid: _Optional[str] = ..., band: _Optional[_Union[_connection_event_pb2.Band, str]] = ..., client: _Optional[_Union[_connection_event_pb2.Client, _Mapping]] = ..., failure_code: _Optional[int] = ..., step: _Optional[_Union[_connection_event_pb2.ConnectionStep, str]] = ..., bucket_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepCounts(_message.Message):
    __slots__ = ("step", "event_count", "attempt_count", "success_count", "failure_count", "success_rate")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    step: _connection_event_pb2.ConnectionStep
    event_count: int
    attempt_count: int
    success_count: int
    failure_count: int
    success_rate: float
    def __init__(self, step: _Optional[_Union[_connection_event_pb2.ConnectionStep, str]] = ..., event_count: _Optional[int] = ..., attempt_count: _Optional[int] = ..., success_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., success_rate: _Optional[float] = ...) -> None: ...

class FailureReason(_message.Message):
    __slots__ = ("step", "failure_code", "reason", "sub_reason", "count", "first_time", "last_time")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUB_REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_TIME_FIELD_NUMBER: _ClassVar[int]
    step: _connection_event_pb2.ConnectionStep
    failure_code: int
    reason: str
    sub_reason: str
    count: int
    first_time: _timestamp_pb2.Timestamp
    last_time: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[_Union[_connection_event_pb2.ConnectionStep, str]] = ..., failure_code: _Optional[int] = ..., reason: _Optional[str] = ..., sub_reason: _Optional[str] = ..., count: _Optional[int] = ..., first_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConnectionGroup(_message.Message):
    __slots__ = ("key", "steps", "totals", "top_failure_reasons")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    TOP_FAILURE_REASONS_FIELD_NUMBER: _ClassVar[int]
    key: ConnectionGroupKey
    steps: _containers.RepeatedCompositeFieldContainer[StepCounts]
    totals: StepCounts
    top_failure_reasons: _containers.RepeatedCompositeFieldContainer[FailureReason]
    def __init__(self, key: _Optional[_Union[ConnectionGroupKey, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepCounts, _Mapping]]] = ..., totals: _Optional[_Union[StepCounts, _Mapping]] = ..., top_failure_reasons: _Optional[_Iterable[_Union[FailureReason, _Mapping]]] = ...) -> None: ...

class SummarizeConnectionsResponse(_message.Message):
    __slots__ = ("groups", "next_page_token", "total_size")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[ConnectionGroup]
    next_page_token: str
    total_size: int
    def __init__(self, groups: _Optional[_Iterable[_Union[ConnectionGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class SummarizeTimeToConnectRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "group_by", "page_size", "page_token", "client_id", "client_mac_address", "bands", "ssid", "access_point_serial", "vendor")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[GroupBy]
    page_size: int
    page_token: str
    client_id: str
    client_mac_address: str
    bands: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Band]
    ssid: str
    access_point_serial: str
    vendor: _connection_event_pb2.Vendor
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[_Union[GroupBy, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., client_id: _Optional[str] = ..., client_mac_address: _Optional[str] = ..., bands: _Optional[_Iterable[_Union[_connection_event_pb2.Band, str]]] = ..., ssid: _Optional[str] = ..., access_point_serial: _Optional[str] = ..., vendor: _Optional[_Union[_connection_event_pb2.Vendor, str]] = ...) -> None: ...

class TimeToConnectGroup(_message.Message):
    __slots__ = ("key", "basis", "sample_count", "timing_fact_sample_count", "event_sequence_sample_count", "p50", "p90", "p99")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMING_FACT_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_SEQUENCE_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    key: ConnectionGroupKey
    basis: TimeToConnectBasis
    sample_count: int
    timing_fact_sample_count: int
    event_sequence_sample_count: int
    p50: _duration_pb2.Duration
    p90: _duration_pb2.Duration
    p99: _duration_pb2.Duration
    def __init__(self, key: _Optional[_Union[ConnectionGroupKey, _Mapping]] = ..., basis: _Optional[_Union[TimeToConnectBasis, str]] = ..., sample_count: _Optional[int] = ..., timing_fact_sample_count: _Optional[int] = ..., event_sequence_sample_count: _Optional[int] = ..., p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p90: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SummarizeTimeToConnectResponse(_message.Message):
    __slots__ = ("groups", "next_page_token", "total_size")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[TimeToConnectGroup]
    next_page_token: str
    total_size: int
    def __init__(self, groups: _Optional[_Iterable[_Union[TimeToConnectGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListClientSessionsRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AccessPointVisit(_message.Message):
    __slots__ = ("access_point", "bssid", "ssid", "start_time", "end_time")
    ACCESS_POINT_FIELD_NUMBER: _ClassVar[int]
    BSSID_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    access_point: _connection_event_pb2.AccessPoint
    bssid: str
    ssid: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, access_point: _Optional[_Union[_connection_event_pb2.AccessPoint, _Mapping]] = ..., bssid: _Optional[str] = ..., ssid: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ClientSession(_message.Message):
    __slots__ = ("session_id", "network_id", "start_time", "end_time", "duration", "access_points", "roam_count", "steps_succeeded", "outcome", "failed_step", "failure", "failure_count", "end", "disconnect_step", "disconnect_reason", "event_count")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_FIELD_NUMBER: _ClassVar[int]
    ROAM_COUNT_FIELD_NUMBER: _ClassVar[int]
    STEPS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FAILED_STEP_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_STEP_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_REASON_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    network_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    access_points: _containers.RepeatedCompositeFieldContainer[AccessPointVisit]
    roam_count: int
    steps_succeeded: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.ConnectionStep]
    outcome: SessionOutcome
    failed_step: _connection_event_pb2.ConnectionStep
    failure: _connection_event_pb2.Failure
    failure_count: int
    end: SessionEnd
    disconnect_step: _connection_event_pb2.ConnectionStep
    disconnect_reason: str
    event_count: int
    def __init__(self, session_id: _Optional[str] = ..., network_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., access_points: _Optional[_Iterable[_Union[AccessPointVisit, _Mapping]]] = ..., roam_count: _Optional[int] = ..., steps_succeeded: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionStep, str]]] = ..., outcome: _Optional[_Union[SessionOutcome, str]] = ..., failed_step: _Optional[_Union[_connection_event_pb2.ConnectionStep, str]] = ..., failure: _Optional[_Union[_connection_event_pb2.Failure, _Mapping]] = ..., failure_count: _Optional[int] = ..., end: _Optional[_Union[SessionEnd, str]] = ..., disconnect_step: _Optional[_Union[_connection_event_pb2.ConnectionStep, str]] = ..., disconnect_reason: _Optional[str] = ..., event_count: _Optional[int] = ...) -> None: ...

class ListClientSessionsResponse(_message.Message):
    __slots__ = ("client_sessions", "next_page_token")
    CLIENT_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    client_sessions: _containers.RepeatedCompositeFieldContainer[ClientSession]
    next_page_token: str
    def __init__(self, client_sessions: _Optional[_Iterable[_Union[ClientSession, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
