"""Calls the gateway tests share: Meraki's connectivityEvents path, Meraki
events to ingest and GETs that honour Meraki's rate limit, ingest through
gRPC, and the documented Zequenze samples."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from importlib import resources
from typing import Any

import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from tests.support.factories import simple_event
from tests.support.services import Clients, Tenant

MERAKI_PATH = "/api/v1/networks/{net}/wireless/clients/{client}/connectivityEvents"
MERAKI_SEED_EXAMPLE = {"occurredAt": "2018-02-11T00:00:00.090210Z", "band": "5", "ssidNumber": 1, "type": "auth",
                       "subtype": "success", "severity": "bad", "durationMs": 100, "channel": 44, "rssi": 80,
                       "deviceSerial": "Q234-ABCD-5678", "captureId": "123456"}
# The documented Zequenze logs ("wifi", "mobile").
ZEQUENZE_SAMPLES = json.loads(
    resources.files("connlog.devtools").joinpath("samples", "zequenze_logs.json").read_text()
)


def meraki_event(network: str, client: str, when: dt.datetime, i: int = 0, **overrides: Any) -> pb.ConnectionEvent:
    """A Meraki-sourced event carrying its original record."""
    record = dict(MERAKI_SEED_EXAMPLE, occurredAt=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **overrides)
    types = {"assoc": 1, "disassoc": 2, "auth": 3, "deauth": 4, "dhcp": 5, "dns": 6, "roam": 7, "connection": 8,
             "sticky": 9}
    event = simple_event(
        network, client_id=client, mac=f"02:aa:00:00:{(i >> 8) & 255:02x}:{i & 255:02x}", when=when,
        step=types[record["type"]],
        severity={"good": 1, "info": 2, "warn": 3, "bad": 4}[record["severity"]],
        radio=pb.Radio(band={"2.4": 1, "5": 2, "6": 3}[record["band"]], channel=record["channel"]),
        wlan=pb.Wlan(ssid_number=record["ssidNumber"]),
        access_point=pb.AccessPoint(serial=record["deviceSerial"]),
        source=pb.Source(vendor=pb.VENDOR_MERAKI),
        vendor_record=pb.VendorRecord(content_type="application/json", data=json.dumps(record)),
    )
    return event


async def ingest(
    clients: Clients, tenant: Tenant, events: list[pb.ConnectionEvent]
) -> ipb.IngestConnectionEventsResponse:
    """Ingest ``events`` as ``tenant``'s operator; every one must be accepted."""
    reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events),
                                                        metadata=tenant.md())
    assert reply.rejected_count == 0, [r for r in reply.results if r.reason]
    return reply


async def meraki_get(http: httpx.AsyncClient, url: str, *, attempts: int = 5, **kwargs: Any) -> httpx.Response:
    """GET as Meraki's own clients do: a 429 (its per-organisation rate
    limit) is tried again after the Retry-After it states. On a fast machine
    a test's requests can outrun the limit; what the test checks is the
    answer, not the pace."""
    for _ in range(attempts):
        response = await http.get(url, **kwargs)
        if response.status_code != 429:
            break
        await asyncio.sleep(float(response.headers["retry-after"]))  # honouring the API, not synchronisation
    return response


def key_headers(tenant: Tenant, style: str = "bearer") -> dict[str, str]:
    """The tenant's viewer key, as a bearer token or in Meraki's own header."""
    key = tenant.keys["viewer"]
    return {"Authorization": f"Bearer {key}"} if style == "bearer" else {"X-Cisco-Meraki-API-Key": key}
