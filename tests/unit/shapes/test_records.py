"""Vendor record → canonical event converters (no database)."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.query.meraki_view import meraki_array, meraki_record
from connlog.query.mojo_view import mojo_logs, mojo_record
from connlog.store.events import ReadEvent
from connlog.vendors import VendorRecordError, meraki, mojo

SAMPLES = resources.files("connlog.devtools").joinpath("samples")


def _sample(name):
    return json.loads(SAMPLES.joinpath(name).read_text())


def test_mojo_failure_log():
    log = _sample("mojo_connectionlogs.json")["failureLogs"][0]
    event = mojo.to_event(log, network_id="N_1")
    assert event.client.mac_address == "f0:d7:aa:df:59:a2"
    assert event.occur_time.seconds == 1495008869
    assert event.outcome == pb.OUTCOME_FAILURE and event.severity == pb.SEVERITY_BAD
    assert event.step == pb.CONNECTION_STEP_CONNECTION
    assert (event.radio.protocol, event.radio.channel, event.radio.band) == ("BG", 1, pb.BAND_2_4_GHZ)
    assert (event.location.location_type, event.location.location_id) == ("locallocationid", "95")
    assert event.access_point.name == "Mojo_88:AF:8F"
    assert event.timing.association_time.ToMilliseconds() == 1495008849000
    assert (event.failure.code, event.failure.reason, event.failure.sub_code) == (8, "EAPOL Handshake Failure", 41)
    assert event.file_id == "DF59A2-88AF70-008869"
    assert not event.auto_test.HasField("session_id") and event.auto_test.status_code == 0
    assert json.loads(event.vendor_record.data) == log
    # Mojo's own shape comes back byte for byte from the kept record
    assert mojo_record(event) == event.vendor_record.data.encode()


def test_mojo_success_log_latencies_and_projection_without_record():
    log = _sample("mojo_connectionlogs.json")["successLogs"][1]
    event = mojo.to_event(log, network_id="N_1")
    assert event.timing.dhcp_latency.seconds == 22 and event.timing.dns_latency.seconds == 546
    event.ClearField("vendor_record")
    event.source.vendor = pb.VENDOR_CONNLOG
    assert json.loads(mojo_record(event)) == log  # the projection rebuilds the same record


def test_meraki_example_event():
    record = _sample("meraki_connectivity_events.json")[0]
    event = meraki.to_event(record, network_id="N_1", client_id="k74272e")
    assert event.occur_time.nanos == 90210000
    assert (event.step, event.subtype, event.severity) == (pb.CONNECTION_STEP_AUTHENTICATION, "success", pb.SEVERITY_BAD)
    assert event.outcome == pb.OUTCOME_FAILURE
    assert (event.radio.band, event.radio.channel, event.radio.quality_value) == (pb.BAND_5_GHZ, 44, 80)
    assert event.timing.duration.ToMilliseconds() == 100
    assert (event.access_point.serial, event.capture_id, event.wlan.ssid_number) == ("Q234-ABCD-5678", "123456", 1)
    event.ClearField("vendor_record")
    event.source.vendor = pb.VENDOR_CONNLOG
    projected = json.loads(meraki_record(event))
    assert projected == dict(record, eventData=None)


@pytest.mark.parametrize(("nanos", "text"), [(0, "2024-01-01T00:00:07.000000Z"), (5000, "2024-01-01T00:00:07.000005Z"),
                                            (999_999_999, "2024-01-01T00:00:07.999999Z")])
def test_meraki_time_always_has_six_digits(nanos, text):
    event = pb.ConnectionEvent(step=pb.CONNECTION_STEP_DHCP)
    event.occur_time.seconds, event.occur_time.nanos = 1704067207, nanos
    assert json.loads(meraki_record(event))["occurredAt"] == text
    stored = event.occur_time.ToDatetime(tzinfo=dt.timezone.utc)
    items = [ReadEvent(1, stored, event), ReadEvent(2, stored, event)]
    assert json.loads(meraki_array(items)) == [json.loads(meraki_record(event))] * 2


def test_mojo_logs_split_by_outcome_in_order():
    events = [pb.ConnectionEvent(outcome=outcome, subtype=str(i)) for i, outcome in
              enumerate([pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_FAILURE])]
    for i, event in enumerate(events):
        event.occur_time.seconds = 1000 + i
    logs = json.loads(mojo_logs(events))
    assert [log["timestamp"] for log in logs["successLogs"]] == [1000, 1002]
    assert [log["timestamp"] for log in logs["failureLogs"]] == [1001, 1003]
    assert all("dnsLatency" in log for log in logs["successLogs"])
    assert all("failureCode" in log for log in logs["failureLogs"])


@pytest.mark.parametrize(
    ("convert", "record", "field"),
    [
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Maybe", "timestamp": 1}, "eventType"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success"}, "timestamp"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success", "timestamp": "x"}, "timestamp"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success", "timestamp": 1, "channel": 1.5},
         "channel"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "soon"}, "occurredAt"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "type": "boot"}, "type"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "band": "4"}, "band"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "eventData": []},
         "eventData"),
    ],
)
def test_bad_records_name_the_key(convert, record, field):
    with pytest.raises(VendorRecordError) as err:
        convert(record)
    assert err.value.field == field
