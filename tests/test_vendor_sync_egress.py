"""Where vendor-sync's outbound calls may go, through real loopback servers:
https only and public addresses unless allow-listed (checked when a source
is written, and again on every connection, after resolving the name
itself), redirects and vendor-given URLs only within the source's origin,
so the credential never reaches another host; TLS verifies the URL's name
though the connection goes to a vetted address."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from aiohttp import web
from google.protobuf import field_mask_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.vendorsync.egress import EgressPolicy, VettedTransport, parse_destinations
from tests.support.factories import now
from tests.support.fake_vendors import Recorder, meraki_records, mojo_logs
from tests.support.services import Suite, vendor_sync_service
from tests.support.sync_calls import create, run

MAC = "aa:bb:cc:00:11:22"


@asynccontextmanager
async def vendor_sync(suite: Suite, pool: asyncpg.Pool, **egress: object) -> AsyncIterator[sgrpc.VendorSyncServiceStub]:
    """A vendor-sync service of its own, with the egress settings given
    (the test settings allow loopback http; these may not)."""
    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, sync_schedule_seconds=0.2,
        sync_http_timeout_seconds=2.0, sync_backoff_base_seconds=0.05, **egress,
    ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield sgrpc.VendorSyncServiceStub(channel)


@pytest.fixture
async def recorder():
    server = Recorder()
    await server.start()
    yield server
    await server.stop()


def meraki_source(base_url: str, network: str = "N_egress") -> spb.SyncSource:
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=base_url, credential="meraki-key",
                            network_id=network, clients=["k1"])
    source.poll_interval.FromSeconds(3600)
    return source


def mojo_source(base_url: str, network: str = "N_egress") -> spb.SyncSource:
    source = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=base_url, credential="kid:kvalue",
                            network_id=network, clients=[MAC])
    source.poll_interval.FromSeconds(3600)
    return source


def port_of(url: str) -> int:
    return httpx.URL(url).port or 80


async def refused_at_create(stub, tenant, source: spb.SyncSource) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(stub, tenant, source)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert details.startswith("sync_source.base_url: ")
    return details


# Stricter egress than the test settings, for the tests of TestStrictServices
# (class scope: stopped before this module's ``sync`` starts).

@pytest.fixture(scope="class")
async def default_sync(suite, pool):
    """Default egress: https only, no allow-list."""
    async with vendor_sync(suite, pool, sync_allow_http=False, sync_allowed_destinations=()) as stub:
        yield stub


@pytest.fixture(scope="class")
async def http_sync(suite, pool):
    """http allowed, but no allow-list: loopback stays refused."""
    async with vendor_sync(suite, pool, sync_allow_http=True, sync_allowed_destinations=()) as stub:
        yield stub


class TestStrictServices:
    """vendor-sync services with stricter egress settings than the test
    settings. Every vendor-sync polls every source of the database: these
    run (and stop) before this module's ``sync`` (which allows loopback)
    starts, so none polls what another is asked to refuse."""

    # (a) at create time ----------------------------------------------------------

    @pytest.mark.parametrize(("url", "reason"), [
        ("http://127.0.0.1:{port}/api/v1", "must be https"),
        ("http://api.example.com/api/v1", "must be https"),
        ("https://127.0.0.1:{port}/api/v1", "127.0.0.1 is not a public address"),
        ("https://2130706433:{port}/api/v1", "127.0.0.1 is not a public address"),
        ("https://0x7f.1:{port}/api/v1", "127.0.0.1 is not a public address"),
        ("https://[::1]:{port}/api/v1", "::1 is not a public address"),
        ("https://[::ffff:127.0.0.1]:{port}/api/v1", "127.0.0.1 is not a public address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address"),
        ("https://10.0.0.8/api/v1", "10.0.0.8 is not a public address"),
        ("https://100.64.0.8/api/v1", "100.64.0.8 is not a public address"),
        ("https://[fd00:ec2::254]/api/v1", "fd00:ec2::254 is not a public address"),
        ("https://meraki-key@api.example.com/api/v1", "user name or password"),
    ])
    async def test_by_default_only_public_https_sources_are_accepted(self, default_sync, tenant, meraki_fake, url,
                                                                     reason):
        base_url = url.format(port=port_of(meraki_fake.url))
        details = await refused_at_create(default_sync, tenant, meraki_source(base_url))
        assert reason in details

    async def test_loopback_over_http_is_refused_without_an_allow_list(self, http_sync, tenant, meraki_fake):
        details = await refused_at_create(http_sync, tenant, meraki_source(f"{meraki_fake.url}/api/v1"))
        assert "127.0.0.1 is not a public address" in details
        # the same source is accepted where the allow-list names 127.0.0.1 (the
        # test settings), and a public https name is accepted here
        await create(http_sync, tenant, meraki_source("https://api.meraki.example/api/v1"))
        assert not meraki_fake.request_times

    # (b) at connect time ----------------------------------------------------------

    @pytest.mark.parametrize("vendor", ["meraki", "mojo"])
    async def test_a_name_resolving_to_loopback_is_refused_when_connecting(self, http_sync, tenant, meraki_fake,
                                                                           mojo_fake, vendor):
        fake = meraki_fake if vendor == "meraki" else mojo_fake
        base = f"http://localhost:{port_of(fake.url)}" + ("/api/v1" if vendor == "meraki" else "/new/webservice")
        source = await create(http_sync, tenant, (meraki_source if vendor == "meraki" else mojo_source)(base))
        status = await run(http_sync, tenant, source)
        [client] = status.clients
        assert "refused" in client.last_error and "localhost resolves to" in client.last_error
        assert "is not a public address" in client.last_error
        assert client.ingested_count == 0
        # the vendor never saw a request (not even the login with the credential)
        assert not fake.request_times
        if vendor == "meraki":
            assert not meraki_fake.lookups and not meraki_fake.event_requests
        else:
            assert mojo_fake.logins == 0 and not mojo_fake.log_requests


async def test_an_update_to_a_refused_url_is_refused(sync, tenant, meraki_fake):
    source = await create(sync, tenant, meraki_source(f"{meraki_fake.url}/api/v1"))
    change = spb.SyncSource(name=source.name, base_url="http://169.254.169.254/latest/meta-data")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sync.UpdateSyncSource(spb.UpdateSyncSourceRequest(
            sync_source=change, update_mask=field_mask_pb2.FieldMask(paths=["base_url"])),
            metadata=tenant.md("administrator"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "sync_source.base_url: 169.254.169.254 is not a public address " \
                                  "(allow it in CONNLOG_SYNC_ALLOWED_DESTINATIONS)"


# (c) redirects -------------------------------------------------------------------

async def test_a_redirect_within_the_origin_is_followed(sync, clients, tenant, meraki_fake):
    meraki_fake.add("N_egress_same", "k1", meraki_records(5, now() - dt.timedelta(minutes=30)))
    meraki_fake.redirects = [meraki_fake.url, meraki_fake.url]  # the client lookup, then the events
    source = await create(sync, tenant, meraki_source(f"{meraki_fake.url}/api/v1", "N_egress_same"))
    status = await run(sync, tenant, source)
    [client] = status.clients
    assert client.last_error == "" and client.ingested_count == 5
    assert not meraki_fake.redirects  # both redirects were met, and followed


@pytest.mark.parametrize("vendor", ["meraki", "mojo"])
async def test_a_redirect_to_another_host_is_refused_and_sends_nothing_there(sync, tenant, meraki_fake, mojo_fake,
                                                                             recorder, vendor):
    fake = meraki_fake if vendor == "meraki" else mojo_fake
    if vendor == "meraki":
        source = meraki_source(f"{meraki_fake.url}/api/v1", "N_egress_moved")
    else:
        mojo_fake.add(MAC, mojo_logs(3, now() - dt.timedelta(minutes=30), MAC))
        source = mojo_source(f"{mojo_fake.url}/new/webservice", "N_egress_moved")
    fake.redirects = [recorder.url] * 10  # every request, were they followed
    created = await create(sync, tenant, source)
    status = await run(sync, tenant, created)
    [client] = status.clients
    assert "redirected to another host" in client.last_error and "refused" in client.last_error
    assert recorder.url.removeprefix("http://") in client.last_error
    # another server (allow-listed: loopback) got nothing: no credential, no request at all
    assert recorder.requests == []
    assert client.ingested_count == 0


# (d) URLs the vendor hands back -------------------------------------------------

async def test_a_meraki_link_to_another_origin_is_not_followed(sync, clients, tenant, meraki_fake, recorder):
    meraki_fake.per_page_cap = 2
    meraki_fake.add("N_egress_link", "k1", meraki_records(5, now() - dt.timedelta(minutes=30)))
    meraki_fake.link_base = recorder.url  # rel=next points to another server
    source = await create(sync, tenant, meraki_source(f"{meraki_fake.url}/api/v1", "N_egress_link"))
    status = await run(sync, tenant, source)
    [client] = status.clients
    assert "Link rel=next to another host" in client.last_error
    assert client.ingested_count == 2  # the first page, from the source itself
    assert recorder.requests == []


# TLS: the name is verified though the connection goes to a vetted address -----

def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (no IP)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_tls_verifies_the_urls_name_while_connecting_to_the_vetted_address(tmp_path):
    cert_file, key_file = _certificate(tmp_path)
    server_names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[assignment,func-returns-value]

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    networks, hosts = parse_destinations(["127.0.0.1/32", "::1/128"])
    client_context = ssl.create_default_context(cafile=str(cert_file))
    transport = VettedTransport(EgressPolicy(False, networks, hosts), client_context)
    try:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            response = await client.get(f"https://localhost:{port}/")
            assert response.status_code == 200 and response.text == "hello"
            assert server_names == ["localhost"]  # SNI: the URL's name, not the address connected to
            # the certificate names localhost only: by address, verification fails
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|IP address mismatch"):
                await client.get(f"https://127.0.0.1:{port}/")
    finally:
        await runner.cleanup()
