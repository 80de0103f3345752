"""Zequenze's parameters: the body of ``POST
/api/v1/device_app_connection_log/``, validated the way the Zequenze (Django
REST framework) API does: 400 for malformed JSON, wrong types, unknown or
missing fields; 422 for well-formed but unacceptable values; every error
body names its field (``{"latitude": ["..."]}``). The call takes no query
parameters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from connlog.core.identifiers import normalise_mac
from connlog.shapes.rest import RestCall, RestError
from connlog.shapes.zequenze.records import FIELDS, METRICS, NETWORK_TYPES, SECURITIES

REQUIRED = ("network_name", "network_type")
_TEXT = {"network_name", "network_type", "network_security", "network_mccmnc", "authentication", "bssid", "cellid",
         "quality_metric"}
_NUMBER = {"frequency", "link_speed", "quality_value"}
_INTEGER = {"inbytes", "outbytes"}
INT64_MAX = 2**63 - 1
# What Zequenze's (Django) model allows for its text keys.
_TEXT_MAX = {"network_name": 256, "authentication": 64, "cellid": 64, "bssid": 64, "network_mccmnc": 6,
             "network_type": 2, "network_security": 3, "quality_metric": 4}


def field_errors(status: int, body: Mapping[str, str | list[str]]) -> RestError:
    """An answer in Zequenze's error shape: ``body`` as given (errors keyed
    by field, or ``{"detail": ...}``)."""
    first = next(iter(body.values()), "")
    message = first if isinstance(first, str) else "; ".join(map(str, first))
    return RestError(status, message, body=body)


@dataclass
class ZequenzeLog:
    """A validated log: the values as sent, and the raw record text."""

    values: dict[str, Any]
    raw: str
    errors: dict[str, list[str]] = field(default_factory=dict)


def _is_number(value: object) -> bool:
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
        raise field_errors(400, {"detail": "JSON parse error - the body is not UTF-8 text"}) from None
    body = _json(raw, lambda reason: field_errors(400, {"detail": f"JSON parse error - {reason}"}))
    if isinstance(body, dict) and set(body) == {"data"}:
        inner = body["data"]
        if isinstance(inner, str):
            body = _json(inner, lambda reason: field_errors(400, {"data": [f"Value must be valid JSON: {reason}"]}))
            raw = inner
        elif isinstance(inner, dict):
            body, raw = inner, json.dumps(inner)
        else:
            raise field_errors(400, {"data": ["Value must be a JSON object or a JSON string."]})
    if not isinstance(body, dict):
        kind = type(body).__name__.replace("NoneType", "null")
        raise field_errors(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
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
        raise field_errors(400, errors)

    v = log.values
    unacceptable: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        unacceptable.setdefault(name, []).append(message)

    for name, choices in (("network_type", NETWORK_TYPES), ("network_security", SECURITIES),
                          ("quality_metric", METRICS)):
        if v.get(name) is not None and v[name] not in choices.canonical:
            bad(name, f'"{v[name]}" is not a valid choice.')
    mccmnc = v.get("network_mccmnc")
    if mccmnc is not None and not (mccmnc.isdigit() and 5 <= len(mccmnc) <= 6):
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
        raise field_errors(422, unacceptable)


def check_query(call: RestCall) -> None:
    """The POST takes no query parameters: 400 naming each one sent."""
    unknown = sorted(call.names())
    if unknown:
        raise field_errors(400, {name: ["Unknown query parameter."] for name in unknown})
