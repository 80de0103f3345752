"""The query parameters of Meraki's aggregate endpoints (``connectionStats``
of a network, of its devices and of its clients, and ``failedConnections``),
validated with Meraki's bounds: ``t0`` at most 180 days back, ``t1`` at most
7 days after ``t0``, ``timespan`` at most 7 days. A bad one is
``RestError(400)`` naming it (docs/insights.md, "Meraki aggregate
endpoints")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from connlog.core.identifiers import normalise_mac
from connlog.shapes.meraki.params import MAX_CLIENT_ID, MAX_SERIAL, parse_time, timespan_seconds
from connlog.shapes.meraki.records import BANDS
from connlog.shapes.rest import RestCall, RestError, ascii_integer

MAX_LOOKBACK = dt.timedelta(days=180)
MAX_SPAN = dt.timedelta(days=7)
MAX_TIMESPAN = MAX_SPAN.total_seconds()  # 604800
DEFAULT_TIMESPAN = dt.timedelta(days=1)
# The parameters of the three connectionStats endpoints, and failedConnections'.
STATS_KNOWN = frozenset({"t0", "t1", "timespan", "band", "ssid", "vlan", "apTag"})
FAILED_KNOWN = STATS_KNOWN | {"serial", "clientId"}
# Meraki's filters connlog's events cannot answer: what they would need.
UNSUPPORTED = {"vlan": "connlog's events carry no VLAN", "apTag": "connlog's events carry no AP tags"}


@dataclass(frozen=True)
class StatsQuery:
    """A validated aggregate request: the window ``[t0, t1]`` and filters."""

    t0: dt.datetime
    t1: dt.datetime
    bands: tuple[int, ...] = ()
    ssid_number: int | None = None
    serial: str | None = None
    client_mac: str | None = None
    client_id: str | None = None


def _bad(message: str) -> RestError:
    return RestError(400, message)


def _single(call: RestCall, name: str) -> str | None:
    values = call.values(name)
    if len(values) > 1:
        raise _bad(f"'{name}' must be given once")
    return values[0] if values else None


def parse_window(call: RestCall, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``t0``/``t1``/``timespan`` as the window ``(t0, t1)``: ``timespan``
    ends now; ``t0`` alone ends 7 days later (or now); ``t1`` alone starts
    a day earlier; nothing is the last day."""
    t0_text, t1_text, span_text = _single(call, "t0"), _single(call, "t1"), _single(call, "timespan")
    if span_text is not None:
        if t0_text is not None or t1_text is not None:
            raise _bad("'timespan' cannot be used with 't0' or 't1'")
        span = timespan_seconds(span_text, MAX_TIMESPAN, "7 days")
        return now - dt.timedelta(seconds=span), now
    t0 = parse_time(t0_text, "t0") if t0_text is not None else None
    t1 = parse_time(t1_text, "t1") if t1_text is not None else None
    if t0 is None:
        t0 = (t1 or now) - DEFAULT_TIMESPAN
    if t1 is None:
        t1 = min(now, t0 + MAX_SPAN) if t0_text is not None else now
    if t0 < now - MAX_LOOKBACK:
        raise _bad(f"'{'t0' if t0_text is not None else 't1'}' must be within the last 180 days")
    if t1 < t0:
        raise _bad("'t1' must be after 't0'")
    if t1 - t0 > MAX_SPAN:
        raise _bad("'t1' can be a maximum of 7 days after 't0'")
    return t0, t1


def parse(call: RestCall, now: dt.datetime, known: frozenset[str] = STATS_KNOWN) -> StatsQuery:
    """Validate every parameter of an aggregate request (``known``: the
    endpoint's parameters); raises ``RestError(400)`` naming the first bad
    one."""
    unknown = sorted(call.names() - known)
    if unknown:
        raise _bad(f"Unknown parameter '{unknown[0]}'")
    for name, value in call.params:  # (the gateway's callers' are checked already; a gRPC caller's are not)
        if "\x00" in value:
            raise _bad(f"'{name}' contains a NUL character")
    for name, why in UNSUPPORTED.items():
        if _single(call, name) is not None:
            raise _bad(f"'{name}' is not supported: {why}")
    t0, t1 = parse_window(call, now)
    bands: tuple[int, ...] = ()
    if (band := _single(call, "band")) is not None:
        if band not in BANDS.canonical:
            raise _bad(f"'band' must be one of: {', '.join(BANDS.canonical)}")
        bands = (BANDS.canonical[band],)
    ssid_number = None
    if (ssid := _single(call, "ssid")) is not None:
        number = ascii_integer(ssid)
        if number is None or not 0 <= number <= 14:
            raise _bad("'ssid' must be an integer from 0 to 14")
        ssid_number = number
    serial = _single(call, "serial")
    if serial is not None and not 0 < len(serial) <= MAX_SERIAL:
        raise _bad(f"'serial' must be 1 to {MAX_SERIAL} characters")
    client_mac = client_id = None
    if (client := _single(call, "clientId")) is not None:
        if not 0 < len(client) <= MAX_CLIENT_ID:
            raise _bad(f"'clientId' must be a client MAC address (or id) of 1 to {MAX_CLIENT_ID} characters")
        client_mac = normalise_mac(client)
        client_id = None if client_mac else client
    return StatsQuery(t0, t1, bands, ssid_number, serial, client_mac, client_id)
