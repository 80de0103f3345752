"""Zequenze's gate API shape: ``POST /api/v1/device_app_connection_log/``.

The body is validated the way the Zequenze (Django REST framework) API does:
400 for malformed JSON, wrong types, unknown or missing fields; 422 for
well-formed but unacceptable values; every error body names its field
(``{"latitude": ["..."]}``). A valid log is stored as a canonical event of the
key's device and answered 201 with the stored log.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import orjson
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import zequenze_service_pb2_grpc
from connlog.core.auth import Role
from connlog.core.identifiers import normalise_mac
from connlog.core.rest import RestError, metadata_dict, respond, rest_call
from connlog.core.server import ServiceContext
from connlog.ingest.pipeline import IngestPipeline

# The network Zequenze device logs are stored under (Zequenze logs name none).
DEVICE_NETWORK_ID = "devices"

FIELDS = ["network_name", "network_type", "network_security", "network_mccmnc", "frequency", "authentication",
          "bssid", "cellid", "roaming", "latitude", "longitude", "inbytes", "outbytes", "link_speed",
          "quality_metric", "quality_value"]
REQUIRED = ("network_name", "network_type")
NETWORK_TYPES = {"wi": pb.NETWORK_TYPE_WIFI, "mo": pb.NETWORK_TYPE_MOBILE, "bl": pb.NETWORK_TYPE_BLUETOOTH,
                 "et": pb.NETWORK_TYPE_ETHERNET}
SECURITIES = {"opn": pb.NETWORK_SECURITY_OPEN, "wep": pb.NETWORK_SECURITY_WEP, "wpa": pb.NETWORK_SECURITY_WPA,
              "wp2": pb.NETWORK_SECURITY_WPA2, "3gp": pb.NETWORK_SECURITY_3GPP}
METRICS = {"rssi": pb.QUALITY_METRIC_RSSI, "sinr": pb.QUALITY_METRIC_SINR}
_TEXT = {"network_name", "network_type", "network_security", "network_mccmnc", "authentication", "bssid", "cellid",
         "quality_metric"}
_NUMBER = {"frequency", "link_speed", "quality_value"}
_INTEGER = {"inbytes", "outbytes"}


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
INT64_MAX = 2**63 - 1
# What Zequenze's (Django) model allows for its text keys.
_TEXT_MAX = {"network_name": 256, "authentication": 64, "cellid": 64, "bssid": 64, "network_mccmnc": 6,
             "network_type": 2, "network_security": 3, "quality_metric": 4}


def zequenze_error(status: int, body: dict) -> RestError:
    """An answer in Zequenze's error shape: ``body`` as given."""
    first = next(iter(body.values()), "")
    message = first if isinstance(first, str) else "; ".join(map(str, first))
    return RestError(status, message, body=body)


