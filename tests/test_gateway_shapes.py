"""One event, three shapes; tenant isolation across shapes; native gRPC and
the canonical REST bindings through the same Envoy port; config validation."""

from __future__ import annotations

import datetime as dt
import subprocess

import grpc
import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.gateway.config import envoy_binary
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import MERAKI_PATH as MERAKI
from tests.support.gateway_calls import ZEQUENZE_SAMPLES as SAMPLES
from tests.support.gateway_calls import ingest

MOJO = "/V5/devices/clients/connectionlogs"


def bearer(tenant, role="viewer"):
    return {"Authorization": f"Bearer {tenant.keys[role]}"}


async def test_an_event_from_any_path_reads_in_every_shape(gateway, clients, tenant):
    when = now() - dt.timedelta(minutes=30)
    grpc_event = simple_event(
        "N_three", mac="02:00:00:00:33:01", client_id="k33", when=when, step=pb.CONNECTION_STEP_AUTHENTICATION,
        outcome=pb.OUTCOME_FAILURE, severity=pb.SEVERITY_BAD, subtype="eapol_timeout",
        radio=pb.Radio(band=pb.BAND_5_GHZ, channel=44, protocol="AC", quality_metric=pb.QUALITY_METRIC_RSSI,
                       quality_value=-67),
        wlan=pb.Wlan(ssid="corp", ssid_number=2, bssid="00:11:22:33:44:55"),
        access_point=pb.AccessPoint(name="ap-lobby", serial="Q2XX-0001-0001"),
        failure=pb.Failure(code=8, reason="EAPOL Handshake Failure", sub_code=41,
                           sub_reason="Maximum retries for 3/4 msg reached."),
    )
    await ingest(clients, tenant, [grpc_event])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        meraki = (await http.get(MERAKI.format(net="N_three", client="k33"), headers=bearer(tenant))).json()
        mojo = (await http.get(MOJO, params={"clientmacaddress": "02:00:00:00:33:01"}, headers=bearer(tenant))).json()
        # Zequenze in: readable through Meraki (network "devices", client = device id)
        created = await http.post("/api/v1/device_app_connection_log/", json=SAMPLES["wifi"],
                                  headers=bearer(tenant, "device"))
        assert created.status_code == 201
        from_device = (await http.get(MERAKI.format(net="devices", client="dev-1"),
                                      params={"timespan": 600}, headers=bearer(tenant))).json()
    assert meraki == [{
        "occurredAt": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "band": "5", "ssidNumber": 2, "type": "auth",
        "subtype": "eapol_timeout", "severity": "bad", "durationMs": None, "channel": 44, "rssi": -67,
        "eventData": None, "deviceSerial": "Q2XX-0001-0001", "captureId": None,
    }]
    [failure] = mojo["failureLogs"]
    assert mojo["successLogs"] == []
    assert failure == {
        "macAddress": "02:00:00:00:33:01", "protocol": "AC", "locationId": None, "eventType": "Failure",
        "bssid": "00:11:22:33:44:55", "channel": 44, "timestamp": int(when.timestamp()),
        "associatedAPName": "ap-lobby", "ssid": "corp", "associationTimestamp": None,
        "authenticationTimestamp": None, "networkTimestamp": None, "autoTestSessionId": None,
        "autoTestStatusCode": None, "autoTestStatus": None, "failureCode": 8, "failure": "EAPOL Handshake Failure",
        "subFailureCode": 41, "subFailure": "Maximum retries for 3/4 msg reached.", "fileId": None,
    }
    [device_event] = [e for e in from_device if e["occurredAt"] >= created.json()["created_at"][:19]]
    assert device_event["type"] == "connection" and device_event["band"] == "5"
    assert device_event["rssi"] == -45 and device_event["severity"] is None


async def test_tenants_are_isolated_in_every_shape(gateway, clients, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    await ingest(clients, a, [simple_event("N_iso", mac="02:00:00:00:44:01", client_id="k44")])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        meraki = await http.get(MERAKI.format(net="N_iso", client="k44"), headers=bearer(b))
        assert meraki.status_code == 404 and "k44" not in meraki.text
        network = await http.get("/api/v1/networks/N_iso", headers=bearer(b))
        assert network.status_code == 404
        own = await http.get("/api/v1/networks/N_iso", headers=bearer(a))
        assert own.status_code == 200 and own.json()["organizationId"] == a.tenant_id
        org = await http.get(f"/api/v1/organizations/{a.tenant_id}/networks", headers=bearer(b))
        assert org.status_code == 404
        mojo = await http.get(MOJO, params={"clientmacaddress": "02:00:00:00:44:01"}, headers=bearer(b))
        assert mojo.json() == {"successLogs": [], "failureLogs": []}
        # b's device writes into b only
        await http.post("/api/v1/device_app_connection_log/", json=SAMPLES["mobile"], headers=bearer(b, "device"))
        assert (await http.get(MERAKI.format(net="devices", client="dev-1"), headers=bearer(a))).status_code == 404
        assert (await http.get(MERAKI.format(net="devices", client="dev-1"), headers=bearer(b))).status_code == 200


async def test_native_grpc_and_canonical_rest_on_the_gateway_port(gateway, tenant):
    address = gateway.url.removeprefix("http://")
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestConnectionEvents(
            ipb.IngestConnectionEventsRequest(events=[simple_event("N_gw", client_id="k-gw")]), metadata=tenant.md())
        assert reply.accepted_count == 1
        listed = await query_service_pb2_grpc.QueryServiceStub(channel).ListConnectionEvents(
            qpb.ListConnectionEventsRequest(parent="networks/N_gw"), metadata=tenant.md())
        assert [e.event_id for e in listed.connection_events] == [reply.results[0].event_id]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/v1/networks/N_gw/connectionEvents", headers=bearer(tenant))
        assert response.status_code == 200
        assert response.json()["connectionEvents"][0]["client"]["clientId"] == "k-gw"
        response = await http.get("/v1/networks/N_gw/connectionEvents", params={"pageSize": 5000},
                                  headers=bearer(tenant))
        assert response.status_code == 400 and "page_size" in response.json()["message"]
        response = await http.get("/v1/networks/N_gw/connectionEvents")
        assert response.status_code == 401


def test_envoy_validates_the_config(gateway):
    result = subprocess.run([envoy_binary(_settings()), "--mode", "validate", "-c", str(gateway.config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def _settings():
    from connlog.core.settings import Settings

    return Settings()
