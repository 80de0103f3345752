import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vendor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VENDOR_UNSPECIFIED: _ClassVar[Vendor]
    VENDOR_CONNLOG: _ClassVar[Vendor]
    VENDOR_MERAKI: _ClassVar[Vendor]
    VENDOR_MOJO: _ClassVar[Vendor]
    VENDOR_ZEQUENZE: _ClassVar[Vendor]

class ConnectionStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_STEP_UNSPECIFIED: _ClassVar[ConnectionStep]
    CONNECTION_STEP_ASSOCIATION: _ClassVar[ConnectionStep]
    CONNECTION_STEP_DISASSOCIATION: _ClassVar[ConnectionStep]
    CONNECTION_STEP_AUTHENTICATION: _ClassVar[ConnectionStep]
    CONNECTION_STEP_DEAUTHENTICATION: _ClassVar[ConnectionStep]
    CONNECTION_STEP_DHCP: _ClassVar[ConnectionStep]
    CONNECTION_STEP_DNS: _ClassVar[ConnectionStep]
    CONNECTION_STEP_ROAM: _ClassVar[ConnectionStep]
    CONNECTION_STEP_CONNECTION: _ClassVar[ConnectionStep]
    CONNECTION_STEP_STICKY: _ClassVar[ConnectionStep]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_FAILURE: _ClassVar[Outcome]
    OUTCOME_INFORMATIONAL: _ClassVar[Outcome]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_GOOD: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARN: _ClassVar[Severity]
    SEVERITY_BAD: _ClassVar[Severity]

