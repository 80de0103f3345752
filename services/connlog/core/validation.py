"""Checks of request fields, shared by the servicers.

Each check returns the value in the form the servicer uses, or raises
``InvalidArgument(field, reason)`` naming the field as the caller spelled it
(``start_time``, ``sync_source.poll_interval``), which the edge answers with
``INVALID_ARGUMENT`` ``"<field>: <reason>"``. They refuse what the store or
the standard library would otherwise fail on (a NUL in text, a Timestamp
beyond year 9999, an integer beyond a column's type) so that such input is
the caller's error, named, and never an internal one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from connlog.core.edge import InvalidArgument

INT64_MAX = 2**63 - 1
# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
TIMESTAMP_MIN_SECONDS = -62135596800
TIMESTAMP_MAX_SECONDS = 253402300799
# google.protobuf.Duration: about +-10,000 years
DURATION_MAX_SECONDS = 315576000000
NANOS_MAX = 999_999_999
DEFAULT_MAX_TEXT = 1024

__all__ = ["InvalidArgument", "duration", "enum_value", "enum_values", "http_url", "integer", "number", "text",
           "timestamp"]


def text(value: str, field: str, *, max_length: int = DEFAULT_MAX_TEXT, required: bool = False) -> str:
    """Text the store can hold: no NUL, at most ``max_length`` characters."""
    if required and not value.strip():
        raise InvalidArgument(field, "is required")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    if len(value) > max_length:
        raise InvalidArgument(field, f"must be at most {max_length} characters")
    return value


def integer(value: int, field: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be {low}-{high}")
    return value


def number(value: float, field: str, low: float, high: float) -> float:
    """A finite number within [low, high]."""
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgument(field, f"must be a number from {low:g} to {high:g}")
    return value


def enum_value(value: int, enum_type: EnumTypeWrapper, field: str, *, allow_unspecified: bool = False) -> int:
    """A value ``enum_type`` defines (proto3 enums are open: a caller can send
    any int32)."""
    if value not in enum_type.values() or (value == 0 and not allow_unspecified):
        raise InvalidArgument(field, f"invalid value {value}")
    return value


def enum_values(values: Iterable[int], enum_type: EnumTypeWrapper, field: str) -> list[int]:
    return [enum_value(value, enum_type, field) for value in values]


def timestamp(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    """A valid Timestamp (seconds within years 1-9999, nanos 0-999999999) as
    an aware UTC datetime."""
    if not TIMESTAMP_MIN_SECONDS <= ts.seconds <= TIMESTAMP_MAX_SECONDS:
        raise InvalidArgument(field, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
    if not 0 <= ts.nanos <= NANOS_MAX:
        raise InvalidArgument(field, f"nanos must be 0-{NANOS_MAX}")
    return ts.ToDatetime(tzinfo=dt.UTC)


def duration(
    value: duration_pb2.Duration,
    field: str,
    *,
    minimum: dt.timedelta | None = None,
    maximum: dt.timedelta | None = None,
) -> dt.timedelta:
    """A valid Duration (within +-315,576,000,000 s, nanos of the seconds'
    sign) within [minimum, maximum], as a timedelta."""
    seconds, nanos = value.seconds, value.nanos
    if not -DURATION_MAX_SECONDS <= seconds <= DURATION_MAX_SECONDS or not -NANOS_MAX <= nanos <= NANOS_MAX or (
        seconds and nanos and (seconds > 0) != (nanos > 0)
    ):
        raise InvalidArgument(field, "is not a valid duration")
    delta = dt.timedelta(seconds=seconds, microseconds=nanos // 1000 if nanos >= 0 else -(-nanos // 1000))
    if minimum is not None and delta < minimum:
        raise InvalidArgument(field, f"must be at least {_span(minimum)}")
    if maximum is not None and delta > maximum:
        raise InvalidArgument(field, f"must be at most {_span(maximum)}")
    return delta


def _span(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"


_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


def http_url(value: str, field: str, *, max_length: int = 2048) -> str:
    """An absolute http(s) URL with a host (and, if given, a valid port)."""
    reason = "must be an http(s) URL"
    if len(value) > max_length:
        raise InvalidArgument(field, f"must be at most {max_length} characters")
    if _URL_FORBIDDEN.search(value):
        raise InvalidArgument(field, f"{reason} (no spaces or control characters)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidArgument(field, reason) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(field, reason)
    return value
