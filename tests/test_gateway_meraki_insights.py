"""Meraki's aggregate endpoints through the real Envoy gateway, and through
Meraki's own Python SDK pointed at it: network, device and client
``connectionStats`` and ``failedConnections`` of known data, with exact
counts; their filters and time window; errors in Meraki's shape; the
per-organisation rate limit; tenant isolation."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import httpx
import meraki
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki import records as meraki_records
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import ingest, key_headers, meraki_get
from tests.support.services import Tenant

NET = "N_agg"
ONLY_A = "N_agg_only_a"  # a network only tenant A has
STATS = f"/api/v1/networks/{NET}/wireless/connectionStats"
DEVICES = f"/api/v1/networks/{NET}/wireless/devices/connectionStats"
CLIENTS = f"/api/v1/networks/{NET}/wireless/clients/connectionStats"
FAILED = f"/api/v1/networks/{NET}/wireless/failedConnections"
MAC1, MAC2, MAC3 = "02:aa:00:00:00:01", "02:aa:00:00:00:02", "02:aa:00:00:00:03"
ZERO = {"assoc": 0, "auth": 0, "dhcp": 0, "dns": 0, "success": 0}


def _at(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _meraki(when: dt.datetime, client: str, mac: str, type_: str, severity: str, serial: str, band: str,
            ssid: int, subtype: str = "", network: str = NET) -> pb.ConnectionEvent:
    """A Meraki connectivity event as vendor sync stores it (outcome from
    severity, the record kept)."""
    record = {"occurredAt": _at(when), "band": band, "ssidNumber": ssid, "type": type_, "subtype": subtype or None,
              "severity": severity, "durationMs": 10, "channel": 44 if band == "5" else 6, "rssi": 30,
              "deviceSerial": serial, "captureId": None}
    return meraki_records.to_event(record, network_id=network, client_id=client, mac_address=mac)


@dataclass
class Data:
    """Tenant A (the data below), tenant B (one failure in a network of the
    same id) and the times of A's events."""

    a: Tenant
    b: Tenant
    base: dt.datetime
    old: dt.datetime


def _a_events(base: dt.datetime, old: dt.datetime) -> list[pb.ConnectionEvent]:
    m = dt.timedelta(minutes=1)
    q2a = {"serial": "Q2-A", "band": "5", "ssid": 1}
    q2b = {"serial": "Q2-B", "band": "2.4", "ssid": 0}
    return [
        # client 1 at Q2-A (Meraki): an auth failure, then connected, then a DNS failure
        _meraki(base + 1 * m, "k1", MAC1, "assoc", "good", **q2a),
        _meraki(base + 2 * m, "k1", MAC1, "auth", "bad", subtype="8021x_auth_fail", **q2a),
        _meraki(base + 3 * m, "k1", MAC1, "assoc", "good", **q2a),
        _meraki(base + 4 * m, "k1", MAC1, "auth", "good", **q2a),
        _meraki(base + 5 * m, "k1", MAC1, "dhcp", "good", **q2a),
        _meraki(base + 6 * m, "k1", MAC1, "dns", "bad", subtype="dns_timeout", **q2a),
        # client 2 at Q2-B (Meraki): an association and a DHCP failure, then connected (DHCP, DNS), then a bad
        # deauth
        _meraki(base + 7 * m, "k2", MAC2, "assoc", "bad", subtype="assoc_reject", **q2b),
        _meraki(base + 8 * m, "k2", MAC2, "assoc", "good", **q2b),
        _meraki(base + 9 * m, "k2", MAC2, "auth", "good", **q2b),
        _meraki(base + 10 * m, "k2", MAC2, "dhcp", "bad", subtype="dhcp_no_offer", **q2b),
        _meraki(base + 11 * m, "k2", MAC2, "dhcp", "good", **q2b),
        _meraki(base + 11 * m + dt.timedelta(seconds=30), "k2", MAC2, "dns", "good", **q2b),  # no second success
        _meraki(base + 12 * m, "k2", MAC2, "deauth", "bad", subtype="deauth_inactivity", **q2b),
        # client 3 (connlog's own): a whole connection at Q2-A, a failed one at a Mojo AP known by name alone
        simple_event(NET, mac=MAC3, when=base + 13 * m, step=pb.CONNECTION_STEP_CONNECTION,
                     outcome=pb.OUTCOME_SUCCESS, radio=pb.Radio(band=pb.BAND_5_GHZ), wlan=pb.Wlan(ssid_number=1),
                     access_point=pb.AccessPoint(serial="Q2-A")),
        simple_event(NET, mac=MAC3, when=base + 14 * m, step=pb.CONNECTION_STEP_CONNECTION,
                     outcome=pb.OUTCOME_FAILURE, failure=pb.Failure(code=8, reason="EAPOL Handshake Failure"),
                     access_point=pb.AccessPoint(name="mojo-ap"), source=pb.Source(vendor=pb.VENDOR_MOJO)),
        # a device known by id alone: a DHCP failure at Q2-B
        simple_event(NET, mac="", client_id="dev-9", when=base + 15 * m, step=pb.CONNECTION_STEP_DHCP,
                     outcome=pb.OUTCOME_FAILURE, failure=pb.Failure(reason="No DHCP offer"),
                     radio=pb.Radio(band=pb.BAND_2_4_GHZ), wlan=pb.Wlan(ssid_number=0),
                     access_point=pb.AccessPoint(serial="Q2-B")),
        # informational: counted nowhere
        _meraki(base + 16 * m, "k1", MAC1, "assoc", "info", **q2a),
        # three days ago (outside the default window), and in another network
        _meraki(old, "k1", MAC1, "auth", "bad", subtype="8021x_auth_fail", **q2a),
        _meraki(base + 17 * m, "k1", MAC1, "auth", "bad", network=ONLY_A, **q2a),
    ]


