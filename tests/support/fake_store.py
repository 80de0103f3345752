"""Stand-ins for the database in unit tests: a pool that refuses every use,
and the API keys of ``connlog.store.accounts.AccountStore`` in memory (what
``connlog.core.auth.KeyAuthenticator`` and ``create_key`` need)."""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from connlog.store.accounts import KeyRecord


class DatabaseReached(AssertionError):
    """A unit test's code went on to the database."""


class NoDatabase:
    """A connection pool that is never to be used: any use raises
    ``DatabaseReached``. A servicer that refuses a request before its store
    runs never touches it; one that accepts the request reaches it."""

    def __getattr__(self, name: str) -> NoReturn:
        raise DatabaseReached(f"the database was reached (pool.{name})")


class InMemoryAccounts:
    """Tenants and API keys in memory."""

    def __init__(self) -> None:
        self._tenants: dict[str, int] = {}
        self._keys: dict[str, KeyRecord] = {}

    async def ensure_tenant(self, tenant_id: str, name: str = "") -> int:
        return self._tenants.setdefault(tenant_id, len(self._tenants) + 1)

    async def create_key(self, *, key_id: str, tenant_ref: int | None, role: str, device_id: str | None,
                         secret_hash: bytes, description: str, shape: str | None = None) -> None:
        tenant_id = next((t for t, ref in self._tenants.items() if ref == tenant_ref), None)
        self._keys[key_id] = KeyRecord(key_id, tenant_id, tenant_ref, role, device_id, secret_hash, description,
                                       dt.datetime.now(dt.UTC), None, shape)

    async def find_key(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    def __getattr__(self, name: str) -> Any:
        raise DatabaseReached(f"the database was reached (accounts.{name})")
