"""The gateway's exposure through the real Envoy: its admin interface only on
an owner-only Unix socket, gRPC reflection and health on the public port only
when configured, ``/healthz`` telling the truth about the services, absolute
URLs never from client-sent headers, request body limits per shape (413 in
the shape's format) and oversized headers answered 431."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
from collections.abc import AsyncIterator, Awaitable

import grpc
import httpx
import psutil
import pytest
import yaml
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import query_service_pb2_grpc
from connlog.core.server import start_service
from connlog.core.settings import Settings
from connlog.devtools.ports import free_port
from connlog.gateway import process
from connlog.gateway.config import RPC_CODE, too_large_message
from connlog.shapes.registry import SHAPES_BY_NAME
from tests.support.factories import now, simple_event
from tests.support.gateway import Gateway, envoy_in_front
from tests.support.gateway_calls import MERAKI_PATH, ZEQUENZE_SAMPLES, ingest, key_headers, meraki_event, meraki_get
from tests.support.waiting import until

MERAKI, MOJO, ZEQUENZE = SHAPES_BY_NAME["meraki"], SHAPES_BY_NAME["mojo"], SHAPES_BY_NAME["zequenze"]
ZEQUENZE_URL = "/api/v1/device_app_connection_log/"
MOJO_LOGS = "/V5/devices/clients/connectionlogs?clientmacaddress=F0:D7:AA:DF:59:A2"


@contextlib.asynccontextmanager
async def _query_behind_envoy(suite, tmp_path_factory, **changes: object) -> AsyncIterator[Gateway]:
    """A query service of its own with ``changes`` to the settings (the
    gateway gets them too), behind an Envoy of its own."""
    from connlog.query.servicer import register as register_query

    settings = suite.settings.model_copy(update=changes)
    query = await start_service("query", settings, register_query, port=0)
    try:
        async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-own"), ingest=suite.ingest_address,
                                  query=f"127.0.0.1:{query.port}") as gateway:
            yield gateway
    finally:
        await query.stop(1)


# --- the admin interface ------------------------------------------------------


async def test_admin_is_an_owner_only_unix_socket_and_nowhere_on_tcp(gateway):
    info = os.stat(gateway.admin_socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    ready = await process.admin(gateway.admin_socket, "/ready")
    assert (ready.status_code, ready.text.strip()) == (200, "LIVE")
    # the config has no admin address but the socket
    admin = yaml.safe_load(gateway.config.read_text())["admin"]
    assert admin == {"address": {"pipe": {"path": str(gateway.admin_socket), "mode": 0o600}}}
    # Envoy listens on TCP on the gateway port alone
    listening = {c.laddr.port for c in psutil.Process(gateway.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening == {gateway.port}
    # and the admin endpoints are not the public port's
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for method, path in (("GET", "/ready"), ("POST", "/quitquitquit"), ("POST", "/healthcheck/fail"),
                             ("GET", "/config_dump"), ("GET", "/stats"), ("POST", "/logging?level=trace")):
            response = await http.request(method, path)
            assert response.status_code == 404, (path, response.text)
    after = await process.admin(gateway.admin_socket, "/ready")
    assert (after.status_code, after.text.strip()) == (200, "LIVE")


# --- gRPC reflection and health on the public port ---------------------------


async def _health(address: str) -> grpc.StatusCode | int:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        except grpc.aio.AioRpcError as e:
            return e.code()
        return reply.status


async def _reflection(address: str, *, ask: bool) -> grpc.StatusCode | set[str]:
    """The services reflection lists, or the error code. ``ask=False``
    sends no request message at all (the gateway answers an unrouted stream
    at once: a message the client would still be sending would race that
    answer inside the gRPC client)."""
    async with grpc.aio.insecure_channel(address) as channel:

        async def requests():
            if ask:
                yield reflection_pb2.ServerReflectionRequest(list_services="")

        try:
            async for reply in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(requests()):
                return {s.name for s in reply.list_services_response.service}
        except grpc.aio.AioRpcError as e:
            return e.code()
    return set()


@pytest.mark.parametrize(("reflection", "health"), [(False, False), (True, False), (False, True), (True, True)])
async def test_reflection_and_health_only_when_configured(suite, tmp_path_factory, reflection, health):
    settings = suite.settings.model_copy(update={"gateway_expose_reflection": reflection,
                                                "gateway_expose_health": health})
    async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-expose"), ingest=suite.ingest_address,
                              query=suite.query_address) as gateway:
        address = gateway.url.removeprefix("http://")
        found_health, found_reflection = await _health(address), await _reflection(address, ask=reflection)
        assert found_health == (health_pb2.HealthCheckResponse.SERVING if health else grpc.StatusCode.UNIMPLEMENTED)
        if reflection:
            assert isinstance(found_reflection, set) and "connlog.api.v1.QueryService" in found_reflection
        else:
            assert found_reflection == grpc.StatusCode.UNIMPLEMENTED
        # the API itself is there either way (an unauthenticated call reaches the service)
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await query_service_pb2_grpc.QueryServiceStub(channel).ListConnectionEvents(
                    qpb.ListConnectionEventsRequest(parent="networks/-"))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # each service still answers both on its own port
    assert await _health(suite.query_address) == health_pb2.HealthCheckResponse.SERVING
    assert isinstance(await _reflection(suite.query_address, ask=True), set)


# --- /healthz -----------------------------------------------------------------


async def _healthz(url: str) -> tuple[int, object]:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/healthz")
    return response.status_code, response.json()


async def test_healthz_follows_the_services(suite, tmp_path_factory):
    """200 while Envoy's health checks of ingest and query pass, 503 as soon
    as one fails; answered by Envoy (it never reaches a service)."""
    from connlog.query.servicer import register as register_query

    settings = suite.settings.model_copy(update={"gateway_health_check_seconds": 0.2})
    query = await start_service("query", settings, register_query, port=0)
    stopped = False
    try:
        async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-healthz"), ingest=suite.ingest_address,
                                  query=f"127.0.0.1:{query.port}") as gateway:
            await until(lambda: _is(_healthz(gateway.url), (200, {"status": "SERVING"})), "/healthz 200")
            await query.stop(1)
            stopped = True
            await until(lambda: _is(_healthz(gateway.url), (503, {"status": "NOT_SERVING"})), "/healthz 503")
    finally:
        if not stopped:
            await query.stop(1)


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_healthz_is_503_while_the_services_are_unreachable(suite, tmp_path_factory):
    dead = f"127.0.0.1:{free_port()}"
    async with envoy_in_front(suite.settings, tmp_path_factory.mktemp("envoy-dead"), ingest=dead,
                              query=suite.query_address) as gateway:
        assert await _healthz(gateway.url) == (503, {"status": "NOT_SERVING"})


# --- absolute URLs --------------------------------------------------------------


async def _seed(clients, tenant, network: str) -> None:
    await ingest(clients, tenant, [meraki_event(network, "k-link", now() - dt.timedelta(minutes=5 + i), i)
                                   for i in range(5)])


async def _meraki_urls(gateway: Gateway, tenant, headers: dict[str, str], network: str) -> list[str]:
    """The Link URLs of a Meraki page (first, next, last) and the
    organisation's url field."""
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await meraki_get(http, MERAKI_PATH.format(net=network, client="k-link") + "?perPage=3",
                                headers={**key_headers(tenant), **headers})
        orgs = await meraki_get(http, "/api/v1/organizations", headers={**key_headers(tenant), **headers})
    assert page.status_code == 200 and orgs.status_code == 200, (page.text, orgs.text)
    links = [part.split(">")[0].lstrip(" <") for part in page.headers["link"].split(",")]
    assert len(links) >= 3
    return [*links, orgs.json()[0]["url"]]


