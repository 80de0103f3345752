"""The rendered Envoy config against the shapes registry (no Envoy process):
every registered service is transcoded and routed to the cluster of the
process hosting it, every shape's paths get its error format, and nothing is
routed or transcoded that the registry does not name."""

from __future__ import annotations

import json

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
    [host] = _manager(envoy)["route_config"]["virtual_hosts"]
    return host["routes"]


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
        assert routes[service.route_prefix]["route"]["cluster"] == service.host, service.name
        assert routes[service.route_prefix]["route"]["timeout"] == f"{service.timeout_seconds}s"
    # the clusters are the processes' upstreams
    for name, address in (("ingest", ("ingest.internal", 7001)), ("query", ("query.internal", 7002)),
                          ("vendor_sync", ("sync.internal", 7003))):
        [endpoint] = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        socket = endpoint["endpoint"]["address"]["socket_address"]
        assert (socket["address"], socket["port_value"]) == address


def test_nothing_is_routed_that_the_registry_does_not_name(envoy):
    routes = _routes(envoy)
    named = {f"/{shape.service}/" for shape in registry.SHAPES} | {s.route_prefix for s in registry.SERVICES}
    *forwarded, last = routes
    assert sorted(r["match"]["prefix"] for r in forwarded) == sorted(named)
    assert all(set(r) == {"match", "route"} and set(r["match"]) == {"prefix"} for r in forwarded)
    assert len(forwarded) == len(named)  # each once
    # anything else: a 404 of Envoy's own, never a backend
    assert last == {"match": {"prefix": "/"},
                    "direct_response": {"status": 404, "body": {"inline_string": "Not found"}}}
    # the only gRPC package routed besides connlog's own services: health and reflection, to the query service
    assert {p for p in named if not p.startswith("/connlog.api.v1.")} == {"/grpc."}


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
            return path.startswith(header["string_match"]["prefix"])
        if header and header["name"] == "content-type":
            return True  # a REST caller
        return None

    for mapper in _manager(envoy)["local_reply_config"]["mappers"]:
        if matches(mapper["filter"]) is True:
            return mapper["body_format_override"]["json_format"]
    return None


@pytest.mark.parametrize("shape", registry.SHAPES, ids=[s.name for s in registry.SHAPES])
def test_every_shapes_paths_get_its_error_format(envoy, shape):
    expected = json.loads(json.dumps(shape.error_body(599, "%LOCAL_REPLY_BODY%")).replace("599", '"%RESPONSE_CODE%"'))
    lua = _filter(envoy, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    for prefix in shape.path_prefixes:
        for path in (prefix, prefix + "anything/else?x=1"):
            assert _local_reply_format(envoy, path) == expected, path
        template = json.dumps(shape.error_body(599, "\x01"), separators=(",", ":"))
        template = template.replace("599", "@STATUS@").replace('"\\u0001"', "@MESSAGE@")
        assert f"{{prefix = {json.dumps(prefix)}, template = {json.dumps(template)}}}" in lua


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
