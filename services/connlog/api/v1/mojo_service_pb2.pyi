from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoginWithApiKeyRequest(_message.Message):
    __slots__ = ("client_identifier", "timeout", "body")
    CLIENT_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    client_identifier: str
    timeout: str
    body: _httpbody_pb2.HttpBody
    def __init__(self, client_identifier: _Optional[str] = ..., timeout: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class ListClientConnectionLogsRequest(_message.Message):
    __slots__ = ("clientmacaddress", "fromtime", "totime", "logtype", "failuretype", "limit")
    CLIENTMACADDRESS_FIELD_NUMBER: _ClassVar[int]
    FROMTIME_FIELD_NUMBER: _ClassVar[int]
    TOTIME_FIELD_NUMBER: _ClassVar[int]
    LOGTYPE_FIELD_NUMBER: _ClassVar[int]
    FAILURETYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    clientmacaddress: str
    fromtime: str
    totime: str
    logtype: str
    failuretype: str
    limit: str
    def __init__(self, clientmacaddress: _Optional[str] = ..., fromtime: _Optional[str] = ..., totime: _Optional[str] = ..., logtype: _Optional[str] = ..., failuretype: _Optional[str] = ..., limit: _Optional[str] = ...) -> None: ...
