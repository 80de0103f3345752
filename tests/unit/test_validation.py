"""connlog.core.validation: each check passes good values through (in the
form the servicer uses) and refuses bad ones with ``InvalidArgument`` naming
the field as the caller spelled it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core import validation as v
from connlog.core.validation import InvalidArgument

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)
# The bounds, written out (not read from the module under test: a changed
# constant there must fail here).
TIMESTAMP_MIN = -62135596800  # 0001-01-01T00:00:00Z
TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z
NANOS_MAX = 999_999_999
DURATION_MAX = 315_576_000_000  # google.protobuf.Duration: about 10,000 years
DEFAULT_MAX_TEXT = 1024
INT64_MAX = 2**63 - 1


def refused(check: Callable[[], object], field: str) -> InvalidArgument:
    """The InvalidArgument ``check()`` raises; it must name ``field``."""
    with pytest.raises(InvalidArgument) as err:
        check()
    assert err.value.field == field
    assert str(err.value) == f"{field}: {err.value.reason}"
    return err.value


def ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def dur(seconds: int, nanos: int = 0) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


# --- text -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "options"), [
    ("", {}),
    ("k74272e", {}),
    ("x" * DEFAULT_MAX_TEXT, {}),
    ("x" * 5, {"max_length": 5}),
    ("ünïcödé ✓ \U0010ffff", {}),
    ("required", {"required": True}),
    ("  padded  ", {"required": True}),
])
def test_text_accepted(value: str, options: dict[str, Any]) -> None:
    assert v.text(value, "client_id", **options) == value


@pytest.mark.parametrize(("value", "options", "reason"), [
    ("a\x00b", {}, "must not contain NUL characters"),
    ("\x00", {}, "must not contain NUL characters"),
    ("x" * (DEFAULT_MAX_TEXT + 1), {}, f"must be at most {DEFAULT_MAX_TEXT} characters"),
    ("x" * 6, {"max_length": 5}, "must be at most 5 characters"),
    ("", {"required": True}, "is required"),
    (" \t\n", {"required": True}, "is required"),
])
def test_text_refused(value: str, options: dict[str, Any], reason: str) -> None:
    err = refused(lambda: v.text(value, "sync_source.network_id", **options), "sync_source.network_id")
    assert err.reason == reason


# --- integer and number -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "low", "high"), [(0, 0, 255), (255, 0, 255), (7, 0, 255), (-5, -5, -5),
                                                    (INT64_MAX, 0, INT64_MAX)])
def test_integer_accepted(value: int, low: int, high: int) -> None:
    assert v.integer(value, "ssid_number", low, high) == value


@pytest.mark.parametrize(("value", "low", "high"), [(-1, 0, 255), (256, 0, 255), (INT64_MAX + 1, 0, INT64_MAX),
                                                    (-(2**63) - 1, -(2**63), 0)])
def test_integer_refused(value: int, low: int, high: int) -> None:
    assert refused(lambda: v.integer(value, "ssid_number", low, high), "ssid_number").reason == f"must be {low}-{high}"


@pytest.mark.parametrize(("value", "low", "high"), [(0.0, 0, 1), (1.0, 0, 1), (0.5, 0, 1), (-90.0, -90, 90),
                                                    (5e-324, 0, 1)])
def test_number_accepted(value: float, low: float, high: float) -> None:
    assert v.number(value, "latitude", low, high) == value


@pytest.mark.parametrize(("value", "low", "high"), [
    (float("nan"), 0, 1), (float("inf"), 0, 1), (float("-inf"), 0, 1),
    (float("inf"), float("-inf"), float("inf")),  # never infinite, whatever the bounds
    (-0.0001, 0, 1), (1.0001, 0, 1), (90.5, -90, 90),
])
def test_number_refused(value: float, low: float, high: float) -> None:
    reason = refused(lambda: v.number(value, "location.latitude", low, high), "location.latitude").reason
    assert reason == f"must be a number from {low:g} to {high:g}"


# --- enums ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "options"), [
    (pb.BAND_2_4_GHZ, {}), (pb.BAND_6_GHZ, {}), (pb.BAND_UNSPECIFIED, {"allow_unspecified": True}),
])
def test_enum_value_accepted(value: int, options: dict[str, Any]) -> None:
    assert v.enum_value(value, pb.Band, "bands", **options) == value


@pytest.mark.parametrize(("value", "options"), [
    (pb.BAND_UNSPECIFIED, {}),  # unspecified means "not given", not a choice
    (4, {}), (4, {"allow_unspecified": True}), (-1, {}), (2**31 - 1, {}),
])
def test_enum_value_refused(value: int, options: dict[str, Any]) -> None:
    assert refused(lambda: v.enum_value(value, pb.Band, "bands", **options), "bands").reason == f"invalid value {value}"


@pytest.mark.parametrize(("values", "bad"), [([], None), ([1, 2, 3], None), ([1, 1], None), ([1, 0, 2], 0),
                                             ([1, 2, 99], 99)])
def test_enum_values(values: list[int], bad: int | None) -> None:
    if bad is None:
        assert v.enum_values(values, pb.Outcome, "outcomes") == list(values)
    else:
        err = refused(lambda: v.enum_values(values, pb.Outcome, "outcomes"), "outcomes")
        assert err.reason == f"invalid value {bad}"


# --- timestamps -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "nanos", "expected"), [
    (0, 0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
    (1_767_225_600, 123_456_789, dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    (-1, 999_999_999, dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    (TIMESTAMP_MIN, 0, dt.datetime(1, 1, 1, tzinfo=UTC)),
    (TIMESTAMP_MAX, NANOS_MAX, dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
])
def test_timestamp_accepted(seconds: int, nanos: int, expected: dt.datetime) -> None:
    got = v.timestamp(ts(seconds, nanos), "start_time")
    assert got == expected and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(("seconds", "nanos", "reason"), [
    (TIMESTAMP_MIN - 1, 0, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    (TIMESTAMP_MAX + 1, 0, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    (2**63 - 1, 0, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    (-(2**63), 0, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    (0, -1, f"nanos must be 0-{NANOS_MAX}"),
    (0, NANOS_MAX + 1, f"nanos must be 0-{NANOS_MAX}"),
    (0, -(2**31), f"nanos must be 0-{NANOS_MAX}"),
])
def test_timestamp_refused(seconds: int, nanos: int, reason: str) -> None:
    assert refused(lambda: v.timestamp(ts(seconds, nanos), "end_time"), "end_time").reason == reason


# --- durations --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "nanos", "bounds", "expected"), [
    (0, 0, {}, dt.timedelta(0)),
    (3600, 0, {}, dt.timedelta(hours=1)),
    (1, 500_000_000, {}, dt.timedelta(seconds=1.5)),
    (0, 1_999, {}, dt.timedelta(microseconds=1)),  # nanos truncated to microseconds
    (-1, -500_000_000, {}, dt.timedelta(seconds=-1.5)),  # negative: nanos of the same sign
    (0, -1_999, {}, dt.timedelta(microseconds=-1)),  # truncated towards zero
    (60, 0, {"minimum": 60 * SECOND}, dt.timedelta(minutes=1)),
    (86400, 0, {"maximum": dt.timedelta(days=1)}, dt.timedelta(days=1)),
    (DURATION_MAX, 0, {}, dt.timedelta(seconds=DURATION_MAX)),
    (-DURATION_MAX, 0, {}, dt.timedelta(seconds=-DURATION_MAX)),
])
def test_duration_accepted(seconds: int, nanos: int, bounds: dict[str, Any], expected: dt.timedelta) -> None:
    assert v.duration(dur(seconds, nanos), "poll_interval", **bounds) == expected


@pytest.mark.parametrize(("seconds", "nanos", "bounds", "reason"), [
    (DURATION_MAX + 1, 0, {}, "is not a valid duration"),
    (-DURATION_MAX - 1, 0, {}, "is not a valid duration"),
    (0, NANOS_MAX + 1, {}, "is not a valid duration"),
    (0, -NANOS_MAX - 1, {}, "is not a valid duration"),
    (1, -1, {}, "is not a valid duration"),  # signs disagree
    (-1, 1, {}, "is not a valid duration"),
    (59, 999_999_999, {"minimum": 60 * SECOND}, "must be at least 60s"),
    (0, 0, {"minimum": SECOND}, "must be at least 1s"),
    (86401, 0, {"maximum": dt.timedelta(days=1)}, "must be at most 86400s"),
    (0, 1_500_000, {"maximum": dt.timedelta(milliseconds=1)}, "must be at most 0.001s"),
])
def test_duration_refused(seconds: int, nanos: int, bounds: dict[str, Any], reason: str) -> None:
    assert refused(lambda: v.duration(dur(seconds, nanos), "sync_source.poll_interval", **bounds),
                   "sync_source.poll_interval").reason == reason


# --- URLs -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "http://meraki.example",
    "https://api.meraki.com/api/v1",
    "HTTPS://API.EXAMPLE:443/x?y=1#z",
    "http://127.0.0.1:8080/new/webservice",
    "http://[::1]:65535/",
    "https://user:pass@host.example/",
    "http://h/" + "a" * (2048 - len("http://h/")),
])
def test_http_url_accepted(value: str) -> None:
    assert v.http_url(value, "sync_source.base_url") == value


@pytest.mark.parametrize(("value", "reason"), [
    ("", "must be an http(s) URL"),
    ("api.meraki.com/api/v1", "must be an http(s) URL"),
    ("ftp://files.example/", "must be an http(s) URL"),
    ("file:///etc/passwd", "must be an http(s) URL"),
    ("http://", "must be an http(s) URL"),
    ("http:///path", "must be an http(s) URL"),
    ("http://host:99999/", "must be an http(s) URL"),
    ("http://host:port/", "must be an http(s) URL"),
    ("http://[::1/", "must be an http(s) URL"),
    ("http://host name/", "must be an http(s) URL (no spaces or control characters)"),
    ("http://host/\x00", "must be an http(s) URL (no spaces or control characters)"),
    ("http://host/\n", "must be an http(s) URL (no spaces or control characters)"),
    ("http://host/\x7f", "must be an http(s) URL (no spaces or control characters)"),
    ("http://h/" + "a" * (2049 - len("http://h/")), "must be at most 2048 characters"),
])
def test_http_url_refused(value: str, reason: str) -> None:
    assert refused(lambda: v.http_url(value, "sync_source.base_url"), "sync_source.base_url").reason == reason


def test_the_custom_url_length_limit() -> None:
    err = refused(lambda: v.http_url("http://host.example/", "u", max_length=10), "u")
    assert err.reason == "must be at most 10 characters"
