"""Shared fixtures, and only fixtures (helpers are in tests/support/): a real
PostgreSQL (embedded, or the server in DATABASE_URL) set up by
connlog.core.database, a fresh migrated database per test session, and the
ingest and query services running in-process on free loopback ports.

Everything that needs PostgreSQL or Envoy is a fixture that only the
integration tests request: ``pytest tests/unit`` starts neither."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from pydantic import SecretStr

from connlog.api.v1 import ingest_service_pb2_grpc, insights_service_pb2_grpc, query_service_pb2_grpc
from connlog.core import event_loop
from connlog.core.database import DatabaseServer, create_pool
from connlog.core.logging import configure_logging
from connlog.core.sealing import new_key
from connlog.core.server import start_service
from connlog.core.settings import Settings
from connlog.store.accounts import AccountStore
from tests.support.gateway import Gateway, envoy_in_front
from tests.support.services import Clients, Suite, Tenant, new_tenant, vendor_sync_service


def pytest_asyncio_loop_factories(config, item):
    """The tests' loop is the kind the services run on (Settings.event_loop
    ``auto``: uvloop where installed; connlog.core.event_loop)."""
    return {"auto": event_loop.loop_factory("auto")}


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[DatabaseServer]:
    configure_logging("warning", "console")
    server = DatabaseServer.start(prefix="connlog-test-pg-")
    try:
        yield server
        await server.drop_databases()
    finally:
        server.stop(mode="immediate")


@pytest.fixture(scope="session")
async def database_url(pg_server: DatabaseServer) -> str:
    """A fresh database with connlog's schema."""
    return await pg_server.create_database("connlog_test", migrated=True)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_keys=SecretStr(new_key()),  # seals vendor credentials for the whole session
        auth_cache_seconds=0,
        # the fake vendors are loopback servers over http: allowed by name here
        sync_allow_http=True,
        sync_allowed_destinations=("127.0.0.1/32", "::1/128"),
        meraki_rate_limit_per_second=20,
        shutdown_grace_seconds=5,
        log_level="warning",
        log_format="console",
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, settings.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def suite(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Suite]:
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query

    ingest = await start_service("ingest", settings, register_ingest, port=0, metrics_port=0)
    query = await start_service("query", settings, register_query, port=0, metrics_port=0)
    yield Suite(ingest, query, settings)
    await ingest.stop(1)
    await query.stop(1)


@pytest.fixture(scope="session")
async def clients(suite: Suite) -> AsyncIterator[Clients]:
    async with grpc.aio.insecure_channel(suite.ingest_address) as ingest_channel, grpc.aio.insecure_channel(
        suite.query_address
    ) as query_channel:
        yield Clients(
            ingest_service_pb2_grpc.IngestServiceStub(ingest_channel),
            query_service_pb2_grpc.QueryServiceStub(query_channel),
            insights_service_pb2_grpc.InsightsServiceStub(query_channel),
        )


@pytest.fixture
async def make_tenant(pool: asyncpg.Pool):
    accounts = AccountStore(pool)

    async def make(device_id: str = "dev-1") -> Tenant:
        return await new_tenant(accounts, device_id)

    return make


@pytest.fixture
async def tenant(make_tenant) -> Tenant:
    return await make_tenant()


@pytest.fixture(scope="session")
async def gateway(suite: Suite, tmp_path_factory) -> AsyncIterator[Gateway]:
    async with envoy_in_front(suite.settings, tmp_path_factory.mktemp("envoy"),
                              ingest=suite.ingest_address, query=suite.query_address) as running:
        yield running


@pytest.fixture(scope="module")
async def sync(suite: Suite, pool: asyncpg.Pool):
    """The vendor-sync service in-process (one per test module), as a stub
    that also knows its ports."""
    from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc

    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, sync_schedule_seconds=0.2,
        sync_http_timeout_seconds=2.0, sync_backoff_base_seconds=0.05, sync_overlap_seconds=60.0,
        sync_initial_lookback_seconds=6 * 3600.0,
    ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = sgrpc.VendorSyncServiceStub(channel)
        stub.metrics_port = service.metrics_port
        stub.port = service.port
        yield stub


@pytest.fixture
async def meraki_fake():
    """A fake Meraki cloud on loopback (key ``meraki-key``)."""
    from tests.support.fake_vendors import FakeMeraki

    fake = FakeMeraki("meraki-key")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def mojo_fake():
    """A fake Mojo cloud on loopback (key ``kid``:``kvalue``)."""
    from tests.support.fake_vendors import FakeMojo

    fake = FakeMojo("kid", "kvalue")
    await fake.start()
    yield fake
    await fake.stop()
