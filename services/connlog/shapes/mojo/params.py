"""Mojo's parameters: the connection-log query and the API-key login,
validated with Mojo's bounds and messages (a bad one is ``RestError(400)``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import orjson

from connlog.core.identifiers import normalise_mac
from connlog.shapes.mojo.records import FAILURE, SUCCESS_OUTCOMES
from connlog.shapes.rest import RestCall, RestError, ascii_integer

KNOWN = {"clientmacaddress", "fromtime", "totime", "logtype", "failuretype", "limit"}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
INT32_MAX = 2**31 - 1


@dataclass
class MojoQuery:
    """A validated connection-log request: a client's logs in [start, end)
    (``start`` None: since the beginning) of these outcomes and failure
    codes (empty: any), newest first, at most ``limit``."""

    mac: str
    start: dt.datetime | None
    end: dt.datetime
    outcomes: list[int]
    failure_codes: list[int]
    limit: int


def _integer(value: str | None, name: str, default: int, low: int, high: int, meaning: str) -> int:
    """An integer parameter within [low, high]; 400 naming it otherwise."""
    if value is None or value == "":
        return default
    number = ascii_integer(value)
    if number is None or not low <= number <= high:
        raise RestError(400, f"{name} must be {meaning}")
    return number


def _epoch_seconds(value: str | None, name: str) -> dt.datetime | None:
    """An epoch-seconds time parameter; -1 (or absent) is None: "now" for
    totime, "since the beginning" for fromtime."""
    seconds = _integer(value, name, -1, -1, MAX_EPOCH_SECONDS, "epoch seconds or -1")
    return None if seconds == -1 else _EPOCH + dt.timedelta(seconds=seconds)


def parse(call: RestCall, now: dt.datetime) -> MojoQuery:
    """Validate every parameter of ``connectionlogs``; raises
    ``RestError(400)`` with Mojo's wording."""
    unknown = sorted(call.names() - KNOWN)
    if unknown:
        raise RestError(400, f"unknown parameter {unknown[0]}")
    for name in KNOWN:
        if len(call.values(name)) > 1:
            raise RestError(400, f"{name} must be given once")
    mac_text = call.value("clientmacaddress")
    if not mac_text:
        raise RestError(400, "clientmacaddress is mandatory")
    mac = normalise_mac(mac_text)
    if mac is None:
        raise RestError(400, f"clientmacaddress {mac_text!r} is not a MAC address")
    start = _epoch_seconds(call.value("fromtime"), "fromtime")
    end = _epoch_seconds(call.value("totime"), "totime")
    logtype = call.value("logtype") or "all"
    if logtype not in ("success", "failure", "all"):
        raise RestError(400, "logtype must be success, failure or all")
    failuretype = call.value("failuretype")
    limit = _integer(call.value("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, f"an integer from 1 to {MAX_LIMIT}")
    # totime -1 is "now": events stamped later are not in the answer
    end = end or now.replace(microsecond=0)
    end = end + dt.timedelta(seconds=1) if end.year < 9999 else end
    if start is not None and start >= end:
        raise RestError(400, "totime must not be before fromtime")
    outcomes: list[int] = []
    if logtype == "success":
        outcomes = SUCCESS_OUTCOMES
    elif logtype == "failure":
        outcomes = [FAILURE]
    failure_codes: list[int] = []
    if failuretype not in (None, ""):
        failure_codes = [_integer(failuretype, "failuretype", 0, -INT32_MAX - 1, INT32_MAX,
                                  "a failure code (a 32-bit integer)")]
        outcomes = [FAILURE] if logtype != "success" else [-1]  # a success has no failure code: nothing
    return MojoQuery(mac, start, end, outcomes, failure_codes, limit)


@dataclass
class Login:
    """A validated API-key login."""

    key_id: str
    key_value: str
    minutes: int


def parse_login(body: bytes, timeout: str, max_minutes: int) -> Login:
    """The credentials of a login body (``{"type": "apikeycredentials",
    "keyId", "keyValue"}``) and its session length in minutes (the path's
    ``timeout``, 1 to ``max_minutes``)."""
    try:
        credentials = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise RestError(400, "request body is not valid JSON") from None
    if not isinstance(credentials, dict):
        raise RestError(400, "request body must be a JSON object")
    if credentials.get("type") != "apikeycredentials":
        raise RestError(400, "type must be 'apikeycredentials'")
    key_id, key_value = credentials.get("keyId"), credentials.get("keyValue")
    if not isinstance(key_id, str) or not key_id or not isinstance(key_value, str) or not key_value:
        raise RestError(400, "keyId and keyValue are required strings")
    minutes = ascii_integer(timeout)
    if minutes is None:
        raise RestError(400, "timeout must be an integer number of minutes")
    if not 1 <= minutes <= max_minutes:
        raise RestError(400, f"timeout must be 1-{max_minutes} minutes")
    return Login(key_id, key_value, minutes)
