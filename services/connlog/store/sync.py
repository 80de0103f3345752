"""Vendor sync sources, their leases and their per-client checkpoints.

Replicas of vendor-sync share the sources out by leases (migration 0010): a
replica claims due sources whose lease is free or lapsed, renews its leases
while it polls and releases each when done. Checkpoint writes are taken only
from the source's current lease holder, in the statement that checks the
lease (the source row locked meanwhile), so a replica that lost a lease can
never move a cursor under the new holder. Every time is the database's."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb
from connlog.core.principal import SourceScope

_COLUMNS = """s.source_id, t.tenant_id, s.tenant_ref, s.display_name, s.vendor, s.base_url, s.credential_sealed,
              s.network_id, s.vendor_network_id, s.clients, s.poll_interval_s, s.rate_limit_per_s,
              s.organization_id, s.client_identifier, s.enabled, s.state, s.last_error, s.created_at, s.updated_at,
              (s.credential_sealed IS NOT NULL OR s.credential_plaintext <> '') AS has_credential,
              s.discover_clients"""

# The credential is written sealed only (connlog.vendorsync.credentials); the
# plaintext column of before migration 0006 is only ever cleared.
SETTABLE = ("display_name", "vendor", "base_url", "credential_sealed", "network_id", "vendor_network_id", "clients",
            "poll_interval_s", "rate_limit_per_s", "organization_id", "client_identifier", "enabled",
            "discover_clients")

# (source id, sealed credential or None, plaintext of before 0006 or '') ->
# the new sealed credential, or None to leave the row as it is.
Resealer = Callable[[str, bytes | None, str], bytes | None]


@dataclass
class SourceRecord:
    """A stored sync source. Its credential is stored sealed
    (``credential_sealed``); ``credential`` holds it opened, in memory only,
    once the worker has opened it ('' until then): never hand it to a caller."""

    source_id: str
    tenant_id: str
    tenant_ref: int
    display_name: str
    vendor: pb.Vendor
    base_url: str
    credential_sealed: bytes | None
    network_id: str
    vendor_network_id: str
    clients: list[str]
    poll_interval_s: float
    rate_limit_per_s: float
    organization_id: str
    client_identifier: str
    enabled: bool
    state: sync_pb.SyncSourceState
    last_error: str
    created_at: dt.datetime
    updated_at: dt.datetime
    has_credential: bool
    credential: str = ""
    # follow the network's clients as discovered (Meraki; implied without listed clients)
    discover_clients: bool = False

    @property
    def discovers(self) -> bool:
        """Whether the source follows its network's clients as discovered."""
        return self.discover_clients or not self.clients


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
class Lease:
    """Who holds a source's lease (None: nobody) and whether it is still live."""

    holder: str | None
    live: bool


@dataclass(frozen=True)
class ClientIdentity:
    """Who a listed client name stands for at the vendor (as it answered)."""

    client_id: str
    mac_address: str


@dataclass(frozen=True)
class DiscoveredClient:
    """A client of a source's network as the vendor's listing reported it;
    ``client`` is its name here: its MAC, else its id."""

    client: str
    client_id: str
    mac_address: str
    last_seen: dt.datetime | None


@dataclass(frozen=True)
class Sweep:
    """A source's last full sweep (a poll of all its due clients) and its
    last discovery."""

    discovered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    seconds: float | None = None
    clients: int = 0
    requests: int = 0
    next_poll_at: dt.datetime | None = None


