"""Mojo's connection logs and API-key login through the real Envoy gateway."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path

import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.mojo import records as mojo
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import ingest

SAMPLES = Path(str(resources.files("connlog.devtools").joinpath("samples")))
URL = "/V5/devices/clients/connectionlogs"


def rebased_seed(shift_to: dt.datetime) -> dict:
    """The seed page's sample, with every time moved into the retention
    window (other values untouched)."""
    sample = json.loads((SAMPLES / "mojo_connectionlogs.json").read_text())
    newest = max(log["timestamp"] for logs in sample.values() for log in logs)
    delta = int(shift_to.timestamp()) - newest
    for logs in sample.values():
        for log in logs:
            log["timestamp"] += delta
            for key in ("associationTimestamp", "authenticationTimestamp", "networkTimestamp"):
                log[key] += delta * 1000
    return sample


def bearer(tenant, role="viewer"):
    return {"Authorization": f"Bearer {tenant.keys[role]}"}


async def _ingest_seed(clients, tenant, when):
    sample = rebased_seed(when)
    events = [mojo.to_event(log, network_id="N_mojo", raw_text=json.dumps(log, indent=3))
              for logs in sample.values() for log in logs]
    await ingest(clients, tenant, events)
    return sample


async def test_seed_sample_round_trips(gateway, clients, tenant):
    sample = await _ingest_seed(clients, tenant, now() - dt.timedelta(hours=1))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in (URL, "/new/webservice" + URL):
            response = await http.get(path, params={"clientmacaddress": "F0:D7:AA:DF:59:A2"}, headers=bearer(tenant))
            assert response.status_code == 200, response.text
            assert response.json() == sample  # same keys, order, nulls, newest first
            for logs in sample.values():
                for log in logs:  # and each record's text byte for byte
                    assert json.dumps(log, indent=3).encode() in response.content
        # limit, logtype, failuretype, time range
        response = await http.get(URL, params={"clientmacaddress": "f0d7.aadf.59a2", "limit": 2},
                                  headers=bearer(tenant))
        body = response.json()
        assert body["successLogs"] == sample["successLogs"][:2] and body["failureLogs"] == []
        response = await http.get(URL, params={"clientmacaddress": "f0-d7-aa-df-59-a2", "logtype": "failure"},
                                  headers=bearer(tenant))
        assert response.json() == {"successLogs": [], "failureLogs": sample["failureLogs"]}
        response = await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2", "failuretype": 8},
                                  headers=bearer(tenant))
        assert response.json()["failureLogs"] == sample["failureLogs"]
        response = await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2", "failuretype": 9},
                                  headers=bearer(tenant))
        assert response.json() == {"successLogs": [], "failureLogs": []}
        oldest_success = sample["successLogs"][-1]["timestamp"]
        response = await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2", "fromtime": oldest_success + 1,
                                               "totime": -1}, headers=bearer(tenant))
        assert response.json() == {"successLogs": sample["successLogs"][:1], "failureLogs": []}
        response = await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2",
                                               "totime": sample["failureLogs"][0]["timestamp"]}, headers=bearer(tenant))
        assert response.json() == {"successLogs": [], "failureLogs": sample["failureLogs"]}


async def test_projection_of_other_sources_has_every_key(gateway, clients, tenant):
    native = simple_event("N_x", mac="02:00:00:00:77:01", when=now() - dt.timedelta(minutes=3),
                          step=pb.CONNECTION_STEP_DHCP, outcome=pb.OUTCOME_FAILURE,
                          failure=pb.Failure(code=3, reason="DHCP timeout"))
    success = simple_event("N_x", mac="02:00:00:00:77:01", when=now() - dt.timedelta(minutes=4),
                           wlan=pb.Wlan(ssid="corp", bssid="00:11:22:33:44:55"), radio=pb.Radio(channel=36))
    await ingest(clients, tenant, [native, success])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        body = (await http.get(URL, params={"clientmacaddress": "02:00:00:00:77:01"}, headers=bearer(tenant))).json()
    keys = ["macAddress", "protocol", "locationId", "eventType", "bssid", "channel", "timestamp", "associatedAPName",
            "ssid", "associationTimestamp", "authenticationTimestamp", "networkTimestamp", "autoTestSessionId",
            "autoTestStatusCode", "autoTestStatus"]
    [fail] = body["failureLogs"]
    [ok] = body["successLogs"]
    assert list(fail) == keys + ["failureCode", "failure", "subFailureCode", "subFailure", "fileId"]
    assert list(ok) == keys + ["dhcpLatency", "aaaLatency", "dnsLatency"]
    assert fail["eventType"] == "Failure" and fail["failureCode"] == 3 and fail["failure"] == "DHCP timeout"
    assert fail["subFailureCode"] is None and fail["protocol"] is None
    assert ok["ssid"] == "corp" and ok["channel"] == 36 and ok["dnsLatency"] is None


async def test_errors(gateway, tenant):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        cases = [
            ({}, {"clientmacaddress": "f0:d7:aa:df:59:a2"}, 401),
            ({"Authorization": "Bearer wrong"}, {"clientmacaddress": "f0:d7:aa:df:59:a2"}, 401),
            (bearer(tenant), {}, 400),
            (bearer(tenant), {"clientmacaddress": "not-a-mac"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "logtype": "some"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "limit": "x"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "limit": "0"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "fromtime": "yesterday"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "failuretype": "x"}, 400),
            (bearer(tenant), {"clientmacaddress": "f0:d7:aa:df:59:a2", "clientmac": "x"}, 400),
            (bearer(tenant, "device"), {"clientmacaddress": "f0:d7:aa:df:59:a2"}, 403),
        ]
        for headers, params, status in cases:
            response = await http.get(URL, params=params, headers=headers)
            assert response.status_code == status, (params, response.text)
            assert response.json()["error"], response.text
        response = await http.get("/V5/devices/nothing", headers=bearer(tenant))
        assert response.status_code == 404 and response.json()["error"]


async def test_api_key_login_cookie(gateway, clients, tenant, pool):
    await _ingest_seed(clients, tenant, now() - dt.timedelta(hours=2))
    key_id, secret = tenant.keys["viewer"].split("_", 2)[1:]
    login = "/new/webservice/login/key/acme-client/30"
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for body in ({"type": "apikeycredentials", "keyId": key_id, "keyValue": "wrong"},
                     {"type": "password", "keyId": key_id, "keyValue": secret}):
            response = await http.post(login, json=body)
            assert response.status_code in (400, 401) and response.json()["error"]
        assert (await http.post(login, content=b"{not json")).status_code == 400
        assert (await http.post("/new/webservice/login/key/acme-client/soon",
                                json={"type": "apikeycredentials", "keyId": key_id,
                                      "keyValue": secret})).status_code == 400

        response = await http.post(login, json={"type": "apikeycredentials", "keyId": key_id, "keyValue": secret})
        assert response.status_code == 200, response.text
        assert "HttpOnly" in response.headers["set-cookie"]
        assert http.cookies.get("JSESSIONID")
        logs = await http.get("/new/webservice" + URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2"})
        assert logs.status_code == 200 and len(logs.json()["failureLogs"]) == 2

        # the whole key is accepted as keyValue too
        other = httpx.AsyncClient(base_url=gateway.url)
        response = await other.post(login, json={"type": "apikeycredentials", "keyId": key_id,
                                                 "keyValue": tenant.keys["viewer"]})
        assert response.status_code == 200
        await other.aclose()

        # an expired or unknown session is not accepted
        http.cookies.clear()
        http.cookies.set("JSESSIONID", "forged")
        assert (await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2"})).status_code == 401
    async with pool.acquire() as conn:
        await conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(login, json={"type": "apikeycredentials", "keyId": key_id, "keyValue": secret})
        cookie = response.cookies["JSESSIONID"]
        async with pool.acquire() as conn:
            await conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
        response = await http.get(URL, params={"clientmacaddress": "f0:d7:aa:df:59:a2"},
                                  headers={"Cookie": f"JSESSIONID={cookie}"})
        assert response.status_code == 401


async def test_totime_defaults_to_now(gateway, clients, tenant):
    """Mojo's totime -1 (the default) means "now": an event stamped later
    (within the ingest's future allowance) is not in the answer until then."""
    mac = "f0:d7:aa:00:00:01"
    past = simple_event("N_time", mac=mac, when=now() - dt.timedelta(minutes=5), subtype="past")
    future = simple_event("N_time", mac=mac, when=now() + dt.timedelta(hours=2), subtype="future")
    await ingest(clients, tenant, [past, future])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        later = int((now() + dt.timedelta(hours=3)).timestamp())
        for params, expected in (({}, 1), ({"totime": -1}, 1), ({"totime": later}, 2), ({"fromtime": 0}, 1)):
            response = await http.get(URL, params={"clientmacaddress": mac, **params}, headers=bearer(tenant))
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["successLogs"]) + len(body["failureLogs"]) == expected, (params, body)
