"""The shapes' record mappings (no database): each vendor enum table read
both ways, and vendor records converted into canonical events."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki import projection as meraki_projection
from connlog.shapes.meraki import records as meraki
from connlog.shapes.mojo import projection as mojo_projection
from connlog.shapes.mojo import records as mojo
from connlog.shapes.records import Table, VendorRecordError
from connlog.shapes.zequenze import records as zequenze
from connlog.shapes.zequenze.params import ZequenzeLog, validate
from connlog.store.events import ReadEvent

SAMPLES = resources.files("connlog.devtools").joinpath("samples")


def _sample(name):
    return json.loads(SAMPLES.joinpath(name).read_text())


# --- the tables --------------------------------------------------------------

# (table, every value the vendor documents and the canonical value it stands for, the canonical enum,
#  canonical values the vendor has no word for)
TABLES = {
    "meraki type": (meraki.TYPES, {
        "assoc": pb.CONNECTION_STEP_ASSOCIATION, "disassoc": pb.CONNECTION_STEP_DISASSOCIATION,
        "auth": pb.CONNECTION_STEP_AUTHENTICATION, "deauth": pb.CONNECTION_STEP_DEAUTHENTICATION,
        "dns": pb.CONNECTION_STEP_DNS, "dhcp": pb.CONNECTION_STEP_DHCP, "roam": pb.CONNECTION_STEP_ROAM,
        "connection": pb.CONNECTION_STEP_CONNECTION, "sticky": pb.CONNECTION_STEP_STICKY,
    }, pb.ConnectionStep, set()),
    "meraki band": (meraki.BANDS, {"2.4": pb.BAND_2_4_GHZ, "5": pb.BAND_5_GHZ, "6": pb.BAND_6_GHZ}, pb.Band, set()),
    "meraki severity": (meraki.SEVERITIES, {"good": pb.SEVERITY_GOOD, "info": pb.SEVERITY_INFO,
                                            "warn": pb.SEVERITY_WARN, "bad": pb.SEVERITY_BAD}, pb.Severity, set()),
    "mojo eventType": (mojo.EVENT_TYPES, {"Success": pb.OUTCOME_SUCCESS, "Failure": pb.OUTCOME_FAILURE}, pb.Outcome,
                       {pb.OUTCOME_INFORMATIONAL}),
    "zequenze network_type": (zequenze.NETWORK_TYPES, {
        "wi": pb.NETWORK_TYPE_WIFI, "mo": pb.NETWORK_TYPE_MOBILE, "bl": pb.NETWORK_TYPE_BLUETOOTH,
        "et": pb.NETWORK_TYPE_ETHERNET}, pb.NetworkType, set()),
    "zequenze network_security": (zequenze.SECURITIES, {
        "opn": pb.NETWORK_SECURITY_OPEN, "wep": pb.NETWORK_SECURITY_WEP, "wpa": pb.NETWORK_SECURITY_WPA,
        "wp2": pb.NETWORK_SECURITY_WPA2, "3gp": pb.NETWORK_SECURITY_3GPP}, pb.NetworkSecurity, set()),
    "zequenze quality_metric": (zequenze.METRICS, {"rssi": pb.QUALITY_METRIC_RSSI, "sinr": pb.QUALITY_METRIC_SINR},
                                pb.QualityMetric, {pb.QUALITY_METRIC_SNR}),
}


@pytest.mark.parametrize(("table", "documented", "enum", "unnamed"), TABLES.values(), ids=list(TABLES))
def test_every_vendor_value_maps_to_a_canonical_value_and_back(table: Table, documented, enum, unnamed):
    assert table.canonical == documented
    for text, value in documented.items():
        assert table.canonical[text] == value and value != 0, text  # a real canonical value, never "unspecified"
        assert table.vendor[value] == text
        assert table.to_canonical({"key": text}, "key") == value
    # every canonical value but "unspecified" (and those the vendor has no word for) has a vendor value
    assert set(table.vendor) == set(enum.values()) - {0} - unnamed


def test_a_table_is_one_to_one():
    with pytest.raises(ValueError):
        Table({"a": 1, "b": 1})


@pytest.mark.parametrize(
    ("record", "key", "expected"),
    [
        ({"type": "roam"}, "type", pb.CONNECTION_STEP_ROAM),
        ({"type": None}, "type", pb.CONNECTION_STEP_UNSPECIFIED),
        ({}, "type", pb.CONNECTION_STEP_UNSPECIFIED),
        ({"type": "ROAM"}, "type", VendorRecordError),
        ({"type": 7}, "type", VendorRecordError),
        ({"type": ["roam"]}, "type", VendorRecordError),
    ],
)
def test_table_reads_a_record_key(record, key, expected):
    if expected is VendorRecordError:
        with pytest.raises(VendorRecordError) as caught:
            meraki.TYPES.to_canonical(record, key)
        assert caught.value.field == key
    else:
        assert meraki.TYPES.to_canonical(record, key) == expected


def test_projections_read_the_same_tables():
    """No second copy: the projections' lookups are the record tables."""
    assert meraki_projection.STEP_TO_TYPE is meraki.TYPES.vendor
    assert meraki_projection.BAND_TO_TEXT is meraki.BANDS.vendor
    assert meraki_projection.SEVERITY_TO_TEXT is meraki.SEVERITIES.vendor
    assert mojo_projection._FAILURE_TYPE == mojo.EVENT_TYPES.vendor[pb.OUTCOME_FAILURE]