SPOOFED = {"host": "evil.example", "x-forwarded-proto": "javascript", "x-forwarded-host": "evil.example",
           "x-connlog-origin": "http://evil.example", "x-connlog-peer": "127.0.0.1:1"}


async def test_links_ignore_client_sent_host_and_forwarded_headers_by_default(gateway, clients, tenant):
    network = "N_links_default"
    await _seed(clients, tenant, network)
    for headers in ({}, SPOOFED, {"x-forwarded-proto": "https", "x-forwarded-host": "evil.example"}):
        urls = await _meraki_urls(gateway, tenant, headers, network)
        for url in urls:
            assert url.startswith(gateway.url + "/"), (headers, url)
        assert urls[0].startswith(f"{gateway.url}/api/v1/networks/{network}/")


async def test_client_sent_internal_headers_are_removed_for_grpc_callers_too(gateway, suite, tenant):
    """A native gRPC caller through the gateway cannot hand the backend an
    origin or a peer of its choosing: the gateway removes every x-connlog-*
    header a client sent."""
    from connlog.api.v1 import meraki_service_pb2, meraki_service_pb2_grpc

    metadata = (("authorization", f"Bearer {tenant.keys['viewer']}"), ("x-connlog-origin", "http://evil.example"),
                ("x-connlog-peer", "127.0.0.1:1"), ("x-forwarded-host", "evil.example"))
    async with grpc.aio.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        reply = await meraki_service_pb2_grpc.MerakiServiceStub(channel).GetOrganizations(
            meraki_service_pb2.GetOrganizationsRequest(), metadata=metadata)
    [organization] = json.loads(reply.data)
    assert "evil" not in organization["url"]
    # no gateway origin reached the backend: its own setting of the gateway's address
    assert organization["url"].startswith(f"http://{suite.settings.host}:{suite.settings.gateway_port}/")


