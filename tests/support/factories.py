"""Events for tests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from connlog.api.v1 import connection_event_pb2 as pb


def ts(when: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def simple_event(
    network_id: str = "N_1",
    *,
    mac: str = "f0:d7:aa:df:59:a2",
    client_id: str = "",
    when: dt.datetime | None = None,
    step: pb.ConnectionStep = pb.CONNECTION_STEP_ASSOCIATION,
    **fields: Any,
) -> pb.ConnectionEvent:
    event = pb.ConnectionEvent(
        network_id=network_id,
        client=pb.Client(mac_address=mac, client_id=client_id),
        step=step,
        **fields,
    )
    event.occur_time.CopyFrom(ts(when or now()))
    return event


def full_event(when: dt.datetime | None = None) -> pb.ConnectionEvent:
    """An event with every field of every message set (output-only ones too,
    which the server must overwrite)."""
    when = when or now() - dt.timedelta(hours=1)
    record = {"macAddress": "f0:d7:aa:df:59:a2", "eventType": "Failure", "failureCode": 8, "x": None}
    event_data = struct_pb2.Struct()
    event_data.update({"reason": "assoc timeout", "retries": 3, "nested": {"a": [1, "b", True]}})
    return pb.ConnectionEvent(
        name="networks/ignored/connectionEvents/1",
        event_id="999",
        tenant_id="",
        network_id="N_784752235069315754",
        client=pb.Client(
            client_id="k74272e",
            mac_address="F0-D7-AA-DF-59-A2",
            ip_address="10.0.0.17",
            reporting_device_id="DEV-001-XR7H9",
        ),
        occur_time=ts(when.replace(microsecond=90210)),
        receive_time=ts(when),
        source=pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="mojo-123"),
        step=pb.CONNECTION_STEP_AUTHENTICATION,
        subtype="eapol_failure",
        outcome=pb.OUTCOME_FAILURE,
        severity=pb.SEVERITY_BAD,
        radio=pb.Radio(
            band=pb.BAND_5_GHZ,
            channel=157,
            frequency_ghz=5.785,
            protocol="ac",
            quality_metric=pb.QUALITY_METRIC_RSSI,
            quality_value=-61.5,
            link_speed_mbps=433.3,
        ),
        wlan=pb.Wlan(ssid="WebAppsDev", ssid_number=3, bssid="00:11:74:88:AF:60"),
        access_point=pb.AccessPoint(name="Mojo_88:AF:8F", serial="Q234-ABCD-5678"),
        location=pb.Location(
            location_id="95", location_type="locallocationid", name="HQ floor 2", latitude=40.7128, longitude=-74.006
        ),
        failure=pb.Failure(code=8, reason="EAPOL Handshake Failure", sub_code=41,
                           sub_reason="Maximum retries for 3/4 msg reached."),
        timing=pb.ConnectionTiming(
            association_time=ts(when - dt.timedelta(seconds=20)),
            authentication_time=ts(when - dt.timedelta(seconds=1)),
            network_time=ts(when),
            dhcp_latency=duration_pb2.Duration(seconds=22),
            aaa_latency=duration_pb2.Duration(nanos=500_000_000),
            dns_latency=duration_pb2.Duration(seconds=546),
            duration=duration_pb2.Duration(seconds=0, nanos=100_000_000),
        ),
        access_network=pb.AccessNetwork(
            name="WebAppsDev",
            type=pb.NETWORK_TYPE_MOBILE,
            security=pb.NETWORK_SECURITY_3GPP,
            authentication="3gp",
            mcc_mnc="310012",
            cell_id="12345678",
            roaming=False,
        ),
        traffic=pb.Traffic(bytes_in=2097152, bytes_out=0),
        capture_id="123456",
        file_id="DF59A2-88AF70-008869",
        auto_test=pb.AutoTest(session_id=77, status_code=0, status="done"),
        event_data=event_data,
        vendor_record=pb.VendorRecord(content_type="application/json", data=json.dumps(record)),
    )


def deep_json(levels: int, kind: str = "{}") -> Any:
    """JSON nested ``levels`` containers deep (``{}``: objects, ``[]``: lists)."""
    value: Any = "x"
    for _ in range(levels):
        value = {"k": value} if kind == "{}" else [value]
    return value


def deep_struct(levels: int) -> struct_pb2.Struct:
    """A Struct nested ``levels`` Structs deep, itself included."""
    out = struct_pb2.Struct()
    out.update(deep_json(levels, "{}"))
    return out
