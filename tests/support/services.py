"""The in-process services the integration tests talk to, their gRPC
clients, and tenants with one API key per role."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc
from connlog.core.auth import Role, create_key
from connlog.core.server import RunningService
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


@dataclass
class Tenant:
    """A fresh tenant with one key per role."""

    tenant_id: str
    keys: dict[str, str]

    def md(self, role: str = "operator") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[role]}"),)


async def new_tenant(accounts: AccountStore, device_id: str = "dev-1") -> Tenant:
    """A tenant of its own (random id) with a key of every role; the device
    key is ``device_id``'s."""
    tenant_id = f"t-{secrets.token_hex(4)}"
    keys = {}
    for role in Role:
        key = await create_key(
            accounts, tenant_id=tenant_id, role=role, device_id=device_id if role is Role.DEVICE else None
        )
        keys[role.value] = key.token
    return Tenant(tenant_id, keys)
