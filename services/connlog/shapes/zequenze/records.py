"""Zequenze device app connection log -> canonical event: the tables (see
docs/mapping.md) and the conversion of a validated log into an event. The
shape is write-only: its answer is the log as sent, so no projection reads
the tables back (``Table.vendor``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.records import Table

if TYPE_CHECKING:
    from connlog.shapes.zequenze.params import ZequenzeLog

# The network Zequenze device logs are stored under (Zequenze logs name none).
DEVICE_NETWORK_ID = "devices"

FIELDS = ["network_name", "network_type", "network_security", "network_mccmnc", "frequency", "authentication",
          "bssid", "cellid", "roaming", "latitude", "longitude", "inbytes", "outbytes", "link_speed",
          "quality_metric", "quality_value"]

# ``network_type`` <-> access network type
NETWORK_TYPES = Table({"wi": pb.NETWORK_TYPE_WIFI, "mo": pb.NETWORK_TYPE_MOBILE, "bl": pb.NETWORK_TYPE_BLUETOOTH,
                       "et": pb.NETWORK_TYPE_ETHERNET})
# ``network_security`` <-> access network security
SECURITIES = Table({"opn": pb.NETWORK_SECURITY_OPEN, "wep": pb.NETWORK_SECURITY_WEP, "wpa": pb.NETWORK_SECURITY_WPA,
                    "wp2": pb.NETWORK_SECURITY_WPA2, "3gp": pb.NETWORK_SECURITY_3GPP})
# ``quality_metric`` <-> radio quality metric
METRICS = Table({"rssi": pb.QUALITY_METRIC_RSSI, "sinr": pb.QUALITY_METRIC_SINR})

# The canonical field each Zequenze key is stored in: a rejection by the
# canonical validation names the key the caller sent.
KEY_OF_FIELD = {
    "access_network.name": "network_name", "wlan.ssid": "network_name", "access_network.type": "network_type",
    "access_network.security": "network_security", "access_network.mcc_mnc": "network_mccmnc",
    "radio.frequency_ghz": "frequency", "radio.band": "frequency", "access_network.authentication": "authentication",
    "wlan.bssid": "bssid", "access_network.cell_id": "cellid", "access_network.roaming": "roaming",
    "location.latitude": "latitude", "location.longitude": "longitude", "traffic.bytes_in": "inbytes",
    "traffic.bytes_out": "outbytes", "radio.link_speed_mbps": "link_speed", "radio.quality_metric": "quality_metric",
    "radio.quality_value": "quality_value",
}


def band_of(frequency_ghz: float) -> pb.Band:
    if 2.3 <= frequency_ghz < 2.6:
        return pb.BAND_2_4_GHZ
    if 4.9 <= frequency_ghz < 5.925:
        return pb.BAND_5_GHZ
    if 5.925 <= frequency_ghz <= 7.125:
        return pb.BAND_6_GHZ
    return pb.BAND_UNSPECIFIED


def to_event(log: ZequenzeLog, device_id: str, received_at: dt.datetime) -> pb.ConnectionEvent:
    """The canonical event of a validated log (``connlog.shapes.zequenze.params``)
    of device ``device_id``, received at ``received_at``."""
    v = {k: val for k, val in log.values.items() if val is not None}
    event = pb.ConnectionEvent(
        network_id=DEVICE_NETWORK_ID,
        client=pb.Client(client_id=device_id, reporting_device_id=device_id),
        step=pb.CONNECTION_STEP_CONNECTION,
        outcome=pb.OUTCOME_SUCCESS,
        source=pb.Source(vendor=pb.VENDOR_ZEQUENZE),
        vendor_record=pb.VendorRecord(content_type="application/json", data=log.raw),
    )
    event.occur_time.FromDatetime(received_at)
    access = event.access_network
    access.name = v["network_name"]
    access.type = NETWORK_TYPES.canonical[v["network_type"]]
    if "network_security" in v:
        access.security = SECURITIES.canonical[v["network_security"]]
    access.authentication = v.get("authentication", "")
    access.mcc_mnc = v.get("network_mccmnc", "")
    access.cell_id = v.get("cellid", "")
    if "roaming" in v:
        access.roaming = v["roaming"]
    if access.type == pb.NETWORK_TYPE_WIFI:
        event.wlan.ssid = v["network_name"][:64]
    if "bssid" in v:
        event.wlan.bssid = v["bssid"]
    if "frequency" in v:
        event.radio.frequency_ghz = float(v["frequency"])
        event.radio.band = band_of(float(v["frequency"]))
    if "link_speed" in v:
        event.radio.link_speed_mbps = float(v["link_speed"])
    if "quality_metric" in v:
        event.radio.quality_metric = METRICS.canonical[v["quality_metric"]]
    if "quality_value" in v:
        event.radio.quality_value = float(v["quality_value"])
    if "latitude" in v:
        event.location.latitude = float(v["latitude"])
    if "longitude" in v:
        event.location.longitude = float(v["longitude"])
    if "inbytes" in v:
        event.traffic.bytes_in = v["inbytes"]
    if "outbytes" in v:
        event.traffic.bytes_out = v["outbytes"]
    return event