@pytest.fixture
async def data(clients, make_tenant) -> Data:
    a, b = await make_tenant(), await make_tenant()
    base = (now() - dt.timedelta(hours=2)).replace(microsecond=0)  # whole seconds: exact epoch bounds
    old = now() - dt.timedelta(days=3)
    await ingest(clients, a, _a_events(base, old))
    # tenant B: a network of the same id, with failures of its own
    await ingest(clients, b, [_meraki(base + dt.timedelta(minutes=m), "kb", MAC1, "auth", "bad", "Q2-A", "5", 1)
                              for m in range(3)])
    return Data(a, b, base, old)


# The expected answers for tenant A's data over the last day.
NETWORK = {"assoc": 1, "auth": 1, "dhcp": 2, "dns": 1, "success": 3}
DEVICES_STATS = [
    {"serial": "Q2-A", "connectionStats": ZERO | {"auth": 1, "dns": 1, "success": 2}},
    {"serial": "Q2-B", "connectionStats": ZERO | {"assoc": 1, "dhcp": 2, "success": 1}},
]
CLIENTS_STATS = [
    {"mac": MAC1, "connectionStats": ZERO | {"auth": 1, "dns": 1, "success": 1}},
    {"mac": MAC2, "connectionStats": ZERO | {"assoc": 1, "dhcp": 1, "success": 1}},
    {"mac": MAC3, "connectionStats": ZERO | {"success": 1}},
]


def _failed(data: Data) -> list[dict[str, object]]:
    def at(minutes: int) -> str:
        return _at(data.base + dt.timedelta(minutes=minutes))

    return [
        {"ssidNumber": 1, "vlan": None, "clientMac": MAC1, "serial": "Q2-A", "failureStep": "auth",
         "type": "8021x_auth_fail", "ts": at(2)},
        {"ssidNumber": 1, "vlan": None, "clientMac": MAC1, "serial": "Q2-A", "failureStep": "dns",
         "type": "dns_timeout", "ts": at(6)},
        {"ssidNumber": 0, "vlan": None, "clientMac": MAC2, "serial": "Q2-B", "failureStep": "assoc",
         "type": "assoc_reject", "ts": at(7)},
        {"ssidNumber": 0, "vlan": None, "clientMac": MAC2, "serial": "Q2-B", "failureStep": "dhcp",
         "type": "dhcp_no_offer", "ts": at(10)},
        {"ssidNumber": 0, "vlan": None, "clientMac": None, "serial": "Q2-B", "failureStep": "dhcp",
         "type": "No DHCP offer", "ts": at(15)},
    ]