# Meraki keeps 31 days of events: a discovered client not reported for longer is dropped.
DISCOVERED_RETENTION = dt.timedelta(days=31)

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
        settable = [name for name in values if name in SETTABLE]
        assigns = [f"{name} = ${i + 2}" for i, name in enumerate(settable)]
        args: list[object] = [values[name] for name in settable]
        if "credential_sealed" in settable:
            assigns.append("credential_plaintext = ''")
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
                await conn.execute("DELETE FROM sync_discovered_clients WHERE source_id = $1", source_id)
                await conn.execute("UPDATE sync_sources SET discovered_at = NULL WHERE source_id = $1", source_id)
            elif "clients" in values:  # names no longer listed
                await conn.execute("DELETE FROM sync_client_identities WHERE source_id = $1 AND client <> ALL($2)",
                                   source_id, values["clients"])

    async def delete(self, source_id: str) -> bool:
        """Delete a source; whether it was there."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval("DELETE FROM sync_sources WHERE source_id = $1 RETURNING true",
                                       source_id) is not None

    async def reseal(self, reseal: Resealer) -> int:
        """Pass every stored credential through ``reseal`` in one transaction
        (rows locked), storing what it returns (sealed; the plaintext column
        cleared). An exception from ``reseal`` rolls everything back. Returns
        the number of rows changed."""
        changed = 0
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT source_id, credential_sealed, credential_plaintext FROM sync_sources
                   WHERE credential_sealed IS NOT NULL OR credential_plaintext <> ''
                   ORDER BY source_id FOR UPDATE""")
            for row in rows:
                sealed = reseal(row["source_id"], row["credential_sealed"], row["credential_plaintext"])
                if sealed is None:
                    continue
                await conn.execute(
                    """UPDATE sync_sources SET credential_sealed = $2, credential_plaintext = ''
                       WHERE source_id = $1""", row["source_id"], sealed)
                changed += 1
        return changed

    async def set_state(
        self, source_id: str, state: sync_pb.SyncSourceState, error: str, *, holder: str | None = None
    ) -> None:
        """Set a source's state; with ``holder``, only while it holds the
        source's live lease (a poll's finding)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE sync_sources SET state = $2, last_error = $3
                   WHERE source_id = $1 AND ($4::text IS NULL OR (lease_holder = $4 AND lease_until > now()))""",
                source_id, state, error, holder,
            )

    async def claim_due(self, holder: str, lease_seconds: float, limit: int) -> builtins.list[SourceRecord]:
        """Lease to ``holder`` up to ``limit`` due sources (enabled, active,
        their next poll time reached) whose lease is free or lapsed, most
        overdue first. Rows another transaction has locked (another replica
        claiming them this instant) are skipped, never waited for."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""WITH due AS MATERIALIZED (
                        SELECT source_id FROM sync_sources
                        WHERE enabled AND state = $4 AND next_poll_at <= now()
                          AND (lease_until IS NULL OR lease_until <= now())
                        ORDER BY next_poll_at LIMIT $3
                        FOR UPDATE SKIP LOCKED)
                    UPDATE sync_sources s
                       SET lease_holder = $1, lease_until = now() + make_interval(secs => $2),
                           poll_started_at = now()
                      FROM due, tenants t
                     WHERE s.source_id = due.source_id AND t.tenant_ref = s.tenant_ref
                    RETURNING {_COLUMNS}""",
                holder, lease_seconds, limit, sync_pb.SYNC_SOURCE_STATE_ACTIVE,
            )
        return [SourceRecord(**dict(r)) for r in rows]

    async def claim(self, source_id: str, holder: str, lease_seconds: float) -> SourceRecord | None:
        """Lease one source to ``holder`` now, due or not (a poll asked for),
        if it is enabled, active and its lease free or lapsed; else None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""UPDATE sync_sources s
                       SET lease_holder = $2, lease_until = now() + make_interval(secs => $3),
                           poll_started_at = now()
                      FROM tenants t
                     WHERE s.source_id = $1 AND t.tenant_ref = s.tenant_ref AND s.enabled AND s.state = $4
                       AND (s.lease_until IS NULL OR s.lease_until <= now())
                    RETURNING {_COLUMNS}""",
                source_id, holder, lease_seconds, sync_pb.SYNC_SOURCE_STATE_ACTIVE,
            )
        return SourceRecord(**dict(row)) if row else None

    async def renew(self, source_id: str, holder: str, lease_seconds: float) -> bool:
        """Extend ``holder``'s live lease; False if it is not (or no longer)
        the holder, or its lease lapsed: the lease is lost."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                """UPDATE sync_sources SET lease_until = now() + make_interval(secs => $3)
                   WHERE source_id = $1 AND lease_holder = $2 AND lease_until > now() RETURNING true""",
                source_id, holder, lease_seconds,
            ) is not None

    async def release(self, source_id: str, holder: str, *, polled: bool) -> bool:
        """Give up ``holder``'s lease (nothing if it is not the holder).
        ``polled``: the poll ran, the source is next due one interval after
        it started; else (a poll abandoned at shutdown) it stays due."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                """UPDATE sync_sources
                      SET lease_holder = NULL, lease_until = NULL,
                          next_poll_at = CASE WHEN $3 THEN greatest(now(), coalesce(poll_started_at, now())
                                                   + make_interval(secs => greatest(poll_interval_s, 1)))
                                         ELSE next_poll_at END
                    WHERE source_id = $1 AND lease_holder = $2 RETURNING true""",
                source_id, holder, polled,
            ) is not None

    async def lease(self, source_id: str) -> Lease | None:
        """The lease of a source now (None: no such source)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT lease_holder, coalesce(lease_until > now(), false) AS live
                   FROM sync_sources WHERE source_id = $1""", source_id)
        return Lease(row["lease_holder"], row["live"]) if row else None

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
        holder: str,
        checkpoint_at: dt.datetime | None,
        fetched: int = 0,
        ingested: int = 0,
        duplicate: int = 0,
        rejected: int = 0,
        malformed: int = 0,
        success: bool = False,
    ) -> bool:
        """Move a client's checkpoint forward (never back) and add counts, if
        ``holder`` holds the source's live lease (the row locked until the
        write commits, so no claim passes in between); False, nothing
        written, if not: the lease is lost."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                """WITH held AS (SELECT source_id FROM sync_sources
                                 WHERE source_id = $1 AND lease_holder = $10 AND lease_until > now() FOR SHARE)
                   INSERT INTO sync_checkpoints AS c (source_id, client, checkpoint_at, last_success_at, fetched,
                                                      ingested, duplicate, rejected, malformed)
                   SELECT $1, $2, $3, CASE WHEN $9 THEN now() END, $4, $5, $6, $7, $8 FROM held
                   ON CONFLICT (source_id, client) DO UPDATE SET
                       checkpoint_at = GREATEST(c.checkpoint_at, EXCLUDED.checkpoint_at),
                       last_success_at = CASE WHEN $9 THEN now() ELSE c.last_success_at END,
                       last_error = CASE WHEN $9 THEN '' ELSE c.last_error END,
                       fetched = c.fetched + $4, ingested = c.ingested + $5, duplicate = c.duplicate + $6,
                       rejected = c.rejected + $7, malformed = c.malformed + $8
                   RETURNING true""",
                source_id,
                client,
                checkpoint_at,
                fetched,
                ingested,
                duplicate,
                rejected,
                malformed,
                success,
                holder,
            ) is not None

    async def client_error(self, source_id: str, client: str, error: str, *, holder: str) -> bool:
        """Record why a client's poll failed, if ``holder`` holds the source's
        live lease (as ``advance``); False if not."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                """WITH held AS (SELECT source_id FROM sync_sources
                                 WHERE source_id = $1 AND lease_holder = $4 AND lease_until > now() FOR SHARE)
                   INSERT INTO sync_checkpoints AS c (source_id, client, last_error) SELECT $1, $2, $3 FROM held
                   ON CONFLICT (source_id, client) DO UPDATE SET last_error = EXCLUDED.last_error
                   RETURNING true""",
                source_id,
                client,
                error,
                holder,
            ) is not None

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

    async def scope(self, source_id: str) -> SourceScope | None:
        """What the sync service may write for ``source_id`` (its tenant,
        vendor and network, and whether it is enabled); None if no such source."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT s.source_id, s.tenant_ref, t.tenant_id, s.vendor, s.network_id, s.enabled
                   FROM sync_sources s JOIN tenants t USING (tenant_ref) WHERE s.source_id = $1""",
                source_id,
            )
        return SourceScope(**dict(row)) if row else None

    async def discovered(self, source_id: str) -> dict[str, DiscoveredClient]:
        """The clients of a source's network as last discovered, by name (in
        the order of their names)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT client, vendor_client_id, mac_address, last_seen FROM sync_discovered_clients
                   WHERE source_id = $1 ORDER BY client""", source_id)
        return {r["client"]: DiscoveredClient(r["client"], r["vendor_client_id"], r["mac_address"], r["last_seen"])
                for r in rows}

    async def keep_discovered(
        self, source_id: str, tenant_ref: int, clients: builtins.list[DiscoveredClient], *, holder: str
    ) -> bool:
        """Keep a listing of a source's network: each client reported (its
        identifiers and lastSeen), ``discovered_at`` now, and drop clients not
        reported for ``DISCOVERED_RETENTION``; only while ``holder`` holds
        the source's live lease (False, nothing written, if not)."""
        async with self._pool.acquire() as conn, conn.transaction():
            held = await conn.fetchval(
                """UPDATE sync_sources SET discovered_at = now()
                   WHERE source_id = $1 AND lease_holder = $2 AND lease_until > now() RETURNING true""",
                source_id, holder)
            if not held:
                return False
            await conn.execute(
                """INSERT INTO sync_discovered_clients AS d
                       (tenant_ref, source_id, client, vendor_client_id, mac_address, last_seen)
                   SELECT $1, $2, c.client, c.vendor_client_id, c.mac_address, c.last_seen
                   FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[])
                        AS c (client, vendor_client_id, mac_address, last_seen)
                   ON CONFLICT (source_id, client) DO UPDATE SET
                       vendor_client_id = EXCLUDED.vendor_client_id, mac_address = EXCLUDED.mac_address,
                       last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen), reported_at = now()""",
                tenant_ref, source_id, [c.client for c in clients], [c.client_id for c in clients],
                [c.mac_address for c in clients], [c.last_seen for c in clients])
            await conn.execute(
                """DELETE FROM sync_discovered_clients
                   WHERE source_id = $1 AND reported_at < now() - make_interval(secs => $2)""",
                source_id, DISCOVERED_RETENTION.total_seconds())
        return True

    async def sweep_done(self, source_id: str, *, holder: str, seconds: float, clients: int, requests: int) -> bool:
        """Record a full sweep that just ended, if ``holder`` still holds the
        source's live lease."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                """UPDATE sync_sources SET last_sweep_at = now(), last_sweep_seconds = $3,
                          last_sweep_clients = $4, last_sweep_requests = $5
                   WHERE source_id = $1 AND lease_holder = $2 AND lease_until > now() RETURNING true""",
                source_id, holder, seconds, clients, requests,
            ) is not None

    async def sweep(self, source_id: str) -> Sweep:
        """A source's last sweep and discovery (empty if none yet)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT discovered_at, last_sweep_at AS ended_at, last_sweep_seconds AS seconds,
                          last_sweep_clients AS clients, last_sweep_requests AS requests, next_poll_at
                   FROM sync_sources WHERE source_id = $1""", source_id)
        return Sweep(**dict(row)) if row else Sweep()
