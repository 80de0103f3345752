"""Whether one stored event matches a listing's filters, in Python: what
``connlog.store.events.listing_conditions`` asks of PostgreSQL, for the live
tail (which matches every new event against every watch in memory instead of
querying per watch).

The same semantics, condition by condition: equality on the stored column
values (a text or MAC filter never matches an event without that value, as
SQL's ``NULL = x`` is not true), ``occurred_at`` in ``[start, end)`` at the
stored microsecond, a list filter matching any of its values, the failure
code only when the event has one (tests/unit/test_tail_match.py holds the
case table)."""

from __future__ import annotations

from connlog.store.events import EventFilter, ReadEvent


def matches(flt: EventFilter, network_ref: int, read: ReadEvent) -> bool:
    """Whether the event ``read`` of network ``network_ref`` (of the
    filter's tenant) passes every condition of ``flt``."""
    if flt.network_ref is not None and network_ref != flt.network_ref:
        return False
    if flt.start is not None and read.occurred_at < flt.start:
        return False
    if flt.end is not None and read.occurred_at >= flt.end:
        return False
    for column, wanted in (("client_id", flt.client_id), ("client_mac", flt.client_mac), ("ssid", flt.ssid),
                           ("ap_serial", flt.ap_serial), ("ap_name", flt.ap_name), ("bssid", flt.bssid)):
        if wanted is not None and read.column(column) != wanted:
            return False
    event = read.stored  # the fields below are never left out of the payload
    if flt.steps and event.step not in flt.steps:
        return False
    if flt.outcomes and event.outcome not in flt.outcomes:
        return False
    if flt.severities and event.severity not in flt.severities:
        return False
    if flt.bands and event.radio.band not in flt.bands:
        return False
    if flt.vendor is not None and event.source.vendor != flt.vendor:
        return False
    if flt.ssid_number is not None and (not event.wlan.HasField("ssid_number")
                                        or event.wlan.ssid_number != flt.ssid_number):
        return False
    if flt.failure_codes and (not event.failure.HasField("code") or event.failure.code not in flt.failure_codes):
        return False
    return True
