"""The in-process services the integration tests talk to, their gRPC
clients, and tenants with one API key per role."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import SecretStr

from connlog.api.v1 import ingest_service_pb2_grpc, insights_service_pb2_grpc, query_service_pb2_grpc
from connlog.core.auth import NewKey, create_key, create_service_key
from connlog.core.principal import Role
from connlog.core.server import RunningService, start_service
from connlog.core.settings import Settings
from connlog.store.accounts import AccountStore


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


@dataclass
class Clients:
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    query: query_service_pb2_grpc.QueryServiceStub
    # hosted by the query service (None where a test builds its own Clients without it)
    insights: insights_service_pb2_grpc.InsightsServiceStub | None = None


@dataclass
class Tenant:
    """A fresh tenant with one key per role."""

    tenant_id: str
    keys: dict[str, str]

    def md(self, role: str = "operator") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[role]}"),)


async def role_key(accounts: AccountStore, tenant_id: str, role: Role, device_id: str = "dev-1") -> NewKey:
    """A key of ``role`` for ``tenant_id``: a device key is ``device_id``'s;
    a sync_service key belongs to no tenant (one of its own)."""
    if role is Role.SYNC_SERVICE:
        return await create_service_key(accounts, description=f"tests ({tenant_id})")
    return await create_key(accounts, tenant_id=tenant_id, role=role,
                            device_id=device_id if role is Role.DEVICE else None)


async def new_tenant(accounts: AccountStore, device_id: str = "dev-1") -> Tenant:
    """A tenant of its own (random id) with a key of every role; the device
    key is ``device_id``'s, the sync_service key (no tenant's) its own."""
    tenant_id = f"t-{secrets.token_hex(4)}"
    keys = {}
    for role in Role:
        keys[role.value] = (await role_key(accounts, tenant_id, role, device_id)).token
    return Tenant(tenant_id, keys)


@contextlib.asynccontextmanager
async def vendor_sync_service(
    settings: Settings, pool: asyncpg.Pool, **overrides: Any
) -> AsyncIterator[RunningService]:
    """The vendor-sync service in-process with its own service identity, as
    in a deployment (a sync_service key, revoked when it stops); ``overrides``
    replace settings (e.g. ``sync_ingest_address``)."""
    from connlog.vendorsync.servicer import register as register_sync

    accounts = AccountStore(pool)
    key = await create_service_key(accounts, description="tests: vendor-sync")
    settings = settings.model_copy(update={"sync_service_key": SecretStr(key.token), **overrides})
    service = await start_service("vendor-sync", settings, register_sync, port=0, metrics_port=0, pool=pool)
    try:
        yield service
    finally:
        await service.stop(1)
        await accounts.revoke_key(key.key_id)
