"""Vendor sync sources and their per-client checkpoints."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb

_COLUMNS = """s.source_id, t.tenant_id, s.tenant_ref, s.display_name, s.vendor, s.base_url, s.credential,
              s.network_id, s.vendor_network_id, s.clients, s.poll_interval_s, s.rate_limit_per_s,
              s.organization_id, s.client_identifier, s.enabled, s.ingest_key_id, s.ingest_token, s.state,
              s.last_error, s.created_at, s.updated_at"""

SETTABLE = ("display_name", "vendor", "base_url", "credential", "network_id", "vendor_network_id", "clients",
            "poll_interval_s", "rate_limit_per_s", "organization_id", "client_identifier", "enabled")


@dataclass
class SourceRecord:
    """A stored sync source (with its secrets: never hand it to a caller)."""

    source_id: str
    tenant_id: str
    tenant_ref: int
    display_name: str
    vendor: pb.Vendor
    base_url: str
    credential: str
    network_id: str
    vendor_network_id: str
    clients: list[str]
    poll_interval_s: float
    rate_limit_per_s: float
    organization_id: str
    client_identifier: str
    enabled: bool
    ingest_key_id: str
    ingest_token: str
    state: sync_pb.SyncSourceState
    last_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class Checkpoint:
    """Where one client of a source stands."""

    client: str
    checkpoint_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    fetched: int = 0
    ingested: int = 0
    duplicate: int = 0
    rejected: int = 0
    malformed: int = 0
    last_error: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ClientIdentity:
    """Who a listed client name stands for at the vendor (as it answered)."""

    client_id: str
    mac_address: str


# Changing these may make a kept identity wrong (another vendor, network or API).
_IDENTITY_SCOPE = ("vendor", "base_url", "network_id", "vendor_network_id")


class SyncStore:
    """Data access for sync sources and checkpoints."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, values: dict) -> None:
        names = list(values)
        placeholders = ", ".join(f"${i + 1}" for i in range(len(names)))
        async with self._pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO sync_sources ({', '.join(names)}) VALUES ({placeholders})", *values.values()
            )

    async def get(self, source_id: str, tenant_ref: int | None = None) -> SourceRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {_COLUMNS} FROM sync_sources s JOIN tenants t USING (tenant_ref)
                    WHERE s.source_id = $1 AND ($2::int IS NULL OR s.tenant_ref = $2)""",
                source_id,
                tenant_ref,
            )
        return SourceRecord(**dict(row)) if row else None

    async def list(self, tenant_ref: int | None, *, after: str = "", limit: int = 1000) -> list[SourceRecord]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_COLUMNS} FROM sync_sources s JOIN tenants t USING (tenant_ref)
                    WHERE ($1::int IS NULL OR s.tenant_ref = $1) AND s.source_id > $2
                    ORDER BY s.source_id LIMIT $3""",
                tenant_ref,
                after,
                limit,
            )
        return [SourceRecord(**dict(r)) for r in rows]

    async def update(
        self, source_id: str, values: dict, *, reset_state: sync_pb.SyncSourceState | None = None
    ) -> None:
        if not values and reset_state is None:
            return
        assigns = [f"{name} = ${i + 2}" for i, name in enumerate(values) if name in SETTABLE]
        args: list[object] = [values[name] for name in values if name in SETTABLE]
        if reset_state is not None:
            args.append(reset_state)
            assigns += [f"state = ${len(args) + 1}", "last_error = ''"]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"UPDATE sync_sources SET {', '.join(assigns)}, updated_at = now() WHERE source_id = $1",
                source_id,
                *args,
            )
            if any(name in values for name in _IDENTITY_SCOPE):
                await conn.execute("DELETE FROM sync_client_identities WHERE source_id = $1", source_id)
            elif "clients" in values:  # names no longer listed
                await conn.execute("DELETE FROM sync_client_identities WHERE source_id = $1 AND client <> ALL($2)",
                                   source_id, values["clients"])

    async def delete(self, source_id: str) -> str | None:
        """Delete a source; returns its ingest key id (to revoke)."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                "DELETE FROM sync_sources WHERE source_id = $1 RETURNING ingest_key_id", source_id
            )

    async def set_state(self, source_id: str, state: sync_pb.SyncSourceState, error: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE sync_sources SET state = $2, last_error = $3 WHERE source_id = $1", source_id, state, error
            )

    async def checkpoints(self, source_id: str) -> dict[str, Checkpoint]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT client, checkpoint_at, last_success_at, fetched, ingested, duplicate, rejected, malformed,
                          last_error FROM sync_checkpoints WHERE source_id = $1""",
                source_id,
            )
        return {r["client"]: Checkpoint(**dict(r)) for r in rows}

    async def advance(
        self,
        source_id: str,
        client: str,
        *,
        checkpoint_at: dt.datetime | None,
        fetched: int = 0,
        ingested: int = 0,
        duplicate: int = 0,
        rejected: int = 0,
        malformed: int = 0,
        success: bool = False,
    ) -> None:
        """Move a client's checkpoint forward (never back) and add counts."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO sync_checkpoints AS c (source_id, client, checkpoint_at, last_success_at, fetched,
                                                      ingested, duplicate, rejected, malformed)
                   VALUES ($1, $2, $3, CASE WHEN $9 THEN now() END, $4, $5, $6, $7, $8)
                   ON CONFLICT (source_id, client) DO UPDATE SET
                       checkpoint_at = GREATEST(c.checkpoint_at, EXCLUDED.checkpoint_at),
                       last_success_at = CASE WHEN $9 THEN now() ELSE c.last_success_at END,
                       last_error = CASE WHEN $9 THEN '' ELSE c.last_error END,
                       fetched = c.fetched + $4, ingested = c.ingested + $5, duplicate = c.duplicate + $6,
                       rejected = c.rejected + $7, malformed = c.malformed + $8""",
                source_id,
                client,
                checkpoint_at,
                fetched,
                ingested,
                duplicate,
                rejected,
                malformed,
                success,
            )

    async def client_error(self, source_id: str, client: str, error: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO sync_checkpoints AS c (source_id, client, last_error) VALUES ($1, $2, $3)
                   ON CONFLICT (source_id, client) DO UPDATE SET last_error = EXCLUDED.last_error""",
                source_id,
                client,
                error,
            )

    async def identities(self, source_id: str) -> dict[str, ClientIdentity]:
        """The kept identities of a source's client names."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT client, vendor_client_id, mac_address FROM sync_client_identities WHERE source_id = $1",
                source_id,
            )
        return {r["client"]: ClientIdentity(r["vendor_client_id"], r["mac_address"]) for r in rows}

    async def keep_identity(self, source_id: str, client: str, identity: ClientIdentity) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO sync_client_identities (source_id, client, vendor_client_id, mac_address)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (source_id, client) DO UPDATE SET vendor_client_id = EXCLUDED.vendor_client_id,
                       mac_address = EXCLUDED.mac_address, resolved_at = now()""",
                source_id,
                client,
                identity.client_id,
                identity.mac_address,
            )
