"""Meraki's connectivityEvents through the real Envoy gateway."""

from __future__ import annotations

import datetime as dt
import json
import random

import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import MERAKI_PATH as PATH
from tests.support.gateway_calls import ingest, key_headers, meraki_event, meraki_get


async def test_records_come_back_as_meraki_sent_them(gateway, clients, tenant):
    base = now() - dt.timedelta(hours=2)
    events = [meraki_event("N_m1", "k1", base + dt.timedelta(minutes=i), i,
                           type=t, severity=s) for i, (t, s) in enumerate(
        [("assoc", "good"), ("auth", "bad"), ("dhcp", "info"), ("roam", "warn")])]
    # A natively ingested event for the same client: projected, with nulls.
    native = simple_event("N_m1", client_id="k1", when=base + dt.timedelta(minutes=10),
                          step=pb.CONNECTION_STEP_DNS, severity=pb.SEVERITY_BAD, subtype="dns_failure")
    await ingest(clients, tenant, events + [native])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for style in ("bearer", "meraki"):
            response = await meraki_get(http, PATH.format(net="N_m1", client="k1"), headers=key_headers(tenant, style))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert isinstance(body, list) and len(body) == 5
            assert body[:4] == [json.loads(e.vendor_record.data) for e in events]
            # byte for byte: each original record's text is in the answer
            for event in events:
                assert event.vendor_record.data.encode() in response.content
            assert body[4] == {
                "occurredAt": base.replace(microsecond=base.microsecond).strftime("%Y-%m-%dT%H:%M:")
                + (base + dt.timedelta(minutes=10)).strftime("%S.%fZ"),
                "band": None, "ssidNumber": None, "type": "dns", "subtype": "dns_failure", "severity": "bad",
                "durationMs": None, "channel": None, "rssi": None, "eventData": None, "deviceSerial": None,
                "captureId": None,
            } | {"occurredAt": (base + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
            assert "grpc-status" not in response.headers
        # the client's MAC works in place of its id
        response = await meraki_get(http, PATH.format(net="N_m1", client="02:AA:00:00:00:01"),
                                    headers=key_headers(tenant))
        assert [e["type"] for e in response.json()] == ["auth"]


async def test_errors(gateway, clients, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    await ingest(clients, a, [meraki_event("N_err", "k1", now() - dt.timedelta(minutes=5))])
    url = PATH.format(net="N_err", client="k1")
    hours_ago = int((now() - dt.timedelta(hours=1)).timestamp())
    cases = [
        ({}, {}, 401),
        ({"Authorization": "Bearer nope"}, {}, 401),
        ({"X-Cisco-Meraki-API-Key": "clk_0_x"}, {}, 401),
        (key_headers(a), {"perPage": "2"}, 400),
        (key_headers(a), {"perPage": "1001"}, 400),
        (key_headers(a), {"perPage": "ten"}, 400),
        (key_headers(a), {"sortOrder": "up"}, 400),
        (key_headers(a), {"timespan": "2678401"}, 400),
        (key_headers(a), {"timespan": "-5"}, 400),
        (key_headers(a), {"timespan": "3600", "t0": str(hours_ago)}, 400),
        (key_headers(a), {"t0": str(int((now() - dt.timedelta(days=32)).timestamp()))}, 400),
        (key_headers(a), {"t0": str(hours_ago), "t1": str(hours_ago - 10)}, 400),
        (key_headers(a), {"t0": "yesterday"}, 400),
        (key_headers(a), {"types[]": "boot"}, 400),
        (key_headers(a), {"band": "3"}, 400),
        (key_headers(a), {"ssidNumber": "15"}, 400),
        (key_headers(a), {"includedSeverities[]": "fatal"}, 400),
        (key_headers(a), {"perpage": "10"}, 400),  # misspelled
        (key_headers(a), {"foo": "bar"}, 400),
        (key_headers(a), {"startingAfter": "garbage!"}, 400),
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for headers, params, status in cases:
            response = await meraki_get(http, url, headers=headers, params=params)
            assert response.status_code == status, (params, response.text)
            body = response.json()
            assert isinstance(body["errors"], list) and body["errors"][0], body
        # another tenant's network, or a client that never showed up: 404
        response = await meraki_get(http, url, headers=key_headers(b))
        assert response.status_code == 404 and response.json()["errors"]
        response = await meraki_get(http, PATH.format(net="N_err", client="k-unknown"), headers=key_headers(a))
        assert response.status_code == 404
        # Envoy's own errors are JSON too
        response = await meraki_get(http, "/api/v1/nowhere", headers=key_headers(a))
        assert response.status_code == 404 and response.json()["errors"]
        # a valid t0/t1 window in ISO 8601 is fine
        response = await meraki_get(http, url, headers=key_headers(a), params={
            "t0": (now() - dt.timedelta(hours=1)).isoformat(), "t1": now().isoformat()})
        assert response.status_code == 200 and len(response.json()) == 1


async def test_filters(gateway, clients, tenant):
    rng = random.Random(3)
    base = now() - dt.timedelta(hours=6)
    records = []
    for i in range(120):
        overrides = dict(type=rng.choice(["assoc", "auth", "dhcp", "dns", "roam"]),
                         severity=rng.choice(["good", "info", "warn", "bad"]), band=rng.choice(["2.4", "5", "6"]),
                         ssidNumber=rng.choice([0, 3]), deviceSerial=rng.choice(["Q-1", "Q-2"]))
        records.append((base + dt.timedelta(minutes=i), overrides))
    await ingest(clients, tenant, [meraki_event("N_filter", "k9", w, i, **o) for i, (w, o) in enumerate(records)])
    url = PATH.format(net="N_filter", client="k9")

    def expect(pred, start=None):
        return [w.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for w, o in records if pred(o) and (start is None or w >= start)]

    cut = base + dt.timedelta(minutes=60)
    cases = [
        ("types[]=assoc&types[]=roam", lambda o: o["type"] in ("assoc", "roam"), None),
        ("types=assoc&types=roam", lambda o: o["type"] in ("assoc", "roam"), None),
        ("types%5B%5D=dns", lambda o: o["type"] == "dns", None),
        ("includedSeverities[]=bad&includedSeverities[]=warn", lambda o: o["severity"] in ("bad", "warn"), None),
        ("band=2.4", lambda o: o["band"] == "2.4", None),
        ("ssidNumber=3", lambda o: o["ssidNumber"] == 3, None),
        ("deviceSerial=Q-2", lambda o: o["deviceSerial"] == "Q-2", None),
        (f"t0={cut.timestamp()}", lambda o: True, cut),
        ("types[]=auth&band=5&deviceSerial=Q-1", lambda o: o["type"] == "auth" and o["band"] == "5"
         and o["deviceSerial"] == "Q-1", None),
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for query, pred, start in cases:
            response = await meraki_get(http, f"{url}?{query}", headers=key_headers(tenant))
            assert response.status_code == 200, (query, response.text)
            got = [e["occurredAt"] for e in response.json()]
            assert got == expect(pred, start), query
            assert got, query
        response = await meraki_get(http, url, headers=key_headers(tenant), params={"sortOrder": "descending"})
        got = [e["occurredAt"] for e in response.json()]
        assert got == sorted(got, reverse=True) and len(got) == 120
