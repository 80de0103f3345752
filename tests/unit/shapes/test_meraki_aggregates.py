"""Canonical insights -> Meraki's aggregate shapes (no database, no Envoy):
which per-step counts make ``assoc``/``auth``/``dhcp``/``dns``/``success``,
which groups become devices and clients, and the failedConnections element
of a failure event, key by key."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.shapes.meraki import aggregates
from connlog.store.events import ReadEvent

ZERO = {"assoc": 0, "auth": 0, "dhcp": 0, "dns": 0, "success": 0}


def _counts(step: int, successes: int = 0, failures: int = 0, informational: int = 0) -> ipb.StepCounts:
    return ipb.StepCounts(step=step, event_count=successes + failures + informational,
                          attempt_count=successes + failures, success_count=successes, failure_count=failures)


S = pb.ConnectionStep
# per-step counts -> Meraki's connectionStats
CASES = {
    "nothing": ([], ZERO),
    "assoc failures": ([_counts(S.CONNECTION_STEP_ASSOCIATION, successes=4, failures=2)], ZERO | {"assoc": 2}),
    "auth failures": ([_counts(S.CONNECTION_STEP_AUTHENTICATION, successes=1, failures=3)], ZERO | {"auth": 3}),
    "dhcp: failures and successes": ([_counts(S.CONNECTION_STEP_DHCP, successes=5, failures=1)],
                                     ZERO | {"dhcp": 1, "success": 5}),
    "dns failures; dns successes are no connections": ([_counts(S.CONNECTION_STEP_DNS, successes=7, failures=2)],
                                                       ZERO | {"dns": 2}),
    "whole connections succeed; their failures name no step": (
        [_counts(S.CONNECTION_STEP_CONNECTION, successes=3, failures=4)], ZERO | {"success": 3}),
    "informational events count nowhere": ([_counts(S.CONNECTION_STEP_ASSOCIATION, informational=9)], ZERO),
    "other steps count nowhere": ([_counts(step, successes=2, failures=2) for step in (
        S.CONNECTION_STEP_DISASSOCIATION, S.CONNECTION_STEP_DEAUTHENTICATION, S.CONNECTION_STEP_ROAM,
        S.CONNECTION_STEP_STICKY, S.CONNECTION_STEP_UNSPECIFIED)], ZERO),
    "everything": ([_counts(S.CONNECTION_STEP_ASSOCIATION, 10, 1), _counts(S.CONNECTION_STEP_AUTHENTICATION, 9, 2),
                    _counts(S.CONNECTION_STEP_DHCP, 8, 3), _counts(S.CONNECTION_STEP_DNS, 7, 4),
                    _counts(S.CONNECTION_STEP_CONNECTION, 6, 5)],
                   {"assoc": 1, "auth": 2, "dhcp": 3, "dns": 4, "success": 14}),
}


@pytest.mark.parametrize(("steps", "stats"), CASES.values(), ids=list(CASES))
def test_connection_stats(steps, stats):
    result = aggregates.connection_stats(steps)
    assert result == stats
    assert list(result) == ["assoc", "auth", "dhcp", "dns", "success"]  # Meraki's key order


def _group(steps: list[ipb.StepCounts], **key) -> ipb.ConnectionGroup:
    return ipb.ConnectionGroup(key=ipb.ConnectionGroupKey(**key), steps=steps)


def test_network_stats_sum_the_groups():
    groups = [_group([_counts(S.CONNECTION_STEP_AUTHENTICATION, 1, 1)]), _group([_counts(S.CONNECTION_STEP_DHCP, 2)])]
    assert aggregates.network_stats(groups) == ZERO | {"auth": 1, "success": 2}
    assert aggregates.network_stats([]) == ZERO


def test_devices_are_access_points_with_a_serial():
    groups = [
        _group([_counts(S.CONNECTION_STEP_DHCP, 1)], access_point=pb.AccessPoint(name="mojo-ap")),
        _group([_counts(S.CONNECTION_STEP_ASSOCIATION, 0, 2)], access_point=pb.AccessPoint(serial="Q2-A")),
        _group([_counts(S.CONNECTION_STEP_DNS, 0, 1)], access_point=pb.AccessPoint(serial="Q2-B")),
    ]
    assert aggregates.device_stats(groups) == [
        {"serial": "Q2-A", "connectionStats": ZERO | {"assoc": 2}},
        {"serial": "Q2-B", "connectionStats": ZERO | {"dns": 1}},
    ]


def test_clients_are_those_with_a_mac():
    groups = [
        _group([_counts(S.CONNECTION_STEP_CONNECTION, 1)], client=pb.Client(client_id="device-7")),
        _group([_counts(S.CONNECTION_STEP_DHCP, 3, 1)], client=pb.Client(mac_address="02:aa:00:00:00:01")),
    ]
    assert aggregates.client_stats(groups) == [
        {"mac": "02:aa:00:00:00:01", "connectionStats": ZERO | {"dhcp": 1, "success": 3}},
    ]


WHEN = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)


def _failure(**fields) -> ReadEvent:
    event = pb.ConnectionEvent(**({"network_id": "N", "step": pb.CONNECTION_STEP_AUTHENTICATION,
                                   "outcome": pb.OUTCOME_FAILURE} | fields))
    event.occur_time.FromDatetime(WHEN)
    return ReadEvent.of(event, 7)


FULL = {"ssidNumber": 3, "vlan": None, "clientMac": "02:aa:00:00:00:01", "serial": "Q2-A", "failureStep": "auth",
        "type": "8021x_auth_fail", "ts": "2026-03-01T12:00:00.250000Z"}
# failure event -> failedConnections element
ELEMENTS = {
    "meraki auth failure": (
        _failure(client=pb.Client(mac_address="02:aa:00:00:00:01", client_id="k1"), wlan=pb.Wlan(ssid_number=3),
                 access_point=pb.AccessPoint(serial="Q2-A"), subtype="8021x_auth_fail"), FULL),
    "ssid number 0 is kept": (_failure(wlan=pb.Wlan(ssid_number=0)),
                              {k: None for k in FULL} | {"ssidNumber": 0, "failureStep": "auth",
                                                         "ts": FULL["ts"]}),
    "the failure's reason before the subtype": (
        _failure(failure=pb.Failure(code=8, reason="EAPOL Handshake Failure"), subtype="x"),
        {k: None for k in FULL} | {"failureStep": "auth", "type": "EAPOL Handshake Failure", "ts": FULL["ts"]}),
    "a client known by id alone has no MAC": (
        _failure(client=pb.Client(client_id="k1"), step=pb.CONNECTION_STEP_DHCP),
        {k: None for k in FULL} | {"failureStep": "dhcp", "ts": FULL["ts"]}),
}


@pytest.mark.parametrize(("read", "element"), ELEMENTS.values(), ids=list(ELEMENTS))
def test_failed_connection_element(read, element):
    result = aggregates.failed_connection(read)
    assert result == element
    assert list(result) == ["ssidNumber", "vlan", "clientMac", "serial", "failureStep", "type", "ts"]


@pytest.mark.parametrize(("step", "name"), [(S.CONNECTION_STEP_ASSOCIATION, "assoc"),
                                            (S.CONNECTION_STEP_AUTHENTICATION, "auth"),
                                            (S.CONNECTION_STEP_DHCP, "dhcp"), (S.CONNECTION_STEP_DNS, "dns")])
def test_failure_steps_are_merakis_type_names(step, name):
    from connlog.shapes.meraki.records import TYPES

    assert aggregates.FAILURE_STEPS[step] == name == TYPES.vendor[step]


def test_failed_connections_is_a_bare_array():
    body = aggregates.failed_connections([_failure(), _failure(step=pb.CONNECTION_STEP_DNS)])
    assert [e["failureStep"] for e in orjson.loads(body)] == ["auth", "dns"]
    assert orjson.loads(aggregates.failed_connections([])) == []