@pytest.mark.parametrize(("outcome", "log"), [(pb.OUTCOME_UNSPECIFIED, "successLogs"),
                                               (pb.OUTCOME_SUCCESS, "successLogs"),
                                               (pb.OUTCOME_INFORMATIONAL, "successLogs"),
                                               (pb.OUTCOME_FAILURE, "failureLogs")])
def test_mojo_success_and_failure_logs_split_every_outcome(outcome, log):
    assert (outcome in mojo.SUCCESS_OUTCOMES) == (log == "successLogs")
    assert (outcome == mojo.FAILURE) == (log == "failureLogs")
    event = pb.ConnectionEvent(outcome=outcome)
    event.occur_time.seconds = 1
    assert len(json.loads(mojo_projection.mojo_logs([ReadEvent.of(event)]))[log]) == 1


# --- records into events ------------------------------------------------------

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
    assert mojo_projection.mojo_record(event) == event.vendor_record.data.encode()


def test_mojo_success_log_latencies_and_projection_without_record():
    log = _sample("mojo_connectionlogs.json")["successLogs"][1]
    event = mojo.to_event(log, network_id="N_1")
    assert (event.outcome, event.severity) == (pb.OUTCOME_SUCCESS, pb.SEVERITY_GOOD)
    assert event.timing.dhcp_latency.seconds == 22 and event.timing.dns_latency.seconds == 546
    event.ClearField("vendor_record")
    event.source.vendor = pb.VENDOR_CONNLOG
    assert json.loads(mojo_projection.mojo_record(event)) == log  # the projection rebuilds the same record


def test_meraki_example_event():
    record = _sample("meraki_connectivity_events.json")[0]
    event = meraki.to_event(record, network_id="N_1", client_id="k74272e")
    assert event.occur_time.nanos == 90210000
    assert (event.step, event.subtype, event.severity) == (
        pb.CONNECTION_STEP_AUTHENTICATION, "success", pb.SEVERITY_BAD)
    assert event.outcome == pb.OUTCOME_FAILURE
    assert (event.radio.band, event.radio.channel, event.radio.quality_value) == (pb.BAND_5_GHZ, 44, 80)
    assert event.timing.duration.ToMilliseconds() == 100
    assert (event.access_point.serial, event.capture_id, event.wlan.ssid_number) == ("Q234-ABCD-5678", "123456", 1)
    event.ClearField("vendor_record")
    event.source.vendor = pb.VENDOR_CONNLOG
    projected = json.loads(meraki_projection.meraki_record(event))
    assert projected == dict(record, eventData=None)


@pytest.mark.parametrize(("severity", "outcome"), [("good", pb.OUTCOME_SUCCESS), ("bad", pb.OUTCOME_FAILURE),
                                                    ("info", pb.OUTCOME_INFORMATIONAL),
                                                    ("warn", pb.OUTCOME_INFORMATIONAL),
                                                    (None, pb.OUTCOME_INFORMATIONAL)])
def test_meraki_severity_sets_the_outcome(severity, outcome):
    event = meraki.to_event({"occurredAt": "2024-01-01T00:00:00Z", "severity": severity}, network_id="N")
    assert event.outcome == outcome


@pytest.mark.parametrize(("nanos", "text"), [(0, "2024-01-01T00:00:07.000000Z"), (5000, "2024-01-01T00:00:07.000005Z"),
                                            (999_999_999, "2024-01-01T00:00:07.999999Z")])
