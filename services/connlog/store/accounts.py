"""Tenants, networks and API keys, and the notifications of changed keys."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

# The channel migration 0007's trigger notifies, with the key id, whenever a
# key is revoked, changed or deleted.
KEY_CHANGED_CHANNEL = "connlog_key_revoked"


@dataclass(frozen=True)
class KeyRecord:
    """A stored API key (never its secret)."""

    key_id: str
    tenant_id: str | None  # None: a sync_service key (no tenant of its own)
    tenant_ref: int | None
    role: str
    device_id: str | None
    secret_hash: bytes
    description: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    shape: str | None = None  # the REST shape a device key writes through


_KEY_COLUMNS = """k.key_id, t.tenant_id, k.tenant_ref, k.role, k.device_id, k.shape, k.secret_hash,
                  k.description, k.created_at, k.revoked_at"""


class KeyChangeListener:
    """A dedicated connection (not the pool's) LISTENing for changed keys:
    ``on_changed(key_id)`` runs for each; ``lost`` is set when the
    connection ends (the server went away, or terminated it)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.lost = asyncio.Event()
        self.pid = conn.get_server_pid()

    @classmethod
    async def open(cls, dsn: str, on_changed: Callable[[str], None]) -> KeyChangeListener:
        conn = await asyncpg.connect(dsn, timeout=10)
        listener = cls(conn)
        conn.add_termination_listener(lambda _conn: listener.lost.set())
        try:
            await conn.add_listener(KEY_CHANGED_CHANNEL, lambda _c, _pid, _channel, key_id: on_changed(key_id))
        except BaseException:
            conn.terminate()
            raise
        return listener

    async def close(self) -> None:
        if self._conn.is_closed():
            return
        try:
            await asyncio.wait_for(self._conn.close(), 5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._conn.terminate()


class AccountStore:
    """Data access for tenants, networks and API keys."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ensure_tenant(self, tenant_id: str, name: str = "") -> int:
        """The tenant's internal reference, creating the tenant if needed."""
        async with self._pool.acquire() as conn:
            ref = await conn.fetchval(
                """INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)
                   ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_ref""",
                tenant_id,
                name,
            )
            if ref is None:
                ref = await conn.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = $1", tenant_id)
            return ref

    async def tenant_ref(self, tenant_id: str) -> int | None:
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = $1", tenant_id)

    async def ensure_networks(self, tenant_ref: int, network_ids: list[str]) -> dict[str, int]:
        """Internal references of the tenant's networks, creating missing ones."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO networks (tenant_ref, network_id)
                   SELECT $1, n FROM unnest($2::text[]) AS n
                   ON CONFLICT (tenant_ref, network_id) DO NOTHING""",
                tenant_ref,
                network_ids,
            )
            rows = await conn.fetch(
                "SELECT network_id, network_ref FROM networks WHERE tenant_ref = $1 AND network_id = ANY($2::text[])",
                tenant_ref,
                network_ids,
            )
        return {r["network_id"]: r["network_ref"] for r in rows}

    async def network_ref(self, tenant_ref: int, network_id: str) -> int | None:
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT network_ref FROM networks WHERE tenant_ref = $1 AND network_id = $2", tenant_ref, network_id
            )

    async def create_key(
        self,
        *,
        key_id: str,
        tenant_ref: int | None,
        role: str,
        device_id: str | None,
        secret_hash: bytes,
        description: str,
        shape: str | None = None,
    ) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO api_keys (key_id, tenant_ref, role, device_id, secret_hash, description, shape)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                key_id,
                tenant_ref,
                role,
                device_id,
                secret_hash,
                description,
                shape,
            )

    async def find_key(self, key_id: str) -> KeyRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_KEY_COLUMNS} FROM api_keys k LEFT JOIN tenants t USING (tenant_ref) WHERE k.key_id = $1",
                key_id,
            )
        return KeyRecord(**dict(row)) if row else None

    async def list_keys(self, tenant_id: str | None = None) -> list[KeyRecord]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_KEY_COLUMNS} FROM api_keys k LEFT JOIN tenants t USING (tenant_ref)
                    WHERE $1::text IS NULL OR t.tenant_id = $1 ORDER BY t.tenant_id NULLS FIRST, k.created_at""",
                tenant_id,
            )
        return [KeyRecord(**dict(r)) for r in rows]

    async def tenant(self, tenant_ref: int) -> tuple[str, str]:
        """``(tenant_id, name)`` of a tenant."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT tenant_id, name FROM tenants WHERE tenant_ref = $1", tenant_ref)
        if row is None:
            raise LookupError(f"no tenant with reference {tenant_ref}")
        return row["tenant_id"], row["name"]

    async def networks(self, tenant_ref: int, network_id: str | None = None) -> list[tuple[str, str]]:
        """``(network_id, name)`` of the tenant's networks (or of one)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT network_id, name FROM networks
                   WHERE tenant_ref = $1 AND ($2::text IS NULL OR network_id = $2) ORDER BY network_id""",
                tenant_ref,
                network_id,
            )
        return [(r["network_id"], r["name"]) for r in rows]

    async def record_access_points(self, tenant_ref: int, seen: list[tuple[str, int, str, object]]) -> None:
        """Upsert ``(serial, network_ref, name, last_seen_at)`` access points."""
        if not seen:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO access_points (tenant_ref, serial, network_ref, name, last_seen_at)
                   SELECT $1, s, n, a, t FROM unnest($2::text[], $3::int[], $4::text[], $5::timestamptz[])
                        AS u(s, n, a, t)
                   ON CONFLICT (tenant_ref, serial) DO UPDATE
                   SET network_ref = EXCLUDED.network_ref, name = EXCLUDED.name, last_seen_at = EXCLUDED.last_seen_at
                   WHERE access_points.last_seen_at < EXCLUDED.last_seen_at""",
                tenant_ref,
                [s[0] for s in seen],
                [s[1] for s in seen],
                [s[2] for s in seen],
                [s[3] for s in seen],
            )

    async def access_points(self, tenant_ref: int) -> list[dict]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT a.serial, a.name, n.network_id, a.last_seen_at FROM access_points a
                   JOIN networks n USING (network_ref) WHERE a.tenant_ref = $1 ORDER BY a.serial""",
                tenant_ref,
            )
        return [dict(r) for r in rows]

    async def create_session(
        self, session_hash: bytes, key_id: str, client_identifier: str, minutes: int
    ) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
            await conn.execute(
                """INSERT INTO sessions (session_hash, key_id, client_identifier, expires_at)
                   VALUES ($1, $2, $3, now() + make_interval(mins => $4))""",
                session_hash,
                key_id,
                client_identifier,
                minutes,
            )

    async def session_key(self, session_hash: bytes) -> KeyRecord | None:
        """The key behind a live session."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {_KEY_COLUMNS} FROM sessions s JOIN api_keys k USING (key_id)
                    LEFT JOIN tenants t ON t.tenant_ref = k.tenant_ref
                    WHERE s.session_hash = $1 AND s.expires_at > now()""",
                session_hash,
            )
        return KeyRecord(**dict(row)) if row else None

    async def revoke_key(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such active key."""
        async with self._pool.acquire() as conn:
            result = await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", key_id
            )
        return result.endswith(" 1")
