"""Whether one stored event matches a listing's filters, in Python: what
``connlog.store.events.listing_conditions`` asks of PostgreSQL, for the live
tail (which matches every new event against every watch in memory instead of
querying per watch).

It reads the very columns that SQL filters on (``connlog.store.feed
.FACT_COLUMNS``, as the row holds them: a fact read's asyncpg Record, or any
mapping of them), condition by condition: equality on the stored value, and
a NULL column never equal to anything (SQL's ``NULL = x`` is not true: a text,
MAC, SSID-number or failure-code filter never matches an event without that
value); ``occurred_at`` in ``[start, end)`` at the stored microsecond; a list
filter matching any of its values. (tests/unit/test_tail_match.py holds the
case table; tests/test_live_tail.py compares with ListConnectionEvents on the
same stored events.)"""

from __future__ import annotations

from connlog.store.events import EventFilter
from connlog.store.feed import EventFacts


def matches(flt: EventFilter, facts: EventFacts) -> bool:
    """Whether the event whose columns are ``facts`` (an event of the
    filter's tenant) passes every condition of ``flt``."""
    if flt.network_ref is not None and facts["network_ref"] != flt.network_ref:
        return False
    if flt.client_id is not None and facts["client_id"] != flt.client_id:
        return False
    if flt.client_mac is not None and facts["client_mac"] != flt.client_mac:
        return False
    if flt.start is not None and facts["occurred_at"] < flt.start:
        return False
    if flt.end is not None and facts["occurred_at"] >= flt.end:
        return False
    if flt.steps and facts["step"] not in flt.steps:
        return False
    if flt.outcomes and facts["outcome"] not in flt.outcomes:
        return False
    if flt.severities and facts["severity"] not in flt.severities:
        return False
    if flt.bands and facts["band"] not in flt.bands:
        return False
    if flt.failure_codes and facts["failure_code"] not in flt.failure_codes:
        return False
    if flt.ssid is not None and facts["ssid"] != flt.ssid:
        return False
    if flt.ap_serial is not None and facts["ap_serial"] != flt.ap_serial:
        return False
    if flt.ap_name is not None and facts["ap_name"] != flt.ap_name:
        return False
    if flt.ssid_number is not None and facts["ssid_number"] != flt.ssid_number:
        return False
    if flt.bssid is not None and facts["bssid"] != flt.bssid:
        return False
    if flt.vendor is not None and facts["vendor"] != flt.vendor:
        return False
    return True