def test_meraki_time_always_has_six_digits(nanos, text):
    from connlog.store.events import ReadEvent

    event = pb.ConnectionEvent(step=pb.CONNECTION_STEP_DHCP)
    event.occur_time.seconds, event.occur_time.nanos = 1704067207, nanos
    assert json.loads(meraki_projection.meraki_record(event))["occurredAt"] == text
    stored = event.occur_time.ToDatetime(tzinfo=dt.UTC)
    items = [ReadEvent(1, stored, stored, event), ReadEvent(2, stored, stored, event)]
    assert json.loads(meraki_projection.meraki_array(items)) == [json.loads(meraki_projection.meraki_record(event))] * 2


def test_mojo_logs_split_by_outcome_in_order():
    events = [pb.ConnectionEvent(outcome=outcome, subtype=str(i)) for i, outcome in
              enumerate([pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_FAILURE])]
    for i, event in enumerate(events):
        event.occur_time.seconds = 1000 + i
    logs = json.loads(mojo_projection.mojo_logs([ReadEvent.of(e) for e in events]))
    assert [log["timestamp"] for log in logs["successLogs"]] == [1000, 1002]
    assert [log["timestamp"] for log in logs["failureLogs"]] == [1001, 1003]
    assert all("dnsLatency" in log for log in logs["successLogs"])
    assert all("failureCode" in log for log in logs["failureLogs"])


@pytest.mark.parametrize(
    ("convert", "record", "field"),
    [
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Maybe", "timestamp": 1}, "eventType"),
        (lambda r: mojo.to_event(r, network_id="N"), {"timestamp": 1}, "eventType"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success"}, "timestamp"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success", "timestamp": "x"}, "timestamp"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success", "timestamp": 1, "channel": 1.5},
         "channel"),
        (lambda r: mojo.to_event(r, network_id="N"), {"eventType": "Success", "timestamp": 1, "locationId": 5},
         "locationId"),
        (lambda r: mojo.to_event(r, network_id="N"), [], "record"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "soon"}, "occurredAt"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "type": "boot"}, "type"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "band": "4"}, "band"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "severity": "ok"},
         "severity"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "eventData": []},
         "eventData"),
        (lambda r: meraki.to_event(r, network_id="N"), {"occurredAt": "2024-01-01T00:00:00Z", "rssi": "80"}, "rssi"),
    ],
)
def test_bad_records_name_the_key(convert, record, field):
    with pytest.raises(VendorRecordError) as err:
        convert(record)
    assert err.value.field == field


@pytest.mark.parametrize("example", ["wifi", "mobile"])
def test_zequenze_log_into_an_event(example):
    values = _sample("zequenze_logs.json")[example]
    log = ZequenzeLog(values, json.dumps(values))
    validate(log)
    received = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    event = zequenze.to_event(log, "dev-1", received)
    assert (event.network_id, event.client.client_id, event.client.reporting_device_id) == ("devices", "dev-1", "dev-1")
    assert event.occur_time.ToDatetime(tzinfo=dt.UTC) == received
    assert event.source.vendor == pb.VENDOR_ZEQUENZE and event.vendor_record.data == log.raw
    assert zequenze.NETWORK_TYPES.vendor[event.access_network.type] == values["network_type"]
    assert zequenze.SECURITIES.vendor[event.access_network.security] == values["network_security"]
    assert zequenze.METRICS.vendor[event.radio.quality_metric] == values["quality_metric"]
    assert event.access_network.name == values["network_name"]
    assert (event.wlan.ssid == values["network_name"]) == (values["network_type"] == "wi")


@pytest.mark.parametrize(("frequency", "band"), [(2.4, pb.BAND_2_4_GHZ), (5.2, pb.BAND_5_GHZ), (5.925, pb.BAND_6_GHZ),
                                                 (7.125, pb.BAND_6_GHZ), (60.0, pb.BAND_UNSPECIFIED)])
def test_zequenze_band_of_frequency(frequency, band):
    assert zequenze.band_of(frequency) == band


@pytest.mark.parametrize(("channel", "band"), [(1, pb.BAND_2_4_GHZ), (14, pb.BAND_2_4_GHZ), (36, pb.BAND_5_GHZ),
                                               (177, pb.BAND_5_GHZ), (200, pb.BAND_UNSPECIFIED)])
def test_mojo_band_of_channel(channel, band):
    assert mojo.band_of_channel(channel) == band
