"""The edge: every request gets a well-formed answer in its own shape's
format, whatever its bytes; transient database failures are reported as such
and health tells the truth; unexpected errors carry a correlation id, never
exception text.

Unit cases (no network) first, then the same promises through the real Envoy
and a real PostgreSQL (cut and restored through a loopback proxy)."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import query_service_pb2 as query_pb
from connlog.api.v1 import query_service_pb2_grpc as query_grpc
from connlog.core.edge import InvalidArgument, describe_undecodable, is_transient
from connlog.devtools.ports import free_port
from connlog.gateway import config as gateway_config
from connlog.shapes.registry import SHAPES
from connlog.shapes.rest import RestError, parse_query
from tests.support.db_proxy import DatabaseProxy
from tests.support.factories import simple_event as event
from tests.support.gateway import envoy_in_front
from tests.support.waiting import until

# --- unit: request decoding, query parsing, error classes -------------------

_EVENT = pb.ConnectionEvent(network_id="N_1", client=pb.Client(client_id="c")).SerializeToString()


def _with_bad_utf8(data: bytes, text: bytes) -> bytes:
    return data.replace(text, b"\xff" * len(text))


@pytest.mark.parametrize(
    ("descriptor", "data", "expected"),
    [
        (pb.ConnectionEvent.DESCRIPTOR, _with_bad_utf8(_EVENT, b"N_1"), "network_id: is not valid UTF-8 text"),
        (pb.ConnectionEvent.DESCRIPTOR, _with_bad_utf8(_EVENT, b"c"), "client.client_id: is not valid UTF-8 text"),
        (ingest_pb.IngestConnectionEventsRequest.DESCRIPTOR,
         ingest_pb.IngestConnectionEventsRequest(events=[pb.ConnectionEvent(network_id="N_9")])
         .SerializeToString().replace(b"N_9", b"\xc3\x28\x00"),
         "events.network_id: is not valid UTF-8 text"),
        (query_pb.ListConnectionEventsRequest.DESCRIPTOR, b"\x0a\x05abc",  # length past the end
         "request: is not a valid connlog.api.v1.ListConnectionEventsRequest message"),
        (query_pb.ListConnectionEventsRequest.DESCRIPTOR, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
         "request: is not a valid connlog.api.v1.ListConnectionEventsRequest message"),
        (query_pb.ListConnectionEventsRequest.DESCRIPTOR, b"\x0f",  # wire type 7
         "request: is not a valid connlog.api.v1.ListConnectionEventsRequest message"),
    ],
)
def test_undecodable_requests_name_the_field(descriptor, data, expected):
    assert describe_undecodable(descriptor, data) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&b=x%20y&c=", [("a", "1"), ("b", "x y"), ("c", "")]),
        ("types%5B%5D=assoc&types[]=auth", [("types", "assoc"), ("types", "auth")]),
        ("q=caf%C3%A9+au+lait", [("q", "café au lait")]),
        ("", []),
        ("&&a=1&", [("a", "1")]),
    ],
)
def test_query_parameters_are_decoded(query, expected):
    assert parse_query(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("deviceSerial=%ff", "'deviceSerial' is not valid UTF-8 text"),
        ("t0=a%00b", "'t0' contains a NUL character"),
        ("x%ff=1", "query parameter 'x%ff' is not valid UTF-8 text"),
        ("q=%ed%a0%80", "'q' is not valid UTF-8 text"),  # a UTF-16 surrogate
    ],
)
def test_undecodable_query_parameters_are_400_naming_them(query, message):
    with pytest.raises(RestError) as caught:
        parse_query(query)
    assert caught.value.status == 400 and caught.value.message == message


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (__import__("asyncpg").exceptions.CannotConnectNowError("starting"), True),
        (__import__("asyncpg").exceptions.AdminShutdownError("bye"), True),
        (__import__("asyncpg").exceptions.ConnectionDoesNotExistError("gone"), True),
        (__import__("asyncpg").exceptions.TooManyConnectionsError("full"), True),
        (__import__("asyncpg").exceptions.InternalClientError("state"), True),
        (__import__("asyncpg").exceptions.UniqueViolationError("dup"), False),
        (__import__("asyncpg").exceptions.DataError("range"), False),
        (ValueError("x"), False),
        (KeyError("x"), False),
    ],
)
def test_transient_errors(exc, transient):
    assert is_transient(exc) is transient


def test_envoy_replies_use_every_shape_format():
    """Envoy's own replies (local_reply_config) and the Lua filter's error
    bodies are rendered from the one shapes table, with the Retry-After
    setting."""
    from connlog.core.settings import Settings

    mappers = gateway_config.local_reply_config(Settings())["mappers"]
    lua = gateway_config.lua_source(7)
    for shape in SHAPES:
        body = shape.error_body(599, "%LOCAL_REPLY_BODY%")
        assert any(json.dumps(body).replace("599", '"%RESPONSE_CODE%"') ==
                   json.dumps(m.get("body_format_override", {}).get("json_format")) for m in mappers)
        for prefix in shape.path_prefixes:
            assert json.dumps(prefix) in lua
    assert 'local RETRY_AFTER = "7"' in lua and "-- rendered" not in lua
    assert json.dumps(gateway_config.UNAVAILABLE_MESSAGE) in lua


def test_invalid_argument_names_field():
    err = InvalidArgument("events.occur_time", "out of range")
    assert str(err) == "events.occur_time: out of range"


# --- through the real gateway: odd input gets a 4xx in its own format -------

MERAKI = "/api/v1/networks/N_1/wireless/clients/k1/connectivityEvents"
MOJO = "/V5/devices/clients/connectionlogs"
ZEQUENZE = "/api/v1/device_app_connection_log/"
V1 = "/v1/networks/-/connectionEvents"


def _meraki(body):
    assert set(body) == {"errors"} and all(isinstance(e, str) and e for e in body["errors"])
    return body["errors"][0]


def _mojo(body):
    assert set(body) == {"error", "status"} and isinstance(body["status"], int)
    return body["error"]


def _zequenze(body):
    assert body and all(isinstance(k, str) for k in body)
    value = next(iter(body.values()))
    return value if isinstance(value, str) else value[0]


def _status(body):
    assert set(body) >= {"code", "message"} and isinstance(body["code"], int) and body["code"] != 0
    return body["message"]


CASES = [
    # (label, method, path, role, body, expected status, format, text the message must hold)
    ("meraki path not UTF-8", "GET", "/api/v1/networks/N_%ff/wireless/clients/k1/connectivityEvents", "viewer",
     None, 400, _meraki, "path"),
    ("meraki path NUL", "GET", "/api/v1/networks/N_%00/wireless/clients/k1/connectivityEvents", "viewer",
     None, 400, _meraki, "path"),
    ("meraki query not UTF-8", "GET", MERAKI + "?deviceSerial=%ff", "viewer", None, 400, _meraki, "deviceSerial"),
    ("meraki query NUL", "GET", MERAKI + "?deviceSerial=a%00b", "viewer", None, 400, _meraki, "deviceSerial"),
    ("meraki t0 year 9999", "GET", MERAKI + "?t0=9999-12-31T23:59:59Z", "viewer", None, 400, _meraki, "t0"),
    ("meraki t1 year 1", "GET", MERAKI + "?t1=0001-01-01T00:00:00%2B14:00", "viewer", None, 400, _meraki, "t1"),
    ("meraki t0 in milliseconds", "GET", MERAKI + "?t0=1700000000000", "viewer", None, 400, _meraki, "t0"),
    ("meraki perPage 20 digits", "GET", MERAKI + "?perPage=99999999999999999999", "viewer", None, 400, _meraki,
     "perPage"),
    ("meraki crafted token", "GET", MERAKI + "?startingAfter=WzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAsMV0", "viewer", None,
     400, _meraki, "startingAfter"),
    ("meraki token id beyond int64", "GET", MERAKI + "?startingAfter=WzAsMTAwMDAwMDAwMDAwMDAwMDAwMDAwMDBd",
     "viewer", None, 400, _meraki, "startingAfter"),
    ("meraki unknown path", "GET", "/api/v1/nowhere", "viewer", None, 404, _meraki, "nowhere"),
    ("mojo fromtime huge", "GET", MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2&fromtime=99999999999999", "viewer",
     None, 400, _mojo, "fromtime"),
    ("mojo totime negative", "GET", MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2&totime=-7", "viewer",
     None, 400, _mojo, "totime"),
    ("mojo failuretype beyond int32", "GET",
     MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2&failuretype=99999999999999999999", "viewer", None, 400, _mojo,
     "failuretype"),
    ("mojo limit 20 digits", "GET", MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2&limit=99999999999999999999",
     "viewer", None, 400, _mojo, "limit"),
    ("mojo mac not UTF-8", "GET", MOJO + "?clientmacaddress=%ff", "viewer", None, 400, _mojo, "clientmacaddress"),
    ("mojo unknown path", "GET", "/V5/nowhere", "viewer", None, 404, _mojo, "nowhere"),
    ("zequenze nested JSON", "POST", ZEQUENZE, "device", b"[" * 16_000, 400, _zequenze, "JSON"),
    ("zequenze truncated JSON", "POST", ZEQUENZE, "device", b'{"network_name": "x', 400, _zequenze, "JSON"),
    ("zequenze body not UTF-8", "POST", ZEQUENZE, "device", b'{"network_name": "x\xff", "network_type": "wi"}',
     400, _zequenze, "UTF-8"),
    ("zequenze NaN", "POST", ZEQUENZE, "device", b'{"network_name": "x", "network_type": "wi", "frequency": NaN}',
     400, _zequenze, "JSON"),
    ("zequenze bytes beyond int64", "POST", ZEQUENZE, "device",
     b'{"network_name": "x", "network_type": "wi", "inbytes": 9223372036854775808}', 422, _zequenze, "less than"),
    ("zequenze bytes beyond uint64", "POST", ZEQUENZE, "device",
     b'{"network_name": "x", "network_type": "wi", "inbytes": 99999999999999999999}', 400, _zequenze, "integer"),
    ("zequenze lone surrogate", "POST", ZEQUENZE, "device",
     b'{"network_name": "a\\ud800", "network_type": "wi"}', 400, _zequenze, "JSON"),
    ("zequenze lone surrogate key", "POST", ZEQUENZE, "device",
     b'{"\\ud800": 1, "network_type": "wi"}', 400, _zequenze, "JSON"),
    ("zequenze huge frequency", "POST", ZEQUENZE, "device",
     b'{"network_name": "x", "network_type": "wi", "frequency": 1' + b"0" * 400 + b"}", 400, _zequenze, "number"),
    ("zequenze body too large", "POST", ZEQUENZE, "device", b"a" * 3_000_000, 413, _zequenze, "limit"),
    ("zequenze NUL in a string", "POST", ZEQUENZE, "device",
     b'{"network_name": "x\\u0000y", "network_type": "wi"}', 400, _zequenze, "Null"),
    ("v1 page token not UTF-8", "GET", V1 + "?pageToken=%ff%fe", "viewer", None, 400, _status, "pageToken"),
    ("v1 crafted page token", "GET", V1 + "?pageToken=WzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAsMV0", "viewer", None, 400,
     _status, "page_token"),
    ("v1 path not UTF-8", "GET", "/v1/networks/%ff/connectionEvents", "viewer", None, 400, _status, "path"),
    ("v1 bad time", "GET", V1 + "?startTime=9999-99-99", "viewer", None, 400, _status, "start_time"),
    ("v1 truncated body", "POST", "/v1/connectionEvents:ingest", "operator", b'{"events": [', 400, _status, ""),
    ("v1 deeply nested body", "POST", "/v1/connectionEvents:ingest", "operator",
     b'{"events": [{"eventData": {"a": ' + b"[" * 20000, 400, _status, ""),
    ("unknown path", "GET", "/nowhere", "viewer", None, 404, _status, "nowhere"),
]


@pytest.mark.parametrize(("label", "method", "path", "role", "body", "status", "shape", "names"), CASES,
                         ids=[c[0] for c in CASES])
async def test_odd_input_gets_a_4xx_in_its_shape(gateway, make_tenant, label, method, path, role, body, status,
                                                   shape, names):
    tenant = await make_tenant()
    headers = {"authorization": f"Bearer {tenant.keys[role]}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = shape(response.json())
    assert names in message
    for leak in ("Traceback", "<class", "Unexpected <", "Error parsing message", "asyncpg", "OverflowError"):
        assert leak not in response.text


async def test_oversized_headers_are_431_not_429(gateway):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(MERAKI, headers={"x-big": "a" * 70_000})
    assert response.status_code == 431
    assert _status(response.json())


async def test_grpc_content_type_on_a_rest_path_is_a_grpc_answer(gateway):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(ZEQUENZE, headers={"content-type": "application/grpc"}, content=b"\0\0\0\0\0")
    assert response.headers.get("grpc-status") == str(grpc.StatusCode.UNIMPLEMENTED.value[0])
    assert "no gRPC method" in response.headers.get("grpc-message", "")


async def test_undecodable_grpc_messages_are_invalid_argument(suite, tenant):
    async with grpc.aio.insecure_channel(suite.query_address) as channel:
        call = channel.unary_unary("/connlog.api.v1.QueryService/ListConnectionEvents",
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
        bad = query_pb.ListConnectionEventsRequest(parent="networks/-").SerializeToString().replace(b"-", b"\xff")
        for data, expected in ((bad, "parent: is not valid UTF-8 text"), (b"\x0a\x09ab", "request: is not a valid")):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(data, metadata=tenant.md("viewer"))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details().startswith(expected)
    async with grpc.aio.insecure_channel(suite.ingest_address) as channel:
        stream = channel.stream_unary("/connlog.api.v1.IngestService/StreamIngestConnectionEvents",
                                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
        good = ingest_pb.StreamIngestConnectionEventsRequest(events=[event()]).SerializeToString()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream(iter([good, b"\x0a\x09ab"]), metadata=tenant.md())
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- an unexpected error: INTERNAL / 500 with a correlation id only ---------

async def test_unexpected_errors_carry_a_correlation_id_not_the_exception(suite, gateway, make_tenant, monkeypatch):
    from connlog.store.accounts import AccountStore

    tenant = await make_tenant()

    async def broken(*args, **kwargs):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(AccountStore, "network_ref", broken)
    async with grpc.aio.insecure_channel(suite.query_address) as channel:
        stub = query_grpc.QueryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListConnectionEvents(query_pb.ListConnectionEventsRequest(parent="networks/N_1"),
                                            metadata=tenant.md("viewer"))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "correlation id" in caught.value.details() and "secret" not in caught.value.details()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(MERAKI, headers={"x-cisco-meraki-api-key": tenant.keys["viewer"]})
    assert response.status_code == 500
    message = _meraki(response.json())
    assert "correlation id" in message and "secret" not in response.text
    assert response.headers["x-connlog-correlation-id"] in message


# --- upstream gone: Envoy answers 503 + Retry-After in each shape -----------

@pytest.fixture(scope="module")
async def gateway_without_backends(suite, tmp_path_factory):
    dead = f"127.0.0.1:{free_port()}"
    settings = suite.settings.model_copy(update={"retry_after_seconds": 3})
    async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-dead"),
                              ingest=dead, query=dead, vendor_sync=dead) as running:
        yield running.url


@pytest.mark.parametrize(("method", "path", "shape"), [
    ("GET", MERAKI, _meraki), ("GET", MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2", _mojo),
    ("POST", ZEQUENZE, _zequenze), ("GET", V1, _status),
])
async def test_unreachable_service_is_503_with_retry_after(gateway_without_backends, method, path, shape):
    async with httpx.AsyncClient(base_url=gateway_without_backends) as http:
        response = await http.request(method, path, content=b"{}" if method == "POST" else None,
                                      headers={"content-type": "application/json", "authorization": "Bearer x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert shape(response.json()) == gateway_config.UNAVAILABLE_MESSAGE


# --- the database goes away and comes back ----------------------------------

async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return reply.status


async def test_database_outage_is_unavailable_and_health_follows(pg_server, database_url, suite, make_tenant,
                                                                 tmp_path_factory):
    from connlog.api.v1 import ingest_service_pb2_grpc
    from connlog.core.server import LIVENESS, start_service
    from connlog.gateway import process
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query

    tenant = await make_tenant()
    proxy = DatabaseProxy(database_url)
    await proxy.start()
    settings = suite.settings.model_copy(update={
        "database_url": proxy.url, "database_check_seconds": 0.2, "ingest_workers": 0, "retry_after_seconds": 4,
        "migrate_on_start": False,
    })
    ingest = await start_service("ingest", settings, register_ingest, port=0)
    query = await start_service("query", settings, register_query, port=0)
    port = free_port()
    folder = tmp_path_factory.mktemp("envoy-outage")
    gw_settings = settings.model_copy(update={
        "gateway_port": port, "data_dir": folder, "gateway_admin_socket": None,
        "gateway_ingest_upstream": f"127.0.0.1:{ingest.port}", "gateway_query_upstream": f"127.0.0.1:{query.port}",
    })
    envoy = process.start(gw_settings, folder / "envoy.yaml", folder / "envoy.log")
    ingest_address, query_address = f"127.0.0.1:{ingest.port}", f"127.0.0.1:{query.port}"
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        await process.wait_ready(gateway_config.admin_socket(gw_settings), envoy)
        async with grpc.aio.insecure_channel(ingest_address) as ic, grpc.aio.insecure_channel(query_address) as qc:
            ingest_stub = ingest_service_pb2_grpc.IngestServiceStub(ic)
            query_stub = query_grpc.QueryServiceStub(qc)
            before = await ingest_stub.IngestConnectionEvents(
                ingest_pb.IngestConnectionEventsRequest(events=[event("N_out")]), metadata=tenant.md())
            assert before.accepted_count == 1
            assert await _health(ingest_address) == serving

            await proxy.cut()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await query_stub.ListConnectionEvents(query_pb.ListConnectionEventsRequest(parent="networks/-"),
                                                      metadata=tenant.md("viewer"))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Traceback" not in caught.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await ingest_stub.IngestConnectionEvents(
                    ingest_pb.IngestConnectionEventsRequest(events=[event("N_out")]),
                    metadata=tenant.md())
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            await until(lambda: _is(_health(ingest_address), not_serving), "ingest NOT_SERVING")
            await until(lambda: _is(_health(query_address), not_serving), "query NOT_SERVING")
            async with grpc.aio.insecure_channel(query_address) as channel:  # liveness is not the database's
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=LIVENESS))
                assert reply.status == serving
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                meraki = await http.get(MERAKI, headers={"x-cisco-meraki-api-key": tenant.keys["viewer"]})
                mojo = await http.get(MOJO + "?clientmacaddress=F0:D7:AA:DF:59:A2",
                                      headers={"authorization": f"Bearer {tenant.keys['viewer']}"})
                v1 = await http.get(V1, headers={"authorization": f"Bearer {tenant.keys['viewer']}"})
            for response, shape in ((meraki, _meraki), (mojo, _mojo), (v1, _status)):
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "4"
                assert "unavailable" in shape(response.json())

            await proxy.start()
            await until(lambda: _is(_health(ingest_address), serving), "ingest SERVING again")
            await until(lambda: _is(_health(query_address), serving), "query SERVING again")
            after = await ingest_stub.IngestConnectionEvents(
                ingest_pb.IngestConnectionEventsRequest(events=[event("N_out", subtype="after")]),
                metadata=tenant.md())
            assert after.accepted_count == 1
            listed = await query_stub.ListConnectionEvents(
                query_pb.ListConnectionEventsRequest(parent="networks/N_out"), metadata=tenant.md("viewer"))
            assert len(listed.connection_events) == 2
    finally:
        process.stop(envoy)
        await ingest.stop(0)
        await query.stop(0)
        await proxy.stop()


async def _is(awaitable, expected) -> bool:
    try:
        return await awaitable == expected
    except grpc.aio.AioRpcError:
        return False


def test_descriptor_names_every_shape_service():
    """Each shape in the edge table is a service of the gateway's descriptor."""
    from connlog.gateway.config import asset

    files = descriptor_pb2.FileDescriptorSet.FromString(asset("connlog.pb").read_bytes())
    services = {f"{f.package}.{s.name}" for f in files.file for s in f.service}
    assert {shape.service for shape in SHAPES} <= services
