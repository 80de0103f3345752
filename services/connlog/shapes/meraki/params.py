"""Meraki's ``connectivityEvents`` query parameters: validated with
Meraki's bounds and messages (a bad one is ``RestError(400)``), and the
pagination tokens of its Link headers."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from connlog.core.identifiers import normalise_mac
from connlog.shapes.meraki.records import BANDS, SEVERITIES, TYPES
from connlog.shapes.rest import RestCall, RestError, ascii_integer, ascii_number

MAX_LOOKBACK = dt.timedelta(days=31)
MAX_TIMESPAN = 2678400.0
DEFAULT_TIMESPAN = 86400.0
DEFAULT_PER_PAGE = 1000
KNOWN = {"perPage", "startingAfter", "endingBefore", "sortOrder", "t0", "t1", "timespan", "types", "band",
         "ssidNumber", "includedSeverities", "deviceSerial"}
ARRAYS = {"types", "includedSeverities"}  # array parameters: written ``types[]`` in Link URLs
MAX_CLIENT_ID = 128  # what ingest accepts as a client id
MAX_SERIAL = 64  # the longest access point serial ingest accepts
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Times outside these bounds can never select a stored event (and would
# overflow date arithmetic): refused as out of range.
_EARLIEST = _EPOCH
_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
_MAX_ID = 2**63 - 1


def _bad(message: str) -> RestError:
    """A parameter Meraki answers with 400."""
    return RestError(400, message)


def timespan_seconds(text: str, most: float, most_said: str) -> float:
    """Meraki's ``timespan``: a positive number of seconds, at most ``most``
    (``most_said``: that bound in words, for the 400's message)."""
    span = ascii_number(text)
    if span is None:
        raise _bad("'timespan' must be a number of seconds")
    if span <= 0:
        raise _bad("'timespan' must be a positive number of seconds")
    if span > most:
        raise _bad(f"'timespan' must be less than or equal to {int(most)} seconds ({most_said})")
    return span


@dataclass
class MerakiQuery:
    """A validated connectivityEvents request."""

    per_page: int
    descending: bool
    t0: dt.datetime
    t1: dt.datetime
    steps: list[int] = field(default_factory=list)
    bands: list[int] = field(default_factory=list)
    ssid_number: int | None = None
    severities: list[int] = field(default_factory=list)
    device_serial: str | None = None
    starting_after: tuple[dt.datetime, int] | None = None
    ending_before: tuple[dt.datetime, int] | str | None = None


def encode_position(occurred_at: dt.datetime, event_id: int) -> str:
    micros = (occurred_at - _EPOCH) // dt.timedelta(microseconds=1)
    return base64.urlsafe_b64encode(json.dumps([micros, event_id]).encode()).decode().rstrip("=")


LAST = "last"  # endingBefore=last: the final page


def decode_position(token: str, name: str) -> tuple[dt.datetime, int]:
    try:
        micros, event_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(micros, int) or not isinstance(event_id, int) or not 0 <= event_id <= _MAX_ID:
            raise ValueError
        position = _EPOCH + dt.timedelta(microseconds=micros)
        if not _EARLIEST <= position < _LATEST:
            raise ValueError
        return position, event_id
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _bad(f"'{name}' is not a valid pagination token") from None


def parse_time(value: str, name: str) -> dt.datetime:
    """ISO 8601 or epoch seconds."""
    text = value.strip()
    seconds = ascii_number(text)
    if seconds is not None:
        try:
            return _in_range(_EPOCH + dt.timedelta(seconds=seconds), name)
        except OverflowError:
            raise _bad(f"'{name}' is out of range") from None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _bad(f"'{name}' must be an ISO 8601 time or epoch seconds") from None
    return _in_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC), name)


def _in_range(when: dt.datetime, name: str) -> dt.datetime:
    try:
        if _EARLIEST <= when < _LATEST:
            return when
    except OverflowError:  # a UTC offset that takes the time out of datetime's range
        pass
    raise _bad(f"'{name}' is out of range")


def _single(call: RestCall, name: str) -> str | None:
    values = call.values(name)
    if len(values) > 1:
        raise _bad(f"'{name}' must be given once")
    return values[0] if values else None