async def _get(http: httpx.AsyncClient, path: str, tenant: Tenant, params=None, style: str = "bearer"):
    response = await meraki_get(http, path, headers=key_headers(tenant, style), params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_exact_counts_of_known_data(gateway, data):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert await _get(http, STATS, data.a) == NETWORK
        assert await _get(http, STATS, data.a, style="meraki") == NETWORK  # Meraki's own key header
        assert await _get(http, DEVICES, data.a) == DEVICES_STATS
        assert await _get(http, CLIENTS, data.a) == CLIENTS_STATS
        failed = await _get(http, FAILED, data.a)
        assert failed == _failed(data)
        # failedConnections lists exactly the failures connectionStats counts
        assert len(failed) == sum(NETWORK[k] for k in ("assoc", "auth", "dhcp", "dns"))
        # keys in Meraki's order
        assert list((await http.get(STATS, headers=key_headers(data.a))).json()) == list(ZERO)


async def test_filters_and_window(gateway, data):
    old_window = {"t0": (data.old - dt.timedelta(hours=1)).isoformat(),
                  "t1": (data.old + dt.timedelta(hours=1)).isoformat()}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert await _get(http, STATS, data.a, {"band": "2.4"}) == ZERO | {"assoc": 1, "dhcp": 2, "success": 1}
        assert await _get(http, STATS, data.a, {"band": "6"}) == ZERO
        assert await _get(http, STATS, data.a, {"ssid": "1"}) == ZERO | {"auth": 1, "dns": 1, "success": 2}
        assert await _get(http, DEVICES, data.a, {"ssid": "0"}) == DEVICES_STATS[1:]
        assert await _get(http, CLIENTS, data.a, {"band": "5"}) == [CLIENTS_STATS[0], CLIENTS_STATS[2]]
        # the window: the event three days ago, alone
        assert await _get(http, STATS, data.a, old_window) == ZERO | {"auth": 1}
        assert await _get(http, DEVICES, data.a, old_window) == [
            {"serial": "Q2-A", "connectionStats": ZERO | {"auth": 1}}]
        assert [f["ts"] for f in await _get(http, FAILED, data.a, old_window)] == [_at(data.old)]
        # a window of the first six minutes: client 1's auth failure and its DHCP success
        t0 = data.base.timestamp()
        early = {"t0": f"{t0:.6f}", "t1": f"{t0 + 300:.6f}"}  # t1 inclusive: the DHCP success at +5 min
        assert await _get(http, STATS, data.a, early) == ZERO | {"auth": 1, "success": 1}
        assert await _get(http, STATS, data.a, {"timespan": "604800"}) == NETWORK | {"auth": 2}
        # failedConnections' own filters
        failed = _failed(data)
        assert await _get(http, FAILED, data.a, {"serial": "Q2-B"}) == failed[2:]
        assert await _get(http, FAILED, data.a, {"clientId": MAC1.upper().replace(":", "-")}) == failed[:2]
        assert await _get(http, FAILED, data.a, {"clientId": "dev-9"}) == failed[4:]
        assert await _get(http, FAILED, data.a, {"band": "5"}) == failed[:2]
        assert await _get(http, FAILED, data.a, {"ssid": "0", "serial": "Q2-A"}) == []


async def test_merakis_python_sdk(gateway, data):
    dashboard = meraki.DashboardAPI(
        data.a.keys["viewer"], base_url=f"{gateway.url}/api/v1", suppress_logging=True, output_log=False,
        print_console=False, maximum_retries=5, wait_on_rate_limit=True,
    )
    wireless = dashboard.wireless
    assert await asyncio.to_thread(wireless.getNetworkWirelessConnectionStats, NET, timespan=86400) == NETWORK
    assert await asyncio.to_thread(wireless.getNetworkWirelessDevicesConnectionStats, NET) == DEVICES_STATS
    assert await asyncio.to_thread(wireless.getNetworkWirelessClientsConnectionStats, NET, band="5",
                                   ssid=1) == [CLIENTS_STATS[0], CLIENTS_STATS[2]]
    assert await asyncio.to_thread(wireless.getNetworkWirelessFailedConnections, NET) == _failed(data)
    assert await asyncio.to_thread(wireless.getNetworkWirelessFailedConnections, NET, serial="Q2-A",
                                   clientId=MAC1, t0=data.base.isoformat()) == _failed(data)[:2]
    # Meraki's SDK raises its APIError with the status and Meraki's error body
    with pytest.raises(meraki.APIError) as caught:
        await asyncio.to_thread(wireless.getNetworkWirelessConnectionStats, NET, timespan=604801)
    assert caught.value.status == 400
    assert caught.value.message == {"errors": ["'timespan' must be less than or equal to 604800 seconds (7 days)"]}
    with pytest.raises(meraki.APIError) as caught:
        await asyncio.to_thread(wireless.getNetworkWirelessFailedConnections, "N_nowhere")
    assert caught.value.status == 404


async def test_tenant_isolation(gateway, data):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        # B's network of the same id holds only B's failures
        assert await _get(http, STATS, data.b) == ZERO | {"auth": 3}
        assert [f["serial"] for f in await _get(http, FAILED, data.b)] == ["Q2-A"] * 3
        # a network only A has is not found for B, on every endpoint
        for path in (STATS, DEVICES, CLIENTS, FAILED):
            response = await meraki_get(http, path.replace(NET, ONLY_A), headers=key_headers(data.b))
            assert response.status_code == 404, response.text
            assert response.json() == {"errors": ["Network not found"]}
            # and A sees it
            assert (await meraki_get(http, path.replace(NET, ONLY_A), headers=key_headers(data.a))).status_code == 200


ERRORS = [
    # (headers role or None, params, status, message)
    (None, {}, 401, "Invalid API key"),
    ("bogus", {}, 401, "Invalid API key"),
    ("device", {}, 403, "This API key may not read events"),
    ("viewer", {"vlan": "10"}, 400, "'vlan' is not supported: connlog's events carry no VLAN"),
    ("viewer", {"apTag": "lobby"}, 400, "'apTag' is not supported: connlog's events carry no AP tags"),
    ("viewer", {"timespan": "604801"}, 400, "'timespan' must be less than or equal to 604800 seconds (7 days)"),
    ("viewer", {"band": "7"}, 400, "'band' must be one of: 2.4, 5, 6"),
    ("viewer", {"ssid": "15"}, 400, "'ssid' must be an integer from 0 to 14"),
    ("viewer", {"perPage": "10"}, 400, "Unknown parameter 'perPage'"),
    ("viewer", {"t0": "yesterday"}, 400, "'t0' must be an ISO 8601 time or epoch seconds"),
]


@pytest.mark.parametrize("path", [STATS, DEVICES, CLIENTS, FAILED], ids=["network", "devices", "clients", "failed"])
async def test_errors_in_merakis_shape(gateway, data, path):
    old = int((now() - dt.timedelta(days=181)).timestamp())
    cases = [*ERRORS, ("viewer", {"t0": str(old)}, 400, "'t0' must be within the last 180 days")]
    if path != FAILED:  # failedConnections' own parameters are unknown to the others
        cases.append(("viewer", {"serial": "Q2-A"}, 400, "Unknown parameter 'serial'"))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for role, params, status, message in cases:
            headers = {} if role is None else (
                {"Authorization": "Bearer clk_0_nope"} if role == "bogus" else
                {"Authorization": f"Bearer {data.a.keys[role]}"})
            response = await meraki_get(http, path, headers=headers, params=params)
            assert (response.status_code, response.json()) == (status, {"errors": [message]}), params
        response = await meraki_get(http, path.replace(NET, "N_nowhere"), headers=key_headers(data.a))
        assert (response.status_code, response.json()) == (404, {"errors": ["Network not found"]})
        response = await meraki_get(http, path.replace(NET, "bad%20id"), headers=key_headers(data.a))
        assert response.status_code == 404


async def test_the_organisations_rate_limit_applies(gateway, data):
    """The aggregate endpoints share the organisation's budget with
    connectivityEvents: a burst is answered 429 with Retry-After, in
    Meraki's shape; another organisation is unaffected."""
    async with httpx.AsyncClient(base_url=gateway.url, limits=httpx.Limits(max_connections=50)) as http:
        responses: list[httpx.Response] = []
        for _ in range(20):  # bursts of 100 until the limit bites
            responses += await asyncio.gather(*(http.get(path, headers=key_headers(data.a))
                                                for path in (STATS, DEVICES, CLIENTS, FAILED) * 25))
            if any(r.status_code == 429 for r in responses):
                break
        statuses = {r.status_code for r in responses}
        assert statuses == {200, 429}, statuses
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json() == {"errors": ["API rate limit exceeded for organization"]}
        assert (await http.get(STATS, headers=key_headers(data.b))).status_code == 200


async def test_failed_connections_beyond_the_bound_are_a_400(gateway, data, monkeypatch):
    """Meraki's failedConnections is not paginated: a window holding more
    than the bound is a 400 asking to narrow it, never a truncated list
    (the services run in this process: the bound is lowered to 4 of 5)."""
    from connlog.shapes.meraki import servicer

    monkeypatch.setattr(servicer, "MAX_FAILED_CONNECTIONS", 4)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await meraki_get(http, FAILED, headers=key_headers(data.a))
        assert response.status_code == 400
        assert response.json() == {"errors": [
            "The timespan holds more than 4 failed connections: narrow it with 't0'/'t1' or 'timespan', or filter "
            "by 'serial' or 'clientId'"]}
        assert len(await _get(http, FAILED, data.a, {"serial": "Q2-B"})) == 3
