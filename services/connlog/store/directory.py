"""The client directory's reads (migration 0016): a tenant's networks, and a
network's clients most recently seen first, searched by a prefix of the MAC
address or of the client id. The directory is written by the rollup fold
only (``connlog.store.rollups.FOLD``) and trimmed by retention
(``connlog.store.rollups.forget``).

Every statement is keyed by the tenant first (``$1``). A listing runs on
``client_directory_recent`` (tenant, network, last seen descending, key
descending): keyset pages in that order. A search runs on the prefix
indexes (``client_directory_mac`` on the MAC's 12 hex digits,
``client_directory_id`` on ``lower(client_id)``, both ``text_pattern_ops``)
and sorts the matches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

# (last seen, client key): a keyset position in a network's client list
ClientPosition = tuple[dt.datetime, str]


@dataclass(frozen=True, slots=True)
class ClientSearch:
    """What a search matches: a prefix of the MAC's hex digits (lower
    case, no separators) and / or a LIKE pattern over ``lower(client_id)``
    (escaped, ending in ``%``); neither: every client."""

    mac_digits: str | None = None
    id_pattern: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryClient:
    """One client of the directory."""

    client_key: str
    client_mac: str | None
    client_id: str | None
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    events: int
    failures: int

    @property
    def position(self) -> ClientPosition:
        return self.last_seen_at, self.client_key


@dataclass(frozen=True, slots=True)
class DirectoryNetwork:
    """One network of a tenant, and its latest event in the directory."""

    network_id: str
    name: str
    last_event_at: dt.datetime | None


_CLIENT_COLUMNS = """d.client_key, d.client_mac::text AS client_mac, d.client_id, d.first_seen_at, d.last_seen_at,
       d.events, d.failures"""


def clients_sql(search: ClientSearch, *, after: bool) -> str:
    """The listing statement: $1 tenant, $2 network, $3 limit, then the
    position ($4 last seen, $5 key) when ``after``, then the search's
    patterns in the order MAC digits, client id."""
    conditions = ["d.tenant_ref = $1", "d.network_ref = $2"]
    number = 3
    if after:
        conditions.append("(d.last_seen_at, d.client_key) < ($4, $5)")
        number = 5
    matches = []
    if search.mac_digits is not None:
        number += 1
        matches.append(f"(d.client_mac IS NOT NULL AND d.mac_digits LIKE ${number})")
    if search.id_pattern is not None:
        number += 1
        matches.append(f"(d.client_id IS NOT NULL AND lower(d.client_id) LIKE lower(${number}))")
    if matches:
        conditions.append("(" + " OR ".join(matches) + ")")
    return (f"SELECT {_CLIENT_COLUMNS} FROM client_directory d WHERE {' AND '.join(conditions)} "
            "ORDER BY d.last_seen_at DESC, d.client_key DESC LIMIT $3")


NETWORKS = """SELECT n.network_id, n.name,
       (SELECT d.last_seen_at FROM client_directory d WHERE d.tenant_ref = $1 AND d.network_ref = n.network_ref
        ORDER BY d.last_seen_at DESC, d.client_key DESC LIMIT 1) AS last_event_at
FROM networks n
WHERE n.tenant_ref = $1 AND n.network_id COLLATE "C" > $2
ORDER BY n.network_id COLLATE "C" LIMIT $3"""


class DirectoryStore:
    """Reads the client directory (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def clients(self, tenant_ref: int, network_ref: int, search: ClientSearch, *, limit: int,
                      after: ClientPosition | None = None) -> list[DirectoryClient]:
        """Up to ``limit`` clients of the network matching ``search``, most
        recently seen first (ties: key descending), strictly after ``after``."""
        args: list[object] = [tenant_ref, network_ref, limit]
        if after is not None:
            args += list(after)
        if search.mac_digits is not None:
            args.append(search.mac_digits + "%")
        if search.id_pattern is not None:
            args.append(search.id_pattern)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(clients_sql(search, after=after is not None), *args)
        return [DirectoryClient(r["client_key"], r["client_mac"], r["client_id"], r["first_seen_at"],
                                r["last_seen_at"], r["events"], r["failures"]) for r in rows]

    async def networks(self, tenant_ref: int, *, limit: int, after: str = "") -> list[DirectoryNetwork]:
        """Up to ``limit`` networks of the tenant with ids (bytewise) after
        ``after``, in that order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(NETWORKS, tenant_ref, after, limit)
        return [DirectoryNetwork(r["network_id"], r["name"], r["last_event_at"]) for r in rows]