@dataclass
class ZequenzeLog:
    """A validated log: the values as sent, and the raw record text."""

    values: dict[str, Any]
    raw: str
    errors: dict[str, list[str]] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _json(text: str, error: Callable[[str], RestError]) -> Any:
    """Strict JSON (RFC 8259: no NaN or Infinity, no lone surrogates, bounded
    nesting); ``error(reason)`` is raised otherwise."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise error(str(exc)) from None


def parse_body(data: bytes) -> ZequenzeLog:
    """The log in a request body: the object itself, ``{"data": "<json>"}`` or
    ``{"data": {...}}``."""
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raise zequenze_error(400, {"detail": "JSON parse error - the body is not UTF-8 text"}) from None
    body = _json(raw, lambda reason: zequenze_error(400, {"detail": f"JSON parse error - {reason}"}))
    if isinstance(body, dict) and set(body) == {"data"}:
        inner = body["data"]
        if isinstance(inner, str):
            body = _json(inner, lambda reason: zequenze_error(400, {"data": [f"Value must be valid JSON: {reason}"]}))
            raw = inner
        elif isinstance(inner, dict):
            body, raw = inner, json.dumps(inner)
        else:
            raise zequenze_error(400, {"data": ["Value must be a JSON object or a JSON string."]})
    if not isinstance(body, dict):
        kind = type(body).__name__.replace("NoneType", "null")
        raise zequenze_error(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    return ZequenzeLog(body, raw)


def validate(log: ZequenzeLog) -> None:
    """Raise 400 for unknown/missing fields and wrong types, then 422 for
    unacceptable values; each error names its field."""
    errors: dict[str, list[str]] = {}
    for name in sorted(set(log.values) - set(FIELDS)):
        errors[name] = ["Unknown field."]
    for name in REQUIRED:
        if log.values.get(name) in (None, ""):
            errors[name] = ["This field is required."]
    for name, value in log.values.items():
        if value is None or name not in FIELDS or name in errors:
            continue
        if name in _TEXT and not isinstance(value, str):
            errors[name] = ["Not a valid string."]
        elif isinstance(value, str) and "\x00" in value:
            errors[name] = ["Null characters are not allowed."]
        elif name in _NUMBER and not _is_number(value):
            errors[name] = ["A valid number is required."]
        elif name in _INTEGER and (not isinstance(value, int) or isinstance(value, bool)):
            errors[name] = ["A valid integer is required."]
        elif name == "roaming" and not isinstance(value, bool):
            errors[name] = ["Must be a valid boolean."]
        elif name in ("latitude", "longitude"):
            if not isinstance(value, str):
                errors[name] = ["Not a valid string."]
            else:
                try:
                    if not math.isfinite(float(value)):
                        raise ValueError
                except ValueError:
                    errors[name] = ["A valid number is required."]
    if errors:
        raise zequenze_error(400, errors)

    v = log.values
    unacceptable: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        unacceptable.setdefault(name, []).append(message)

    for name, choices in (("network_type", NETWORK_TYPES), ("network_security", SECURITIES),
                          ("quality_metric", METRICS)):
        if v.get(name) is not None and v[name] not in choices:
            bad(name, f'"{v[name]}" is not a valid choice.')
    if v.get("network_mccmnc") is not None and not (v["network_mccmnc"].isdigit() and 5 <= len(v["network_mccmnc"]) <= 6):
        bad("network_mccmnc", "Must be 5 or 6 digits (MCC + MNC).")
    if v.get("bssid") is not None and normalise_mac(v["bssid"]) is None:
        bad("bssid", "Enter a valid MAC address.")
    if v.get("latitude") is not None and not -90 <= float(v["latitude"]) <= 90:
        bad("latitude", "Ensure this value is between -90 and 90.")
    if v.get("longitude") is not None and not -180 <= float(v["longitude"]) <= 180:
        bad("longitude", "Ensure this value is between -180 and 180.")
    for name in ("inbytes", "outbytes", "link_speed"):
        if v.get(name) is not None and v[name] < 0:
            bad(name, "Ensure this value is greater than or equal to 0.")
    for name in ("inbytes", "outbytes"):
        if v.get(name) is not None and v[name] > INT64_MAX:
            bad(name, f"Ensure this value is less than or equal to {INT64_MAX}.")
    if v.get("link_speed") is not None and v["link_speed"] > 1_000_000:
        bad("link_speed", "Ensure this value is less than or equal to 1000000.")
    for name, limit in _TEXT_MAX.items():
        if isinstance(v.get(name), str) and len(v[name]) > limit and name not in unacceptable:
            bad(name, f"Ensure this field has no more than {limit} characters.")
    if v.get("frequency") is not None and not 0 < v["frequency"] <= 100:
        bad("frequency", "Ensure this value is a frequency in GHz (greater than 0, at most 100).")
    if v.get("quality_value") is not None and not -1000 <= v["quality_value"] <= 1000:
        bad("quality_value", "Ensure this value is between -1000 and 1000.")
    if unacceptable:
        raise zequenze_error(422, unacceptable)


def band_of(frequency_ghz: float) -> int:
    if 2.3 <= frequency_ghz < 2.6:
        return pb.BAND_2_4_GHZ
    if 4.9 <= frequency_ghz < 5.925:
        return pb.BAND_5_GHZ
    if 5.925 <= frequency_ghz <= 7.125:
        return pb.BAND_6_GHZ
    return pb.BAND_UNSPECIFIED


def to_event(log: ZequenzeLog, device_id: str, received_at: dt.datetime) -> pb.ConnectionEvent:
    """The canonical event of a validated log."""
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
    access.type = NETWORK_TYPES[v["network_type"]]
    if "network_security" in v:
        access.security = SECURITIES[v["network_security"]]
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
        event.radio.quality_metric = METRICS[v["quality_metric"]]
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


def stored_log(log: ZequenzeLog, event_id: str, created_at: dt.datetime) -> dict:
    """The 201 body: every documented key (null where not given), id and
    created_at."""
    body: dict[str, Any] = {"id": int(event_id)}
    body |= {name: log.values.get(name) for name in FIELDS}
    body["created_at"] = created_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body


class ZequenzeServicer(zequenze_service_pb2_grpc.ZequenzeServiceServicer):
    """Stores device app connection logs."""

    def __init__(self, ctx: ServiceContext, pipeline: IngestPipeline) -> None:
        self._ctx = ctx
        self._pipeline = pipeline

    async def CreateDeviceAppConnectionLog(self, request, context):
        metadata = metadata_dict(context)
        if "authorization" not in metadata:
            raise zequenze_error(401, {"detail": "Authentication credentials were not provided."})
        principal = await self._ctx.auth.authenticate_rest({"authorization": metadata["authorization"]})
        if principal is None:
            raise zequenze_error(401, {"detail": "Invalid token."})
        if principal.role is not Role.DEVICE:
            raise zequenze_error(403, {"detail": "Only a device token may register connection logs."})
        unknown = sorted(rest_call(context).names())
        if unknown:
            raise zequenze_error(400, {name: ["Unknown query parameter."] for name in unknown})
        log = parse_body(request.body.data)
        validate(log)
        received_at = dt.datetime.now(dt.timezone.utc)
        event = to_event(log, principal.device_id or "", received_at)
        [result] = (await self._pipeline.ingest(principal, [event])).results
        if result.status == ingest_pb.INGEST_STATUS_REJECTED:
            key = KEY_OF_FIELD.get(result.field, "non_field_errors")
            raise zequenze_error(422, {key: [result.reason]})
        return await respond(context, 201, stored_log(log, result.event_id, received_at))