def _enum_list(call: RestCall, name: str, mapping: Mapping[str, int]) -> list[int]:
    out = []
    for value in call.values(name):
        if value not in mapping:
            raise _bad(f"'{name}' must be an array of: {', '.join(sorted(mapping))}; got '{value}'")
        out.append(mapping[value])
    return out


def parse(call: RestCall, now: dt.datetime) -> MerakiQuery:
    """Validate every parameter; raises ``RestError(400)`` with Meraki's wording."""
    unknown = sorted(call.names() - KNOWN)
    if unknown:
        raise _bad(f"Unknown parameter '{unknown[0]}'")

    per_page = DEFAULT_PER_PAGE
    if (text := _single(call, "perPage")) is not None:
        number = ascii_integer(text)
        if number is None:
            raise _bad("'perPage' must be an integer")
        per_page = number
        if not 3 <= per_page <= 1000:
            raise _bad("'perPage' must be between 3 and 1000")

    sort_order = _single(call, "sortOrder") or "ascending"
    if sort_order not in ("ascending", "descending"):
        raise _bad("'sortOrder' must be one of: ascending, descending")

    t0_text, t1_text, span_text = _single(call, "t0"), _single(call, "t1"), _single(call, "timespan")
    if span_text is not None and (t0_text is not None or t1_text is not None):
        raise _bad("'timespan' cannot be used with 't0' or 't1'")
    if span_text is not None:
        span = timespan_seconds(span_text, MAX_TIMESPAN, "31 days")
        t1 = now
        t0 = now - dt.timedelta(seconds=span)
    else:
        given_t1 = parse_time(t1_text, "t1") if t1_text is not None else None
        given_t0 = parse_time(t0_text, "t0") if t0_text is not None else None
        t0 = given_t0 if given_t0 is not None else (given_t1 or now) - dt.timedelta(seconds=DEFAULT_TIMESPAN)
        if given_t1 is not None:
            t1 = given_t1
        else:
            t1 = min(now, t0 + MAX_LOOKBACK) if t0_text is not None else now
        if t0_text is not None and t0 < now - MAX_LOOKBACK:
            raise _bad("'t0' must be within the last 31 days")
        if t1 < t0:
            raise _bad("'t1' must be after 't0'")
        if t1 - t0 > MAX_LOOKBACK:
            raise _bad("'t1' can be a maximum of 31 days after 't0'")

    query = MerakiQuery(per_page=per_page, descending=sort_order == "descending", t0=t0, t1=t1)
    query.steps = _enum_list(call, "types", TYPES.canonical)
    query.severities = _enum_list(call, "includedSeverities", SEVERITIES.canonical)
    if (band := _single(call, "band")) is not None:
        if band not in BANDS.canonical:
            raise _bad(f"'band' must be one of: {', '.join(BANDS.canonical)}")
        query.bands = [BANDS.canonical[band]]
    if (ssid := _single(call, "ssidNumber")) is not None:
        if ascii_integer(ssid) is None or not 0 <= int(ssid) <= 14:
            raise _bad("'ssidNumber' must be an integer from 0 to 14")
        query.ssid_number = int(ssid)
    if (serial := _single(call, "deviceSerial")) is not None:
        if len(serial) > MAX_SERIAL:
            raise _bad(f"'deviceSerial' must be at most {MAX_SERIAL} characters")
        query.device_serial = serial
    after, before = _single(call, "startingAfter"), _single(call, "endingBefore")
    if after is not None and before is not None:
        raise _bad("'startingAfter' cannot be used with 'endingBefore'")
    if after:
        query.starting_after = decode_position(after, "startingAfter")
    if before:
        query.ending_before = LAST if before == LAST else decode_position(before, "endingBefore")
    return query


class ClientFilter(NamedTuple):
    """Which events are the path's client's: by MAC, or else by id."""

    client_id: str | None
    client_mac: str | None


def client_filter(client_id: str) -> ClientFilter:
    """The event filter of the path's client: its MAC when it is one, else
    its id; ``RestError(404)`` for an id no stored event can have."""
    if not client_id or len(client_id) > MAX_CLIENT_ID or "\x00" in client_id:
        raise RestError(404, "Client not found")
    mac = normalise_mac(client_id)
    return ClientFilter(None, mac) if mac else ClientFilter(client_id, None)
