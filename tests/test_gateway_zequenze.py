"""Zequenze's device app connection log POST through the real Envoy gateway."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path

import httpx
import pytest

from connlog.api.v1 import query_service_pb2 as qpb

SAMPLES = json.loads(resources.files("connlog.devtools").joinpath("samples", "zequenze_logs.json").read_text())
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
    created = dt.datetime.strptime(stored["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((created - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
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
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for headers, body, status, field in cases:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = await http.post(URL, content=content,
                                       headers={**headers, "Content-Type": "application/json"})
            assert response.status_code == status, (body, response.text)
            assert response.headers["content-type"] == "application/json"
            assert field in response.json(), response.text
        response = await http.post(URL + "?netwrok=1", json=wifi, headers=device(tenant))
        assert response.status_code == 400 and "netwrok" in response.json()
