from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetNetworkWirelessClientConnectivityEventsRequest(_message.Message):
    __slots__ = ("network_id", "client_id", "per_page", "starting_after", "ending_before", "sort_order", "t0", "t1", "timespan", "types", "band", "ssid_number", "included_severities", "device_serial")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    ENDING_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    T0_FIELD_NUMBER: _ClassVar[int]
    T1_FIELD_NUMBER: _ClassVar[int]
    TIMESPAN_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    SSID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INCLUDED_SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    client_id: str
    per_page: str
    starting_after: str
    ending_before: str
    sort_order: str
    t0: str
    t1: str
    timespan: str
    types: _containers.RepeatedScalarFieldContainer[str]
    band: str
    ssid_number: str
    included_severities: _containers.RepeatedScalarFieldContainer[str]
    device_serial: str
    def __init__(self, network_id: _Optional[str] = ..., client_id: _Optional[str] = ..., per_page: _Optional[str] = ..., starting_after: _Optional[str] = ..., ending_before: _Optional[str] = ..., sort_order: _Optional[str] = ..., t0: _Optional[str] = ..., t1: _Optional[str] = ..., timespan: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., band: _Optional[str] = ..., ssid_number: _Optional[str] = ..., included_severities: _Optional[_Iterable[str]] = ..., device_serial: _Optional[str] = ...) -> None: ...

class GetNetworkWirelessConnectionStatsRequest(_message.Message):
    __slots__ = ("network_id", "t0", "t1", "timespan", "band", "ssid", "vlan", "ap_tag")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    T0_FIELD_NUMBER: _ClassVar[int]
    T1_FIELD_NUMBER: _ClassVar[int]
    TIMESPAN_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    AP_TAG_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    t0: str
    t1: str
    timespan: str
    band: str
    ssid: str
    vlan: str
    ap_tag: str
    def __init__(self, network_id: _Optional[str] = ..., t0: _Optional[str] = ..., t1: _Optional[str] = ..., timespan: _Optional[str] = ..., band: _Optional[str] = ..., ssid: _Optional[str] = ..., vlan: _Optional[str] = ..., ap_tag: _Optional[str] = ...) -> None: ...

class GetNetworkWirelessDevicesConnectionStatsRequest(_message.Message):
    __slots__ = ("network_id", "t0", "t1", "timespan", "band", "ssid", "vlan", "ap_tag")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    T0_FIELD_NUMBER: _ClassVar[int]
    T1_FIELD_NUMBER: _ClassVar[int]
    TIMESPAN_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    AP_TAG_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    t0: str
    t1: str
    timespan: str
    band: str
    ssid: str
    vlan: str
    ap_tag: str
    def __init__(self, network_id: _Optional[str] = ..., t0: _Optional[str] = ..., t1: _Optional[str] = ..., timespan: _Optional[str] = ..., band: _Optional[str] = ..., ssid: _Optional[str] = ..., vlan: _Optional[str] = ..., ap_tag: _Optional[str] = ...) -> None: ...

class GetNetworkWirelessClientsConnectionStatsRequest(_message.Message):
    __slots__ = ("network_id", "t0", "t1", "timespan", "band", "ssid", "vlan", "ap_tag")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    T0_FIELD_NUMBER: _ClassVar[int]
    T1_FIELD_NUMBER: _ClassVar[int]
    TIMESPAN_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    AP_TAG_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    t0: str
    t1: str
    timespan: str
    band: str
    ssid: str
    vlan: str
    ap_tag: str
    def __init__(self, network_id: _Optional[str] = ..., t0: _Optional[str] = ..., t1: _Optional[str] = ..., timespan: _Optional[str] = ..., band: _Optional[str] = ..., ssid: _Optional[str] = ..., vlan: _Optional[str] = ..., ap_tag: _Optional[str] = ...) -> None: ...

class GetNetworkWirelessFailedConnectionsRequest(_message.Message):
    __slots__ = ("network_id", "t0", "t1", "timespan", "band", "ssid", "vlan", "ap_tag", "serial", "client_id")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    T0_FIELD_NUMBER: _ClassVar[int]
    T1_FIELD_NUMBER: _ClassVar[int]
    TIMESPAN_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    SSID_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    AP_TAG_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    t0: str
    t1: str
    timespan: str
    band: str
    ssid: str
    vlan: str
    ap_tag: str
    serial: str
    client_id: str
    def __init__(self, network_id: _Optional[str] = ..., t0: _Optional[str] = ..., t1: _Optional[str] = ..., timespan: _Optional[str] = ..., band: _Optional[str] = ..., ssid: _Optional[str] = ..., vlan: _Optional[str] = ..., ap_tag: _Optional[str] = ..., serial: _Optional[str] = ..., client_id: _Optional[str] = ...) -> None: ...

class GetNetworkRequest(_message.Message):
    __slots__ = ("network_id",)
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    def __init__(self, network_id: _Optional[str] = ...) -> None: ...

class GetOrganizationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOrganizationNetworksRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetOrganizationInventoryDevicesRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...
