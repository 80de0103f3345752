"""Daily partitions of ``connection_events``: created ahead, dropped behind.

Partition ``connection_events_pYYYYMMDD`` holds the events that occurred on
that UTC day. Days from ``retention_days + 1`` back to ``ahead_days`` ahead
exist; partitions whose whole day is older than the retention are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import asyncpg

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


async def existing_partitions(conn: asyncpg.Connection) -> dict[str, dt.date]:
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
    conn: asyncpg.Connection,
    *,
    retention_days: int,
    ahead_days: int,
    now: dt.datetime | None = None,
) -> PartitionChanges:
    """Create the missing partitions of the window and drop expired ones."""
    now = now or dt.datetime.now(dt.timezone.utc)
    today = now.astimezone(dt.timezone.utc).date()
    cutoff = now - dt.timedelta(days=retention_days)
    first_day = cutoff.astimezone(dt.timezone.utc).date()
    created, dropped = [], []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        existing = await existing_partitions(conn)
        day = first_day
        while day <= today + dt.timedelta(days=ahead_days):
            name = partition_name(day)
            if name not in existing:
                start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
                end = start + dt.timedelta(days=1)
                # Identifiers cannot be parameters; the name is built from a
                # date only, the bounds are ISO timestamps we format ourselves.
                await conn.execute(
                    f'CREATE TABLE "{name}" PARTITION OF {_PARENT} '
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
                created.append(name)
            day += dt.timedelta(days=1)
        for name, day in sorted(existing.items()):
            day_end = dt.datetime.combine(day, dt.time(), dt.timezone.utc) + dt.timedelta(days=1)
            if day_end <= cutoff:
                await conn.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
    return PartitionChanges(created, dropped)