class Band(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BAND_UNSPECIFIED: _ClassVar[Band]
    BAND_2_4_GHZ: _ClassVar[Band]
    BAND_5_GHZ: _ClassVar[Band]
    BAND_6_GHZ: _ClassVar[Band]

class QualityMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_METRIC_UNSPECIFIED: _ClassVar[QualityMetric]
    QUALITY_METRIC_RSSI: _ClassVar[QualityMetric]
    QUALITY_METRIC_SINR: _ClassVar[QualityMetric]
    QUALITY_METRIC_SNR: _ClassVar[QualityMetric]

class NetworkType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_TYPE_UNSPECIFIED: _ClassVar[NetworkType]
    NETWORK_TYPE_WIFI: _ClassVar[NetworkType]
    NETWORK_TYPE_MOBILE: _ClassVar[NetworkType]
    NETWORK_TYPE_BLUETOOTH: _ClassVar[NetworkType]
    NETWORK_TYPE_ETHERNET: _ClassVar[NetworkType]

class NetworkSecurity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_SECURITY_UNSPECIFIED: _ClassVar[NetworkSecurity]
    NETWORK_SECURITY_OPEN: _ClassVar[NetworkSecurity]
    NETWORK_SECURITY_WEP: _ClassVar[NetworkSecurity]
    NETWORK_SECURITY_WPA: _ClassVar[NetworkSecurity]
    NETWORK_SECURITY_WPA2: _ClassVar[NetworkSecurity]
    NETWORK_SECURITY_3GPP: _ClassVar[NetworkSecurity]
VENDOR_UNSPECIFIED: Vendor
VENDOR_CONNLOG: Vendor
VENDOR_MERAKI: Vendor
VENDOR_MOJO: Vendor
VENDOR_ZEQUENZE: Vendor
CONNECTION_STEP_UNSPECIFIED: ConnectionStep
CONNECTION_STEP_ASSOCIATION: ConnectionStep
CONNECTION_STEP_DISASSOCIATION: ConnectionStep
CONNECTION_STEP_AUTHENTICATION: ConnectionStep
CONNECTION_STEP_DEAUTHENTICATION: ConnectionStep
CONNECTION_STEP_DHCP: ConnectionStep
CONNECTION_STEP_DNS: ConnectionStep
CONNECTION_STEP_ROAM: ConnectionStep
CONNECTION_STEP_CONNECTION: ConnectionStep
CONNECTION_STEP_STICKY: ConnectionStep
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_FAILURE: Outcome
OUTCOME_INFORMATIONAL: Outcome
SEVERITY_UNSPECIFIED: Severity
SEVERITY_GOOD: Severity
SEVERITY_INFO: Severity
SEVERITY_WARN: Severity
SEVERITY_BAD: Severity
BAND_UNSPECIFIED: Band
BAND_2_4_GHZ: Band
BAND_5_GHZ: Band
BAND_6_GHZ: Band
QUALITY_METRIC_UNSPECIFIED: QualityMetric
QUALITY_METRIC_RSSI: QualityMetric
QUALITY_METRIC_SINR: QualityMetric
QUALITY_METRIC_SNR: QualityMetric
NETWORK_TYPE_UNSPECIFIED: NetworkType
NETWORK_TYPE_WIFI: NetworkType
NETWORK_TYPE_MOBILE: NetworkType
NETWORK_TYPE_BLUETOOTH: NetworkType
NETWORK_TYPE_ETHERNET: NetworkType
NETWORK_SECURITY_UNSPECIFIED: NetworkSecurity
NETWORK_SECURITY_OPEN: NetworkSecurity
NETWORK_SECURITY_WEP: NetworkSecurity
NETWORK_SECURITY_WPA: NetworkSecurity
NETWORK_SECURITY_WPA2: NetworkSecurity
NETWORK_SECURITY_3GPP: NetworkSecurity

class ConnectionEvent(_message.Message):
    __slots__ = ("name", "event_id", "tenant_id", "network_id", "client", "occur_time", "receive_time", "source", "step", "subtype", "outcome", "severity", "radio", "wlan", "access_point", "location", "failure", "timing", "access_network", "traffic", "capture_id", "file_id", "auto_test", "event_data", "vendor_record")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SUBTYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    RADIO_FIELD_NUMBER: _ClassVar[int]
    WLAN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    ACCESS_NETWORK_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    AUTO_TEST_FIELD_NUMBER: _ClassVar[int]
    EVENT_DATA_FIELD_NUMBER: _ClassVar[int]
    VENDOR_RECORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_id: str
    tenant_id: str
    network_id: str
    client: Client
    occur_time: _timestamp_pb2.Timestamp
    receive_time: _timestamp_pb2.Timestamp
    source: Source
    step: ConnectionStep
    subtype: str
    outcome: Outcome
    severity: Severity
    radio: Radio
    wlan: Wlan
    access_point: AccessPoint
    location: Location
    failure: Failure
    timing: ConnectionTiming
    access_network: AccessNetwork
    traffic: Traffic
    capture_id: str
    file_id: str
    auto_test: AutoTest
    event_data: _struct_pb2.Struct
    vendor_record: VendorRecord
    def __init__(self, name: _Optional[str] = ..., event_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., network_id: _Optional[str] = ..., client: _Optional[_Union[Client, _Mapping]] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., step: _Optional[_Union[ConnectionStep, str]] = ..., subtype: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., severity: _Optional[_Union[Severity, str]] = ..., radio: _Optional[_Union[Radio, _Mapping]] = ..., wlan: _Optional[_Union[Wlan, _Mapping]] = ..., access_point: _Optional[_Union[AccessPoint, _Mapping]] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., timing: _Optional[_Union[ConnectionTiming, _Mapping]] = ..., access_network: _Optional[_Union[AccessNetwork, _Mapping]] = ..., traffic: _Optional[_Union[Traffic, _Mapping]] = ..., capture_id: _Optional[str] = ..., file_id: _Optional[str] = ..., auto_test: _Optional[_Union[AutoTest, _Mapping]] = ..., event_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., vendor_record: _Optional[_Union[VendorRecord, _Mapping]] = ...) -> None: ...

class Client(_message.Message):
    __slots__ = ("client_id", "mac_address", "ip_address", "reporting_device_id")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REPORTING_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    mac_address: str
    ip_address: str
    reporting_device_id: str
    def __init__(self, client_id: _Optional[str] = ..., mac_address: _Optional[str] = ..., ip_address: _Optional[str] = ..., reporting_device_id: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("vendor", "vendor_event_id")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    VENDOR_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    vendor: Vendor
    vendor_event_id: str
    def __init__(self, vendor: _Optional[_Union[Vendor, str]] = ..., vendor_event_id: _Optional[str] = ...) -> None: ...

class Radio(_message.Message):
    __slots__ = ("band", "channel", "frequency_ghz", "protocol", "quality_metric", "quality_value", "link_speed_mbps")
    BAND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_GHZ_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_METRIC_FIELD_NUMBER: _ClassVar[int]
    QUALITY_VALUE_FIELD_NUMBER: _ClassVar[int]
    LINK_SPEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    band: Band
    channel: int
    frequency_ghz: float
    protocol: str
    quality_metric: QualityMetric
    quality_value: float
    link_speed_mbps: float
    def __init__(self, band: _Optional[_Union[Band, str]] = ..., channel: _Optional[int] = ..., frequency_ghz: _Optional[float] = ..., protocol: _Optional[str] = ..., quality_metric: _Optional[_Union[QualityMetric, str]] = ..., quality_value: _Optional[float] = ..., link_speed_mbps: _Optional[float] = ...) -> None: ...

class Wlan(_message.Message):
    __slots__ = ("ssid", "ssid_number", "bssid")
    SSID_FIELD_NUMBER: _ClassVar[int]
    SSID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BSSID_FIELD_NUMBER: _ClassVar[int]
    ssid: str
    ssid_number: int
    bssid: str
    def __init__(self, ssid: _Optional[str] = ..., ssid_number: _Optional[int] = ..., bssid: _Optional[str] = ...) -> None: ...

class AccessPoint(_message.Message):
    __slots__ = ("name", "serial")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    serial: str
    def __init__(self, name: _Optional[str] = ..., serial: _Optional[str] = ...) -> None: ...

class Location(_message.Message):
    __slots__ = ("location_id", "location_type", "name", "latitude", "longitude")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    location_type: str
    name: str
    latitude: float
    longitude: float
    def __init__(self, location_id: _Optional[str] = ..., location_type: _Optional[str] = ..., name: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("code", "reason", "sub_code", "sub_reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUB_CODE_FIELD_NUMBER: _ClassVar[int]
    SUB_REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    sub_code: int
    sub_reason: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ..., sub_code: _Optional[int] = ..., sub_reason: _Optional[str] = ...) -> None: ...

class ConnectionTiming(_message.Message):
    __slots__ = ("association_time", "authentication_time", "network_time", "dhcp_latency", "aaa_latency", "dns_latency", "duration")
    ASSOCIATION_TIME_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_TIME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_TIME_FIELD_NUMBER: _ClassVar[int]
    DHCP_LATENCY_FIELD_NUMBER: _ClassVar[int]
    AAA_LATENCY_FIELD_NUMBER: _ClassVar[int]
    DNS_LATENCY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    association_time: _timestamp_pb2.Timestamp
    authentication_time: _timestamp_pb2.Timestamp
    network_time: _timestamp_pb2.Timestamp
    dhcp_latency: _duration_pb2.Duration
    aaa_latency: _duration_pb2.Duration
    dns_latency: _duration_pb2.Duration
    duration: _duration_pb2.Duration
    def __init__(self, association_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., authentication_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., network_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dhcp_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., aaa_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., dns_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AccessNetwork(_message.Message):
    __slots__ = ("name", "type", "security", "authentication", "mcc_mnc", "cell_id", "roaming")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURITY_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    MCC_MNC_FIELD_NUMBER: _ClassVar[int]
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    ROAMING_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: NetworkType
    security: NetworkSecurity
    authentication: str
    mcc_mnc: str
    cell_id: str
    roaming: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[NetworkType, str]] = ..., security: _Optional[_Union[NetworkSecurity, str]] = ..., authentication: _Optional[str] = ..., mcc_mnc: _Optional[str] = ..., cell_id: _Optional[str] = ..., roaming: _Optional[bool] = ...) -> None: ...

class Traffic(_message.Message):
    __slots__ = ("bytes_in", "bytes_out")
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    bytes_in: int
    bytes_out: int
    def __init__(self, bytes_in: _Optional[int] = ..., bytes_out: _Optional[int] = ...) -> None: ...

class AutoTest(_message.Message):
    __slots__ = ("session_id", "status_code", "status")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    status_code: int
    status: str
    def __init__(self, session_id: _Optional[int] = ..., status_code: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class VendorRecord(_message.Message):
    __slots__ = ("content_type", "data")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: str
    def __init__(self, content_type: _Optional[str] = ..., data: _Optional[str] = ...) -> None: ...
