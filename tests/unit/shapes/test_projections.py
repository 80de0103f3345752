"""Projections (no database): an event read in the shape it came in is its
vendor record verbatim; any other event is projected key by key, with
``null`` for what it lacks (docs/mapping.md)."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import orjson
import pytest
from google.protobuf import duration_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki import records as meraki
from connlog.shapes.meraki.projection import meraki_array, meraki_record
from connlog.shapes.mojo import records as mojo
from connlog.shapes.mojo.projection import mojo_logs, mojo_record
from connlog.shapes.records import verbatim_record
from connlog.shapes.zequenze.params import ZequenzeLog
from connlog.shapes.zequenze.projection import stored_log
from connlog.shapes.zequenze.records import FIELDS
from connlog.store.events import ReadEvent

SAMPLES = resources.files("connlog.devtools").joinpath("samples")


def _sample(name):
    return json.loads(SAMPLES.joinpath(name).read_text())


MERAKI_RECORDS = _sample("meraki_connectivity_events.json")
MOJO_LOGS = _sample("mojo_connectionlogs.json")
MOJO_RECORDS = MOJO_LOGS["successLogs"] + MOJO_LOGS["failureLogs"]


def _projected(event: pb.ConnectionEvent) -> pb.ConnectionEvent:
    """The event as if it had not come from a vendor: no record to answer."""
    event.ClearField("vendor_record")
    event.source.vendor = pb.VENDOR_CONNLOG
    return event


# --- records read back in their own shape --------------------------------------

@pytest.mark.parametrize("record", MERAKI_RECORDS)
def test_a_meraki_record_reads_back_verbatim(record):
    raw = json.dumps(record, indent=3)  # the text as the vendor sent it, whitespace and all
    event = meraki.to_event(record, network_id="N_1", client_id="k1", raw_text=raw)
    assert meraki_record(event) == raw.encode()
    when = event.occur_time.ToDatetime(tzinfo=dt.UTC)
    read = ReadEvent(1, when, when, event)
    assert meraki_array([read, read]) == b"[" + raw.encode() + b"," + raw.encode() + b"]"
    # projected instead, the same keys and values (eventData: null, the sample has none)
    assert json.loads(meraki_record(_projected(event))) == dict(record, eventData=None)


@pytest.mark.parametrize("record", MOJO_RECORDS)
def test_a_mojo_log_reads_back_verbatim(record):
    raw = json.dumps(record, indent=3)
    event = mojo.to_event(record, network_id="N_1", raw_text=raw)
    assert mojo_record(event) == raw.encode()
    logs = mojo_logs([ReadEvent.of(event)])
    kind = "failureLogs" if record["eventType"] == "Failure" else "successLogs"
    assert json.loads(logs) == {"successLogs": [], "failureLogs": [], kind: [record]}
    # projected instead: the same log, key for key and in Mojo's order
    assert list(json.loads(mojo_record(_projected(event))).items()) == list(record.items())


def test_a_record_is_verbatim_only_in_its_own_shape():
    mojo_event = mojo.to_event(MOJO_RECORDS[0], network_id="N_1", raw_text=json.dumps(MOJO_RECORDS[0]))
    meraki_event = meraki.to_event(MERAKI_RECORDS[0], network_id="N_1", raw_text=json.dumps(MERAKI_RECORDS[0]))
    assert set(json.loads(meraki_record(mojo_event))) == set(MERAKI_RECORDS[0]) | {"eventData"}
    assert json.loads(meraki_record(mojo_event))["type"] == "connection"
    assert set(json.loads(mojo_record(meraki_event))) == set(MOJO_LOGS["failureLogs"][0])  # a failure: severity bad


@pytest.mark.parametrize(
    ("content_type", "data", "verbatim"),
    [
        ("application/json", '{"a": 1}', True),
        ("application/json; charset=utf-8", ' {"a": 1} ', True),
        ("text/plain", '{"a": 1}', False),
        ("application/json", "[1]", False),
        ("application/json", "", False),
        ("application/json", '{"a": NaN}', False),
        ("application/json", '{"a": "\\ud800"}', False),
        ("application/json", '{"a": "\\u00e9"}', True),
    ],
)
def test_only_a_strict_json_object_is_answered_verbatim(content_type, data, verbatim):
    found = verbatim_record(pb.VendorRecord(content_type=content_type, data=data))
    assert (found is not None) == verbatim
    if verbatim:
        assert orjson.dumps(found) == data.encode()


def test_an_unfit_stored_record_is_projected():
    event = pb.ConnectionEvent(step=pb.CONNECTION_STEP_DNS, source=pb.Source(vendor=pb.VENDOR_MERAKI),
                               vendor_record=pb.VendorRecord(content_type="application/json", data="<xml/>"))
    event.occur_time.seconds = 1704067200
    assert json.loads(meraki_record(event))["type"] == "dns"


# --- other events, key by key ---------------------------------------------------

def _event(**fields) -> pb.ConnectionEvent:
    event = pb.ConnectionEvent(**fields)
    event.occur_time.seconds = 1704067200
    return event


def _with(build):
    event = _event()
    build(event)
    return event


MERAKI_NULLS = {"band": None, "ssidNumber": None, "type": None, "subtype": None, "severity": None,
                "durationMs": None, "channel": None, "rssi": None, "eventData": None, "deviceSerial": None,
                "captureId": None}

# (event, the keys it sets; every other key is null)
MERAKI_CASES = {
    "nothing": (_event(), {}),
    "step": (_event(step=pb.CONNECTION_STEP_ROAM), {"type": "roam"}),
    "severity": (_event(severity=pb.SEVERITY_WARN), {"severity": "warn"}),
    "band": (_with(lambda e: setattr(e.radio, "band", pb.BAND_6_GHZ)), {"band": "6"}),
    "channel 0": (_with(lambda e: setattr(e.radio, "channel", 0)), {"channel": 0}),
    "ssid number 0": (_with(lambda e: setattr(e.wlan, "ssid_number", 0)), {"ssidNumber": 0}),
    "subtype": (_event(subtype="wpa_auth"), {"subtype": "wpa_auth"}),
    "rssi rounded": (_with(lambda e: (setattr(e.radio, "quality_metric", pb.QUALITY_METRIC_RSSI),
                                      setattr(e.radio, "quality_value", -61.6))), {"rssi": -62}),
    "sinr is no rssi": (_with(lambda e: (setattr(e.radio, "quality_metric", pb.QUALITY_METRIC_SINR),
                                         setattr(e.radio, "quality_value", 15.0))), {}),
    "duration": (_with(lambda e: e.timing.duration.CopyFrom(duration_pb2.Duration(seconds=1, nanos=234_567_000))),
                 {"durationMs": 1234}),
    "duration beyond int64 ms": (_with(lambda e: e.timing.duration.CopyFrom(
        duration_pb2.Duration(seconds=2**62))), {}),
    "serial": (_with(lambda e: setattr(e.access_point, "serial", "Q-1")), {"deviceSerial": "Q-1"}),
    "capture": (_event(capture_id="c-9"), {"captureId": "c-9"}),
    "event data": (_with(lambda e: e.event_data.update({"a": [1, "x"]})), {"eventData": {"a": [1, "x"]}}),
}


@pytest.mark.parametrize(("event", "keys"), MERAKI_CASES.values(), ids=list(MERAKI_CASES))
def test_meraki_projection_key_by_key(event, keys):
    projected = json.loads(meraki_record(event))
    assert projected == {"occurredAt": "2024-01-01T00:00:00.000000Z", **MERAKI_NULLS, **keys}
    assert list(projected)[0] == "occurredAt"


MOJO_COMMON_NULLS = {"macAddress": None, "protocol": None, "locationId": None, "bssid": None, "channel": None,
                     "associatedAPName": None, "ssid": None, "associationTimestamp": None,
                     "authenticationTimestamp": None, "networkTimestamp": None, "autoTestSessionId": None,
                     "autoTestStatusCode": None, "autoTestStatus": None}
MOJO_SUCCESS_NULLS = {**MOJO_COMMON_NULLS, "dhcpLatency": None, "aaaLatency": None, "dnsLatency": None}
MOJO_FAILURE_NULLS = {**MOJO_COMMON_NULLS, "failureCode": None, "failure": None, "subFailureCode": None,
                      "subFailure": None, "fileId": None}

MOJO_CASES = {
    "nothing": (_event(), {"eventType": "Success"}),
    "informational is a success": (_event(outcome=pb.OUTCOME_INFORMATIONAL), {"eventType": "Success"}),
    "failure": (_event(outcome=pb.OUTCOME_FAILURE), {"eventType": "Failure"}),
    "client": (_event(client=pb.Client(mac_address="02:00:00:00:00:01")), {"eventType": "Success",
                                                                           "macAddress": "02:00:00:00:00:01"}),
    "numeric location": (_with(lambda e: (setattr(e.location, "location_type", "locallocationid"),
                                          setattr(e.location, "location_id", "95"))),
                         {"eventType": "Success", "locationId": {"type": "locallocationid", "id": 95}}),
    "text location": (_with(lambda e: setattr(e.location, "location_id", "floor-2")),
                      {"eventType": "Success", "locationId": {"type": None, "id": "floor-2"}}),
    "association time": (_with(lambda e: e.timing.association_time.FromMilliseconds(1495008849123)),
                         {"eventType": "Success", "associationTimestamp": 1495008849123}),
    "latency": (_with(lambda e: e.timing.dns_latency.CopyFrom(duration_pb2.Duration(seconds=3, nanos=900_000_000))),
                {"eventType": "Success", "dnsLatency": 3}),
    "failure detail": (_event(outcome=pb.OUTCOME_FAILURE, file_id="F-1",
                              failure=pb.Failure(code=8, reason="EAPOL", sub_code=41, sub_reason="retries")),
                       {"eventType": "Failure", "failureCode": 8, "failure": "EAPOL", "subFailureCode": 41,
                        "subFailure": "retries", "fileId": "F-1"}),
    "auto test": (_with(lambda e: (setattr(e.auto_test, "session_id", 0), setattr(e.auto_test, "status", "ok"))),
                  {"eventType": "Success", "autoTestSessionId": 0, "autoTestStatus": "ok"}),
}


@pytest.mark.parametrize(("event", "keys"), MOJO_CASES.values(), ids=list(MOJO_CASES))
def test_mojo_projection_key_by_key(event, keys):
    projected = json.loads(mojo_record(event))
    nulls = MOJO_FAILURE_NULLS if keys["eventType"] == "Failure" else MOJO_SUCCESS_NULLS
    assert projected == {**nulls, "timestamp": 1704067200, **keys}


@pytest.mark.parametrize("example", ["wifi", "mobile"])
def test_zequenze_answer_is_the_log_as_sent(example):
    values = _sample("zequenze_logs.json")[example]
    created = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)
    body = stored_log(ZequenzeLog(values, json.dumps(values)), "42", created)
    assert list(body) == ["id", *FIELDS, "created_at"]
    assert body == {"id": 42, **dict.fromkeys(FIELDS), **values, "created_at": "2026-01-02T03:04:05Z"}