@pytest.mark.parametrize(("headers", "origin"), [
    ({"x-forwarded-proto": "https", "x-forwarded-host": "connlog.example:8443"}, "https://connlog.example:8443"),
    ({"x-forwarded-proto": "HTTPS"}, "https://{gateway}"),
    ({"x-forwarded-host": "[2001:db8::1]:9000"}, "http://[2001:db8::1]:9000"),
    # malformed forwarded values are ignored, one by one
    ({"x-forwarded-proto": "javascript", "x-forwarded-host": "connlog.example"}, "http://connlog.example"),
    ({"x-forwarded-proto": "https", "x-forwarded-host": "evil.example/path"}, "https://{gateway}"),
    ({"x-forwarded-host": "user@evil.example"}, "http://{gateway}"),
    ({"x-forwarded-host": "a.example, b.example"}, "http://{gateway}"),
    ({"x-forwarded-host": "evil.example:99999"}, "http://{gateway}"),
    ({"host": "evil.example"}, "http://{gateway}"),
])
async def test_forwarded_headers_count_only_from_a_trusted_proxy(suite, clients, tenant, tmp_path_factory, headers,
                                                                 origin):
    await _seed(clients, tenant, "N_links_trusted")
    async with _query_behind_envoy(suite, tmp_path_factory, trusted_proxies=("127.0.0.1/32",)) as gateway:
        expected = origin.format(gateway=gateway.url.removeprefix("http://"))
        for url in await _meraki_urls(gateway, tenant, headers, "N_links_trusted"):
            assert url.startswith(expected + "/"), (headers, url)


async def test_public_base_url_is_the_origin(suite, clients, tenant, tmp_path_factory):
    base = "https://connlog.example/base"
    await _seed(clients, tenant, "N_links_base")
    async with _query_behind_envoy(suite, tmp_path_factory, public_base_url=base,
                                   trusted_proxies=("127.0.0.1/32",)) as gateway:
        for headers in ({}, SPOOFED, {"x-forwarded-proto": "http", "x-forwarded-host": "other.example"}):
            urls = await _meraki_urls(gateway, tenant, headers, "N_links_base")
            assert urls[0].startswith(f"{base}/api/v1/networks/N_links_base/"), urls[0]
            assert all(url.startswith(base + "/") for url in urls), urls
        # Meraki's SDK prepends its base URL to a Link URL: the gateway still finds the page
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            followed = await meraki_get(http, "/api/v1" + urls[1], headers=key_headers(tenant))
        assert followed.status_code == 200 and len(followed.json()) == 2, followed.text


@pytest.mark.parametrize("url", ["ftp://connlog.example", "javascript:alert(1)", "https://user@connlog.example",
                                 "https://connlog.example/?q=1", "https://", "connlog.example"])
def test_a_bad_public_base_url_is_refused_at_start(url):
    with pytest.raises(ValueError, match="public_base_url"):
        Settings(public_base_url=url)


def test_bad_trusted_proxies_are_refused_at_start():
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.0/8,proxy.example")
    assert Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1").trusted_proxies == ("10.0.0.0/8", "127.0.0.1")


# --- request body limits --------------------------------------------------------


