"""The rendered Envoy config against the shapes registry (no Envoy process):
every registered service is transcoded and routed to the cluster of the
process hosting it, every shape's paths get its error format and its body
limit, nothing is routed or transcoded that the registry does not name
(reflection and health only when the settings expose them), and the admin
interface is on an owner-only Unix socket."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2

from connlog.core.settings import Settings
from connlog.gateway import config
from connlog.shapes import registry
from connlog.shapes.rest import HEADERS

SETTINGS = Settings(gateway_ingest_upstream="ingest.internal:7001", gateway_query_upstream="query.internal:7002",
                    gateway_vendor_sync_upstream="sync.internal:7003")


@pytest.fixture(scope="module")
def envoy() -> dict:
    return yaml.safe_load(config.render(SETTINGS))


def _manager(envoy: dict) -> dict:
    [listener] = envoy["static_resources"]["listeners"]
    [chain] = listener["filter_chains"]
    [manager] = chain["filters"]
    return manager["typed_config"]


def _filter(envoy: dict, name: str) -> dict:
    [found] = [f["typed_config"] for f in _manager(envoy)["http_filters"] if f["name"] == name]
    return found


def _routes(envoy: dict) -> list[dict]:
    """The routes, less the page's (under /ui: tests/test_gateway_ui.py)."""
    [host] = _manager(envoy)["route_config"]["virtual_hosts"]
    return [r for r in host["routes"] if not r["match"].get("path", r["match"].get("prefix", "")).startswith("/ui")]


def test_every_service_is_transcoded_and_nothing_else(envoy):
    services = _filter(envoy, "envoy.filters.http.grpc_json_transcoder")["services"]
    expected = {shape.service for shape in registry.SHAPES} | {s.name for s in registry.SERVICES if s.transcoded}
    assert sorted(services) == sorted(expected)
    assert {"connlog.api.v1.IngestService", "connlog.api.v1.QueryService", "connlog.api.v1.VendorSyncService",
            "connlog.api.v1.MerakiService", "connlog.api.v1.MojoService", "connlog.api.v1.ZequenzeService"} <= expected
    # each is a service of the descriptor Envoy loads (else it would not start)
    files = descriptor_pb2.FileDescriptorSet.FromString(config.asset("connlog.pb").read_bytes())
    assert set(services) <= {f"{f.package}.{s.name}" for f in files.file for s in f.service}


def test_every_service_goes_to_its_hosts_cluster(envoy):
    routes = {r["match"]["prefix"]: r for r in _routes(envoy)}
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    for shape in registry.SHAPES:
        route = routes[f"/{shape.service}/"]["route"]
        assert route["cluster"] == shape.host, shape.name
        assert shape.host in (registry.QUERY, registry.INGEST)
    for service in registry.SERVICES:
        if service.exposed_by is not None:  # reflection and health: only when configured
            assert service.route_prefix not in routes
            continue
        assert routes[service.route_prefix]["route"]["cluster"] == service.host, service.name
        assert routes[service.route_prefix]["route"]["timeout"] == f"{service.timeout_seconds}s"
    # the clusters are the processes' upstreams
    for name, address in (("ingest", ("ingest.internal", 7001)), ("query", ("query.internal", 7002)),
                          ("vendor_sync", ("sync.internal", 7003))):
        [endpoint] = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        socket = endpoint["endpoint"]["address"]["socket_address"]
        assert (socket["address"], socket["port_value"]) == address


NOT_FOUND = {"status": 404, "body": {"inline_string": "Not found"}}
UNLIMITED = {"envoy.filters.http.buffer": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute", "disabled": True}}


def _limited(limit: int) -> dict:
    return {"envoy.filters.http.buffer": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
        "buffer": {"max_request_bytes": limit + config.BUFFER_HEADROOM_BYTES}}}


@pytest.mark.parametrize(("reflection", "health"), [(False, False), (True, False), (False, True), (True, True)])
def test_nothing_is_routed_that_the_registry_does_not_name(reflection, health):
    settings = SETTINGS.model_copy(update={"gateway_expose_reflection": reflection, "gateway_expose_health": health})
    routes = _routes(yaml.safe_load(config.render(settings)))
    named = ({f"/{shape.service}/" for shape in registry.SHAPES}
             | {s.route_prefix for s in registry.SERVICES if s.exposed_by is None}
             | {path for path, _ in config.server_streams()})  # (each stream's own route: no timeout)
    if reflection:
        named.add("/grpc.reflection.")
    if health:
        named.add("/grpc.health.v1.Health/")
    forwarded = [r for r in routes if "route" in r]
    assert sorted(r["match"]["prefix"] for r in forwarded) == sorted(named)
    assert all(set(r) == {"match", "route", "typed_per_filter_config"} and set(r["match"]) == {"prefix"}
               for r in forwarded)
    assert len(forwarded) == len(named)  # each once
    # native gRPC is never buffered by the gateway (the services limit each message)
    assert all(r["typed_per_filter_config"] == UNLIMITED for r in forwarded)
    # the gRPC services come first; anything else: a 404 of Envoy's own, never a backend
    assert routes[:len(forwarded)] == forwarded
    assert all(r["direct_response"] == NOT_FOUND for r in routes[len(forwarded):])
    assert routes[-1]["match"] == {"prefix": "/"}
    # the only gRPC packages routed besides connlog's own services: health and reflection (the query
    # service's), each only when configured
    others = {r["match"]["prefix"]: r["route"]["cluster"] for r in forwarded
              if not r["match"]["prefix"].startswith("/connlog.api.v1.")}
    assert others == ({"/grpc.reflection.": registry.QUERY} if reflection else {}) | (
        {"/grpc.health.v1.Health/": registry.QUERY} if health else {})


