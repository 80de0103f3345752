"""The live tail's filter matcher (connlog.query.event_match) against the
semantics of ListConnectionEvents' SQL (connlog.store.events
.listing_conditions), case by case, over the columns ingest stores for an
event (``connlog.ingest.normalise``). (tests/test_live_tail.py runs the same
filters through List on a real database and compares.)"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.principal import Principal, Role
from connlog.ingest import normalise as nm
from connlog.query.event_match import matches
from connlog.query.servicer import build_filter
from connlog.store.events import EventFilter, listing_conditions
from connlog.store.feed import FACT_COLUMNS
from connlog.store.row import NETWORK_FIELD
from connlog.store.row import NETWORK_REF as NETWORK_COLUMN

WHEN = dt.datetime(2026, 3, 10, 12, 0, 0, 500_000, tzinfo=dt.UTC)
NETWORK_REF = 7


def _event(**overrides: object) -> pb.ConnectionEvent:
    """An event with every filtered field set (as ingest stores it)."""
    event = pb.ConnectionEvent(
        network_id="N_1", step=pb.CONNECTION_STEP_AUTHENTICATION, outcome=pb.OUTCOME_FAILURE,
        severity=pb.SEVERITY_BAD, client=pb.Client(mac_address="f0:d7:aa:df:59:a2", client_id="k1"),
        radio=pb.Radio(band=pb.BAND_5_GHZ), wlan=pb.Wlan(ssid="Corp", ssid_number=3, bssid="00:11:22:33:44:55"),
        access_point=pb.AccessPoint(serial="Q2-AB", name="Lobby"), failure=pb.Failure(code=8),
        source=pb.Source(vendor=pb.VENDOR_MERAKI))
    event.occur_time.FromDatetime(WHEN)
    for path, value in overrides.items():
        *parents, name = path.split("__")
        target = event
        for parent in parents:
            target = getattr(target, parent)
        if value is None:
            target.ClearField(name)
        else:
            setattr(target, name, value)
    return event


PRINCIPAL = Principal("k1", "t1", 1, Role.OPERATOR, None)


def _facts(event: pb.ConnectionEvent, network_ref: int) -> dict[str, object]:
    """The fact columns of ``event`` as ingest stores them (a MAC column as
    PostgreSQL prints a macaddr: lower case, colons)."""
    window = nm.IngestWindow(WHEN - dt.timedelta(days=1), WHEN + dt.timedelta(days=1), 31)
    stored = nm.normalise(event, PRINCIPAL, window)._asdict()
    stored[NETWORK_COLUMN] = network_ref
    del stored[NETWORK_FIELD]
    return {name: stored[name] for name in FACT_COLUMNS}


CASES = [
    # (what, filter, event overrides, network_ref, matches)
    ("no filter", EventFilter(), {}, NETWORK_REF, True),
    ("network", EventFilter(network_ref=NETWORK_REF), {}, NETWORK_REF, True),
    ("another network", EventFilter(network_ref=8), {}, NETWORK_REF, False),
    ("client id", EventFilter(client_id="k1"), {}, NETWORK_REF, True),
    ("client id differs", EventFilter(client_id="k2"), {}, NETWORK_REF, False),
    ("client id is case-sensitive", EventFilter(client_id="K1"), {}, NETWORK_REF, False),
    ("no client id stored (NULL = x)", EventFilter(client_id="k1"), {"client__client_id": None}, NETWORK_REF, False),
    ("client MAC", EventFilter(client_mac="f0:d7:aa:df:59:a2"), {}, NETWORK_REF, True),
    ("client MAC differs", EventFilter(client_mac="f0:d7:aa:df:59:a3"), {}, NETWORK_REF, False),
    ("no MAC stored", EventFilter(client_mac="f0:d7:aa:df:59:a2"), {"client__mac_address": None}, NETWORK_REF,
     False),
    ("start: at it (inclusive)", EventFilter(start=WHEN), {}, NETWORK_REF, True),
    ("start: a microsecond later", EventFilter(start=WHEN + dt.timedelta(microseconds=1)), {}, NETWORK_REF, False),
    ("end: at it (exclusive)", EventFilter(end=WHEN), {}, NETWORK_REF, False),
    ("end: a microsecond later", EventFilter(end=WHEN + dt.timedelta(microseconds=1)), {}, NETWORK_REF, True),
    ("steps: any of", EventFilter(steps=[pb.CONNECTION_STEP_DHCP, pb.CONNECTION_STEP_AUTHENTICATION]), {},
     NETWORK_REF, True),
    ("steps: none of", EventFilter(steps=[pb.CONNECTION_STEP_DHCP]), {}, NETWORK_REF, False),
    ("outcomes", EventFilter(outcomes=[pb.OUTCOME_FAILURE]), {}, NETWORK_REF, True),
    ("outcomes: none of", EventFilter(outcomes=[pb.OUTCOME_SUCCESS]), {}, NETWORK_REF, False),
    ("severities", EventFilter(severities=[pb.SEVERITY_BAD, pb.SEVERITY_WARN]), {}, NETWORK_REF, True),
    ("severities: none of", EventFilter(severities=[pb.SEVERITY_GOOD]), {}, NETWORK_REF, False),
    ("bands", EventFilter(bands=[pb.BAND_5_GHZ]), {}, NETWORK_REF, True),
    ("bands: none of", EventFilter(bands=[pb.BAND_6_GHZ]), {}, NETWORK_REF, False),
    ("bands: no band stored (0)", EventFilter(bands=[pb.BAND_5_GHZ]), {"radio__band": 0}, NETWORK_REF, False),
    ("ssid", EventFilter(ssid="Corp"), {}, NETWORK_REF, True),
    ("ssid differs", EventFilter(ssid="corp"), {}, NETWORK_REF, False),
    ("ssid number", EventFilter(ssid_number=3), {}, NETWORK_REF, True),
    ("ssid number 0 matches a stored 0", EventFilter(ssid_number=0), {"wlan__ssid_number": 0}, NETWORK_REF, True),
    ("ssid number 0, none stored (NULL)", EventFilter(ssid_number=0), {"wlan__ssid_number": None}, NETWORK_REF,
     False),
    ("ssid number differs", EventFilter(ssid_number=4), {}, NETWORK_REF, False),
    ("AP serial", EventFilter(ap_serial="Q2-AB"), {}, NETWORK_REF, True),
    ("AP serial differs", EventFilter(ap_serial="Q2-AC"), {}, NETWORK_REF, False),
    ("AP name", EventFilter(ap_name="Lobby"), {}, NETWORK_REF, True),
    ("AP name differs", EventFilter(ap_name="lobby"), {}, NETWORK_REF, False),
    ("BSSID", EventFilter(bssid="00:11:22:33:44:55"), {}, NETWORK_REF, True),
    ("BSSID differs", EventFilter(bssid="00:11:22:33:44:56"), {}, NETWORK_REF, False),
    ("failure codes", EventFilter(failure_codes=[1, 8]), {}, NETWORK_REF, True),
    ("failure codes: none of", EventFilter(failure_codes=[1]), {}, NETWORK_REF, False),
    ("failure codes: no code stored", EventFilter(failure_codes=[8]), {"failure__code": None}, NETWORK_REF, False),
    ("failure codes: no failure", EventFilter(failure_codes=[0]), {"failure": None}, NETWORK_REF, False),
    ("vendor", EventFilter(vendor=pb.VENDOR_MERAKI), {}, NETWORK_REF, True),
    ("vendor differs", EventFilter(vendor=pb.VENDOR_MOJO), {}, NETWORK_REF, False),
    ("every filter at once", EventFilter(
        network_ref=NETWORK_REF, client_id="k1", client_mac="f0:d7:aa:df:59:a2", start=WHEN,
        end=WHEN + dt.timedelta(seconds=1), steps=[pb.CONNECTION_STEP_AUTHENTICATION], outcomes=[pb.OUTCOME_FAILURE],
        severities=[pb.SEVERITY_BAD], bands=[pb.BAND_5_GHZ], ssid="Corp", ssid_number=3, ap_serial="Q2-AB",
        ap_name="Lobby", bssid="00:11:22:33:44:55", failure_codes=[8], vendor=pb.VENDOR_MERAKI), {}, NETWORK_REF, True),
    ("every filter but one", EventFilter(
        network_ref=NETWORK_REF, client_id="k1", client_mac="f0:d7:aa:df:59:a2", steps=[pb.CONNECTION_STEP_DHCP]),
     {}, NETWORK_REF, False),
]


@pytest.mark.parametrize(("flt", "overrides", "network_ref", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_the_matcher_holds_the_listing_semantics(flt, overrides, network_ref, expected):
    assert matches(flt, _facts(_event(**overrides), network_ref)) is expected


def test_the_facts_are_the_columns_the_listing_filters_on():
    """Every column listing_conditions filters on is a fact (and no other)."""
    every = EventFilter(
        network_ref=1, client_id="k", client_mac="f0:d7:aa:df:59:a2", start=WHEN, end=WHEN, steps=[1], outcomes=[1],
        severities=[1], bands=[1], ssid="s", ssid_number=1, ap_serial="a", ap_name="n", bssid="00:11:22:33:44:55",
        failure_codes=[1], vendor=1)
    where, _ = listing_conditions(1, every, None, False)
    assert set(re.findall(r"\be\.(\w+)", where)) - {"tenant_ref"} == set(FACT_COLUMNS)


def test_a_watch_request_builds_the_filter_a_list_request_does():
    """One code path: the same fields give the same filter, MACs normalised."""
    fields = dict(client_id="k1", client_mac_address="F0-D7-AA-DF-59-A2", steps=[pb.CONNECTION_STEP_DHCP],
                  ssid="Corp", ssid_number=0, bssid="0011.2233.4455", failure_codes=[8], vendor=pb.VENDOR_MOJO)
    watched = build_filter(qpb.WatchConnectionEventsRequest(parent="networks/-", **fields))
    listed = build_filter(qpb.ListConnectionEventsRequest(parent="networks/-", **fields))
    assert watched == listed
    assert watched.client_mac == "f0:d7:aa:df:59:a2" and watched.bssid == "00:11:22:33:44:55"