def _padded(body: bytes, size: int) -> bytes:
    """``body`` (JSON) padded with trailing whitespace to ``size`` bytes."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def _chunks(size: int) -> AsyncIterator[bytes]:
    """A body of ``size`` bytes sent without a Content-Length (chunked)."""
    while size > 0:
        yield b" " * min(size, 1000)
        size -= 1000


async def test_zequenze_body_limit(gateway, tenant):
    limit = ZEQUENZE.max_request_bytes
    device = {"authorization": f"Bearer {tenant.keys['device']}", "content-type": "application/json"}
    log = json.dumps(ZEQUENZE_SAMPLES["wifi"]).encode()
    expected = ZEQUENZE.error_body(413, too_large_message(limit))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        at_limit = await http.post(ZEQUENZE_URL, content=_padded(log, limit), headers=device)
        assert at_limit.status_code == 201, at_limit.text
        over = await http.post(ZEQUENZE_URL, content=_padded(log, limit + 1), headers=device)
        assert (over.status_code, over.json()) == (413, expected)
        streamed = await http.post(ZEQUENZE_URL, content=_chunks(limit + 1), headers=device)
        assert (streamed.status_code, streamed.json()) == (413, expected)
        # Meraki SDK's doubled path (/api/v1http://host/...): the inner path's limit
        doubled = "/api/v1http://gateway.example" + ZEQUENZE_URL
        assert (await http.post(doubled, content=_padded(log, limit), headers=device)).status_code == 201
        over = await http.post(doubled, content=_padded(log, limit + 1), headers=device)
        assert (over.status_code, over.json()) == (413, expected)


async def test_meraki_body_limit(gateway, tenant):
    limit = MERAKI.max_request_bytes
    expected = MERAKI.error_body(413, too_large_message(limit))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        at_limit = await http.request("GET", "/api/v1/organizations", content=_padded(b"{}", limit),
                                      headers=key_headers(tenant))
        assert at_limit.status_code == 200, at_limit.text
        for content in (b" " * (limit + 1), _chunks(limit + 1)):
            over = await http.request("GET", "/api/v1/organizations", content=content, headers=key_headers(tenant))
            assert (over.status_code, over.json()) == (413, expected)


async def test_mojo_body_limit(gateway, tenant):
    limit = MOJO.max_request_bytes
    expected = MOJO.error_body(413, too_large_message(limit))
    key_id, secret = tenant.keys["viewer"].split("_", 2)[1:]
    login = json.dumps({"type": "apikeycredentials", "keyId": key_id, "keyValue": secret}).encode()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in (MOJO_LOGS, "/new/webservice" + MOJO_LOGS):  # under /V5/ and /new/webservice/
            at_limit = await http.request("GET", path, content=_padded(b"{}", limit), headers=key_headers(tenant))
            assert at_limit.status_code == 200, at_limit.text
            over = await http.request("GET", path, content=b" " * (limit + 1), headers=key_headers(tenant))
            assert (over.status_code, over.json()) == (413, expected)
        login_path = "/new/webservice/login/key/connlog-test/10"
        at_limit = await http.post(login_path, content=_padded(login, limit),
                                   headers={"content-type": "application/json"})
        assert at_limit.status_code == 200, at_limit.text
        over = await http.post(login_path, content=_padded(login, limit + 1),
                               headers={"content-type": "application/json"})
        assert (over.status_code, over.json()) == (413, expected)
        streamed = await http.post(login_path, content=_chunks(limit + 1), headers={"content-type": "application/json"})
        assert (streamed.status_code, streamed.json()) == (413, expected)


async def test_canonical_rest_body_limit_is_max_message_bytes(suite, tenant, tmp_path_factory):
    limit = 4096
    settings = suite.settings.model_copy(update={"max_message_bytes": limit})
    request = ipb.IngestConnectionEventsRequest(events=[simple_event("N_body_limit", mac="02:00:00:00:4b:01")])
    body = json_format.MessageToJson(request).encode()
    headers = {"authorization": f"Bearer {tenant.keys['operator']}", "content-type": "application/json"}
    async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-v1-limit"), ingest=suite.ingest_address,
                              query=suite.query_address) as gateway, httpx.AsyncClient(base_url=gateway.url) as http:
        at_limit = await http.post("/v1/connectionEvents:ingest", content=_padded(body, limit), headers=headers)
        assert at_limit.status_code == 200, at_limit.text
        assert int(at_limit.json()["acceptedCount"]) == 1
        over = await http.post("/v1/connectionEvents:ingest", content=_padded(body, limit + 1), headers=headers)
        assert (over.status_code, over.json()) == (413, {"code": RPC_CODE[413], "message": too_large_message(limit)})


async def test_oversized_request_headers_are_431(gateway, tenant):
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        fits = await http.get("/api/v1/organizations", headers={**key_headers(tenant), "x-big": "a" * 50_000})
        assert fits.status_code == 200, fits.text
        for path in ("/api/v1/organizations", ZEQUENZE_URL, "/v1/networks/-/connectionEvents"):
            response = await http.get(path, headers={**key_headers(tenant), "x-big": "a" * 70_000})
            assert response.status_code == 431
            # Envoy refuses the headers before it knows the path: google.rpc.Status JSON, whatever the shape
            assert response.json() == {"code": RPC_CODE[431], "message": "Request Header Fields Too Large"}