def test_every_rest_prefix_has_its_body_limit(envoy):
    """Each shape's prefixes (and /v1's) have a route of their own with the
    shape's limit (plus the buffer filter's room: the Lua filter holds the
    exact limit), longest prefix first; the Lua filter knows the same limits."""
    routes = _routes(envoy)
    limited = [r for r in routes if "route" not in r and "headers" not in r["match"]]
    expected = [(prefix, shape.max_request_bytes) for prefix, shape in config.shape_prefixes()]
    expected.append(("/v1/", SETTINGS.max_message_bytes))
    expected.sort(key=lambda pair: -len(pair[0]))
    assert [(r["match"]["prefix"], r["typed_per_filter_config"]) for r in limited[:-1]] == [
        (prefix, _limited(limit)) for prefix, limit in expected]
    assert [len(r["match"]["prefix"]) for r in limited[:-1]] == sorted(
        (len(r["match"]["prefix"]) for r in limited[:-1]), reverse=True)
    # the catch-all holds a Meraki SDK's doubled path to any shape (the Lua filter checks the inner path's)
    assert limited[-1]["typed_per_filter_config"] == _limited(max(s.max_request_bytes for s in registry.SHAPES))
    # other gRPC paths: not found at once, never buffered
    [grpc_other] = [r for r in routes if "headers" in r["match"]]
    assert grpc_other["typed_per_filter_config"] == UNLIMITED and grpc_other["direct_response"] == NOT_FOUND
    lua = _filter(envoy, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    block = lua[lua.index("local LIMITS = {"):]
    block = block[:block.index("\n}")]
    assert [line.strip() for line in block.splitlines()[1:]] == [
        f"{{prefix = {json.dumps(prefix)}, limit = {limit}}}," for prefix, limit in expected]
    # each limit is small for what the shape takes
    assert registry.SHAPES_BY_NAME["meraki"].max_request_bytes <= 4096  # GETs only
    assert registry.SHAPES_BY_NAME["zequenze"].max_request_bytes <= 64 * 1024  # one log


@pytest.mark.parametrize("shape", registry.SHAPES, ids=[s.name for s in registry.SHAPES])
def test_a_too_large_body_is_answered_in_the_shapes_format(envoy, shape):
    mappers = _manager(envoy)["local_reply_config"]["mappers"]
    message = config.too_large_message(shape.max_request_bytes)
    expected = json.loads(json.dumps(shape.error_body(599, message)).replace("599", '"%RESPONSE_CODE%"'))
    for prefix in shape.path_prefixes:
        [first] = [m for m in mappers if _path_prefix(m["filter"]) == prefix and _status(m["filter"]) == 413][:1]
        assert first["body_format_override"]["json_format"] == expected
        # before the shape's other mappers
        index = mappers.index(first)
        assert all(_path_prefix(m["filter"]) != prefix for m in mappers[:index])


def _path_prefix(flt: dict) -> str | None:
    for f in flt.get("and_filter", {}).get("filters", [flt]):
        header = f.get("header_filter", {}).get("header", {})
        if header.get("name") == ":path" and "prefix" in header["string_match"]:
            return header["string_match"]["prefix"]
    return None


def _status(flt: dict) -> int | None:
    for f in flt.get("and_filter", {}).get("filters", [flt]):
        if "status_code_filter" in f:
            return f["status_code_filter"]["comparison"]["value"]["default_value"]
    return None


def test_the_admin_interface_is_an_owner_only_unix_socket(envoy, tmp_path):
    assert envoy["admin"] == {"address": {"pipe": {"path": str(config.admin_socket(SETTINGS)), "mode": 0o600}}}
    assert "socket_address" not in json.dumps(envoy["admin"])
    settings = Settings(data_dir=tmp_path)
    assert config.admin_socket(settings) == tmp_path.absolute() / "envoy-admin.sock"


def test_an_admin_socket_path_too_long_falls_back_to_a_private_folder(tmp_path):
    deep = tmp_path / ("d" * 100)
    settings = Settings(data_dir=deep)
    path = config.admin_socket(settings)
    assert len(os.fsencode(str(path))) <= config.SOCKET_PATH_MAX
    assert path.parent.parent == Path(tempfile.gettempdir()) and path.name == "envoy-admin.sock"
    assert config.admin_socket(settings) == path  # every process finds the same one
    assert config.admin_socket(Settings(data_dir=tmp_path / ("e" * 100))) != path
    made = config.prepare_admin_socket(settings)
    try:
        info = made.parent.lstat()
        assert made == path and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
        # a folder others may enter is refused
        os.chmod(made.parent, 0o755)
        with pytest.raises(PermissionError):
            config.prepare_admin_socket(settings)
    finally:
        made.parent.rmdir()
    # a configured path too long is refused with a clear message
    with pytest.raises(ValueError, match="longer than a Unix socket path"):
        config.admin_socket(Settings(gateway_admin_socket=deep / "admin.sock"))


def test_healthz_is_envoys_own_answer_from_active_health_checks(envoy):
    filters = _manager(envoy)["http_filters"]
    assert filters[0]["name"] == "envoy.filters.http.health_check"  # before anything reaches a service
    health = filters[0]["typed_config"]
    assert health["pass_through_mode"] is False
    assert health["headers"] == [{"name": ":path", "string_match": {"exact": config.HEALTH_PATH}}]
    assert health["cluster_min_healthy_percentages"] == {name: {"value": 1.0} for name in ("ingest", "query")}
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    for name in ("ingest", "query"):
        [check] = clusters[name]["health_checks"]
        assert check["grpc_health_check"] == {}  # the service's overall health: its database included
        every = f"{SETTINGS.gateway_health_check_seconds}s"
        assert check["interval"] == check["no_traffic_interval"] == check["no_traffic_healthy_interval"] == every


def _local_reply_format(envoy: dict, path: str) -> dict | None:
    """The JSON body format of Envoy's first local reply mapper that matches
    a non-gRPC request for ``path`` regardless of status."""

    def matches(flt: dict) -> bool | None:  # None: depends on something other than the path
        if "and_filter" in flt:
            results = [matches(f) for f in flt["and_filter"]["filters"]]
            return False if False in results else (True if all(results) else None)
        if "or_filter" in flt:
            results = [matches(f) for f in flt["or_filter"]["filters"]]
            return True if True in results else (False if all(r is False for r in results) else None)
        header = flt.get("header_filter", {}).get("header")
        if header and header["name"] == ":path":
            match = header["string_match"]
            return path.startswith(match["prefix"]) if "prefix" in match else path == match["exact"]
        if header and header["name"] == "content-type":
            return True  # a REST caller
        return None

    for mapper in _manager(envoy)["local_reply_config"]["mappers"]:
        if matches(mapper["filter"]) is True:
            return mapper["body_format_override"]["json_format"]
    return None


@pytest.mark.parametrize("shape", registry.SHAPES, ids=[s.name for s in registry.SHAPES])
def test_every_shapes_paths_get_its_error_format_and_success_status(envoy, shape):
    expected = json.loads(json.dumps(shape.error_body(599, "%LOCAL_REPLY_BODY%")).replace("599", '"%RESPONSE_CODE%"'))
    lua = _filter(envoy, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    for prefix in shape.path_prefixes:
        for path in (prefix, prefix + "anything/else?x=1"):
            assert _local_reply_format(envoy, path) == expected, path
        template = json.dumps(shape.error_body(599, "\x01"), separators=(",", ":"))
        template = template.replace("599", "@STATUS@").replace('"\\u0001"', "@MESSAGE@")
        assert (f"{{prefix = {json.dumps(prefix)}, template = {json.dumps(template)}, "
                f"success = {shape.success_status}}}") in lua


def test_paths_outside_every_shape_get_google_rpc_status(envoy):
    for path in ("/v1/networks/-/connectionEvents", "/", "/api/v2/x", "/V6/"):
        assert _local_reply_format(envoy, path) == {"code": 2, "message": "%LOCAL_REPLY_BODY%"}


def test_lua_shapes_are_longest_prefix_first():
    """A path belongs to the shape of its longest prefix (Zequenze's path lies
    under Meraki's /api/v1/), in the Lua filter and in Envoy's replies alike."""
    lua = config.lua_source(5)
    found = [line.split('"')[1] for line in lua[lua.index("local SHAPES = {"):].splitlines()[1:]
             if line.startswith("  {prefix = ")]
    assert sorted(found) == sorted(p for s in registry.SHAPES for p in s.path_prefixes)
    assert [len(p) for p in found] == sorted((len(p) for p in found), reverse=True)


def test_the_lua_filter_knows_the_headers_from_python():
    lua = config.lua_source(5)
    assert "-- rendered" not in lua
    line = next(line for line in lua.splitlines() if line.startswith("local HEADERS = "))
    for key, name in HEADERS.items():
        assert f"{key} = {json.dumps(name)}" in line
    # written once: the names appear nowhere else in the code
    code = "\n".join(line for line in lua.splitlines() if not line.lstrip().startswith("--"))
    for name in HEADERS.values():
        assert code.count(name) == 1, name
