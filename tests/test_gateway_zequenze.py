"""Zequenze's device app connection log POST through the real Envoy gateway."""

from __future__ import annotations

import datetime as dt
import json

import grpc
import httpx
import pytest

from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import zequenze_service_pb2, zequenze_service_pb2_grpc
from connlog.shapes.rest import STATUS_HEADER
from tests.support.gateway_calls import ZEQUENZE_SAMPLES as SAMPLES

URL = "/api/v1/device_app_connection_log/"
FIELDS = ["network_name", "network_type", "network_security", "network_mccmnc", "frequency", "authentication",
          "bssid", "cellid", "roaming", "latitude", "longitude", "inbytes", "outbytes", "link_speed",
          "quality_metric", "quality_value"]


def device(tenant):
    return {"Authorization": f"Bearer {tenant.keys['device']}"}


@pytest.mark.parametrize("example", ["wifi", "mobile"])
@pytest.mark.parametrize("form", ["object", "data-string", "data-object"])
async def test_documented_examples_are_created(gateway, clients, tenant, example, form):
    log = SAMPLES[example]
    body = {"object": log, "data-string": {"data": json.dumps(log)}, "data-object": {"data": log}}[form]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(URL, json=body, headers=device(tenant))
        also = await http.post(URL.rstrip("/"), json=body, headers=device(tenant))
    assert response.status_code == 201, response.text
    assert also.status_code == 201
    stored = response.json()
    assert list(stored) == ["id", *FIELDS, "created_at"]
    assert {k: stored[k] for k in FIELDS} == {k: log.get(k) for k in FIELDS}
    assert isinstance(stored["id"], int) and stored["id"] != also.json()["id"]
    created = dt.datetime.strptime(stored["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((created - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    # exact number formatting of the documented response: 150.0, -45.0, 5.2
    if example == "wifi":
        assert b'"link_speed":150.0' in response.content and b'"quality_value":-45.0' in response.content

    # Stored canonically, as the device's event.
    event = await clients.query.GetConnectionEvent(
        qpb.GetConnectionEventRequest(name=f"networks/devices/connectionEvents/{stored['id']}"),
        metadata=tenant.md("viewer"),
    )
    assert event.client.reporting_device_id == "dev-1" and event.client.client_id == "dev-1"
    assert event.access_network.name == log["network_name"]
    assert json.loads(event.vendor_record.data) == log


async def test_a_direct_grpc_caller_is_told_the_status_the_gateway_implies(suite, tenant):
    # Through the gateway the backend leaves the shape's success status (201)
    # to the gateway; a caller without it still gets it named.
    async with grpc.aio.insecure_channel(suite.ingest_address) as channel:
        call = zequenze_service_pb2_grpc.ZequenzeServiceStub(channel).CreateDeviceAppConnectionLog(
            zequenze_service_pb2.CreateDeviceAppConnectionLogRequest(
                body={"content_type": "application/json", "data": json.dumps(SAMPLES["wifi"]).encode()}),
            metadata=tenant.md("device"))
        reply = await call
        assert dict(await call.initial_metadata())[STATUS_HEADER] == "201"
    assert json.loads(reply.data)["network_name"] == SAMPLES["wifi"]["network_name"]


async def test_errors_name_the_field(gateway, tenant):
    wifi = SAMPLES["wifi"]
    cases = [
        ({}, wifi, 401, "detail"),
        ({"Authorization": "Bearer clk_x_y"}, wifi, 401, "detail"),
        ({"Authorization": f"Bearer {tenant.keys['operator']}"}, wifi, 403, "detail"),
        (device(tenant), b"{not json", 400, "detail"),
        (device(tenant), [1, 2], 400, "non_field_errors"),
        (device(tenant), {"data": "{broken"}, 400, "data"),
        (device(tenant), {k: v for k, v in wifi.items() if k != "network_type"}, 400, "network_type"),
        (device(tenant), dict(wifi, frequency="5.2GHz"), 400, "frequency"),
        (device(tenant), dict(wifi, inbytes=1.5), 400, "inbytes"),
        (device(tenant), dict(wifi, roaming="no"), 400, "roaming"),
        (device(tenant), dict(wifi, latitude=40.7), 400, "latitude"),
        (device(tenant), dict(wifi, latitude="north"), 400, "latitude"),
        (device(tenant), dict(wifi, netwrok_name="typo"), 400, "netwrok_name"),
        (device(tenant), dict(wifi, network_type="xx"), 422, "network_type"),
        (device(tenant), dict(wifi, network_security="wpa3"), 422, "network_security"),
        (device(tenant), dict(wifi, latitude="91.0"), 422, "latitude"),
        (device(tenant), dict(wifi, longitude="-181"), 422, "longitude"),
        (device(tenant), dict(wifi, inbytes=-1), 422, "inbytes"),
        (device(tenant), dict(wifi, bssid="aa:bb"), 422, "bssid"),
        (device(tenant), dict(wifi, quality_metric="snr"), 422, "quality_metric"),
        (device(tenant), dict(SAMPLES["mobile"], network_mccmnc="31"), 422, "network_mccmnc"),
        # values the canonical event could not hold are named by the key sent
        (device(tenant), dict(wifi, link_speed=2_000_000), 422, "link_speed"),
        (device(tenant), dict(wifi, network_name="Office\u0000WiFi"), 400, "network_name"),
        (device(tenant), dict(wifi, authentication="x" * 65), 422, "authentication"),
        (device(tenant), dict(wifi, cellid="7" * 65), 422, "cellid"),
        (device(tenant), dict(wifi, outbytes=2**63), 422, "outbytes"),
        (device(tenant), dict(wifi, quality_value=10**400), 400, "detail"),  # no double holds it: not JSON we read
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for headers, body, status, field in cases:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = await http.post(URL, content=content,
                                       headers={**headers, "Content-Type": "application/json"})
            assert response.status_code == status, (body, response.text)
            assert response.headers["content-type"] == "application/json"
            assert field in response.json(), response.text
            assert not any("." in key for key in response.json()), response.text  # never connlog's own paths
        response = await http.post(URL + "?netwrok=1", json=wifi, headers=device(tenant))
        assert response.status_code == 400 and "netwrok" in response.json()


def test_every_stored_field_maps_back_to_a_zequenze_key():
    """A rejection by the canonical validation names the Zequenze key that
    filled the field: every field a log sets has its key in the table."""
    from connlog.shapes.zequenze import servicer as zequenze

    log = zequenze.ZequenzeLog(dict(SAMPLES["wifi"], **{k: v for k, v in SAMPLES["mobile"].items()
                                                           if k not in SAMPLES["wifi"]}), "{}")
    zequenze.validate(log)
    event = zequenze.to_event(log, "dev-1", dt.datetime.now(dt.UTC))
    own = {"network_id", "client", "step", "outcome", "source", "vendor_record", "occur_time"}

    def leaves(message, prefix=""):
        for descriptor, value in message.ListFields():
            path = prefix + descriptor.name
            if descriptor.message_type is not None and descriptor.message_type.full_name.startswith("connlog"):
                yield from leaves(value, path + ".")
            else:
                yield path

    paths = {p for p in leaves(event) if p.split(".")[0] not in own}
    assert len(paths) >= 12
    assert paths <= set(zequenze.KEY_OF_FIELD)
    assert set(zequenze.KEY_OF_FIELD.values()) <= set(FIELDS)
