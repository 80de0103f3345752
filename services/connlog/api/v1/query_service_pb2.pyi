import datetime

from connlog.api.v1 import connection_event_pb2 as _connection_event_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_ASCENDING: _ClassVar[SortOrder]
    SORT_ORDER_DESCENDING: _ClassVar[SortOrder]
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_ASCENDING: SortOrder
SORT_ORDER_DESCENDING: SortOrder

class GetConnectionEventRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListConnectionEventsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "client_id", "client_mac_address", "start_time", "end_time", "steps", "outcomes", "severities", "bands", "ssid", "ssid_number", "access_point_serial", "access_point_name", "bssid", "failure_codes", "vendor", "sort_order")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    SSID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_NAME_FIELD_NUMBER: _ClassVar[int]
    BSSID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODES_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    client_id: str
    client_mac_address: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    steps: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.ConnectionStep]
    outcomes: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Outcome]
    severities: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Severity]
    bands: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Band]
    ssid: str
    ssid_number: int
    access_point_serial: str
    access_point_name: str
    bssid: str
    failure_codes: _containers.RepeatedScalarFieldContainer[int]
    vendor: _connection_event_pb2.Vendor
    sort_order: SortOrder
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., client_id: _Optional[str] = ..., client_mac_address: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionStep, str]]] = ..., outcomes: _Optional[_Iterable[_Union[_connection_event_pb2.Outcome, str]]] = ..., severities: _Optional[_Iterable[_Union[_connection_event_pb2.Severity, str]]] = ..., bands: _Optional[_Iterable[_Union[_connection_event_pb2.Band, str]]] = ..., ssid: _Optional[str] = ..., ssid_number: _Optional[int] = ..., access_point_serial: _Optional[str] = ..., access_point_name: _Optional[str] = ..., bssid: _Optional[str] = ..., failure_codes: _Optional[_Iterable[int]] = ..., vendor: _Optional[_Union[_connection_event_pb2.Vendor, str]] = ..., sort_order: _Optional[_Union[SortOrder, str]] = ...) -> None: ...

class ListConnectionEventsResponse(_message.Message):
    __slots__ = ("connection_events", "next_page_token")
    CONNECTION_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connection_events: _containers.RepeatedCompositeFieldContainer[_connection_event_pb2.ConnectionEvent]
    next_page_token: str
    def __init__(self, connection_events: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchConnectionEventsRequest(_message.Message):
    __slots__ = ("parent", "resume_token", "client_id", "client_mac_address", "start_time", "end_time", "steps", "outcomes", "severities", "bands", "ssid", "ssid_number", "access_point_serial", "access_point_name", "bssid", "failure_codes", "vendor")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    SSID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_NAME_FIELD_NUMBER: _ClassVar[int]
    BSSID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODES_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    parent: str
    resume_token: str
    client_id: str
    client_mac_address: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    steps: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.ConnectionStep]
    outcomes: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Outcome]
    severities: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Severity]
    bands: _containers.RepeatedScalarFieldContainer[_connection_event_pb2.Band]
    ssid: str
    ssid_number: int
    access_point_serial: str
    access_point_name: str
    bssid: str
    failure_codes: _containers.RepeatedScalarFieldContainer[int]
    vendor: _connection_event_pb2.Vendor
    def __init__(self, parent: _Optional[str] = ..., resume_token: _Optional[str] = ..., client_id: _Optional[str] = ..., client_mac_address: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionStep, str]]] = ..., outcomes: _Optional[_Iterable[_Union[_connection_event_pb2.Outcome, str]]] = ..., severities: _Optional[_Iterable[_Union[_connection_event_pb2.Severity, str]]] = ..., bands: _Optional[_Iterable[_Union[_connection_event_pb2.Band, str]]] = ..., ssid: _Optional[str] = ..., ssid_number: _Optional[int] = ..., access_point_serial: _Optional[str] = ..., access_point_name: _Optional[str] = ..., bssid: _Optional[str] = ..., failure_codes: _Optional[_Iterable[int]] = ..., vendor: _Optional[_Union[_connection_event_pb2.Vendor, str]] = ...) -> None: ...

class WatchConnectionEventsResponse(_message.Message):
    __slots__ = ("connection_events", "resume_token")
    CONNECTION_EVENTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connection_events: _containers.RepeatedCompositeFieldContainer[_connection_event_pb2.ConnectionEvent]
    resume_token: str
    def __init__(self, connection_events: _Optional[_Iterable[_Union[_connection_event_pb2.ConnectionEvent, _Mapping]]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("name", "network_id", "display_name", "last_event_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    network_id: str
    display_name: str
    last_event_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., network_id: _Optional[str] = ..., display_name: _Optional[str] = ..., last_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks", "next_page_token")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[Network]
    next_page_token: str
    def __init__(self, networks: _Optional[_Iterable[_Union[Network, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListClientsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "query")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    query: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ...) -> None: ...

class NetworkClient(_message.Message):
    __slots__ = ("name", "mac_address", "client_id", "first_seen_time", "last_seen_time", "event_count", "failure_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac_address: str
    client_id: str
    first_seen_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    event_count: int
    failure_count: int
    def __init__(self, name: _Optional[str] = ..., mac_address: _Optional[str] = ..., client_id: _Optional[str] = ..., first_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_count: _Optional[int] = ..., failure_count: _Optional[int] = ...) -> None: ...

class ListClientsResponse(_message.Message):
    __slots__ = ("clients", "next_page_token")
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    clients: _containers.RepeatedCompositeFieldContainer[NetworkClient]
    next_page_token: str
    def __init__(self, clients: _Optional[_Iterable[_Union[NetworkClient, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
