"""Daily partitions of ``connection_events``: created ahead, dropped behind.

Partition ``connection_events_pYYYYMMDD`` holds the events that occurred on
that UTC day. Days from ``retention_days + 1`` back to ``ahead_days`` ahead
exist; partitions whose whole day is older than the retention are dropped
(``maintain_partitions``; connlog.store.retention runs it). Ingest only ever
creates the partitions of the days it writes (``create_partitions``). Both
take the same advisory lock: runs anywhere at once are safe.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# a connection of its own, or one acquired from a pool
Connection = asyncpg.Connection | PoolConnectionProxy

_PARENT = "connection_events"
_NAME = re.compile(r"^connection_events_p(\d{8})$")
_LOCK_ID = 0x636C5F70617274  # "cl_part"


@dataclass(frozen=True)
class PartitionChanges:
    """What one maintenance run changed."""

    created: list[str]
    dropped: list[str]


def partition_name(day: dt.date) -> str:
    return f"{_PARENT}_p{day:%Y%m%d}"


async def existing_partitions(conn: Connection) -> dict[str, dt.date]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname = $1""",
        _PARENT,
    )
    found = {}
    for row in rows:
        match = _NAME.match(row["relname"])
        if match:
            found[row["relname"]] = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    return found


async def maintain_partitions(
    conn: Connection,
    *,
    retention_days: int,
    ahead_days: int,
    now: dt.datetime | None = None,
) -> PartitionChanges:
    """Create the missing partitions of the window and drop expired ones
    (and the rollup rows of their days: connlog.store.rollups)."""
    from connlog.store.rollups import forget  # (rollups -> feed -> events -> this module)

    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(dt.UTC).date()
    cutoff = now - dt.timedelta(days=retention_days)
    first_day = cutoff.astimezone(dt.UTC).date()
    created, dropped = [], []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        existing = await existing_partitions(conn)
        day = first_day
        while day <= today + dt.timedelta(days=ahead_days):
            if partition_name(day) not in existing:
                created.append(await _create(conn, day))
            day += dt.timedelta(days=1)
        for name, day in sorted(existing.items()):
            day_end = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1)
            if day_end <= cutoff:
                await conn.execute(f'DROP TABLE "{name}"')
                # the day's rollups go with its events, in the same transaction
                await forget(conn, day_end - dt.timedelta(days=1), day_end)
                dropped.append(name)
    return PartitionChanges(created, dropped)


async def create_partitions(conn: Connection, days: Iterable[dt.date]) -> list[str]:
    """Create the partitions of ``days`` that do not exist yet, and nothing
    else (no day is dropped); returns the names created."""
    created = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        existing = await existing_partitions(conn)
        for day in sorted(set(days)):
            if partition_name(day) not in existing:
                created.append(await _create(conn, day))
    return created


async def _create(conn: Connection, day: dt.date) -> str:
    name = partition_name(day)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    # Identifiers cannot be parameters; the name is built from a date only,
    # the bounds are ISO timestamps we format ourselves.
    await conn.execute(
        f'CREATE TABLE "{name}" PARTITION OF {_PARENT} '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    return name
