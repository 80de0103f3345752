"""The commit feed: stored events in the order their transactions made them
final (migration 0008), for readers that must see every new event exactly
once (the live tail, the rollups).

A position is ``(stored_xid, id)``. ``read_after`` returns the events after a
position up to the *horizon*, the current snapshot's xmin: every transaction
with a smaller id has ended, and any later one gets a larger id, so nothing
can ever appear between two positions a reader has passed. An event becomes
readable once every transaction that began writing before its own has ended
(normally within milliseconds; a long-running write, such as a large bulk
load, holds the horizon back until it ends).

Writers wake the readers with a notification on ``CHANNEL`` once their
events are committed (``FeedNotifier``: the ingest service after each
write, at most once per interval); readers ``LISTEN`` there, and poll now
and then for events stored by other paths (a bulk SQL load, a restore).
The notification is sent after the commit, in a statement of its own:
PostgreSQL serialises the commits of every transaction that notifies (a
global lock held through the commit's WAL flush), which would halve the
concurrent commit rate of ingest if the storing transaction notified.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg

from connlog.core.logging import get_logger
from connlog.store.events import EventRow, ReadEvent, read_event
from connlog.store.row import READ_COLUMNS

CHANNEL = "connlog_events"

# The feed's horizon: every transaction id below it has ended.
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


@dataclass(frozen=True, order=True, slots=True)
class FeedPosition:
    """A place in the feed: after the event ``event_id`` of transaction
    ``xid`` (``event_id`` 0: before every event of that transaction)."""

    xid: int
    event_id: int = 0

    def token(self) -> str:
        """The position as an opaque, URL-safe string."""
        raw = self.xid.to_bytes(8, "big") + self.event_id.to_bytes(8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> FeedPosition:
        """The position a ``token`` names; ValueError if it names none."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("not a feed position") from None
        if len(raw) != 16:
            raise ValueError("not a feed position")
        position = cls(int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"))
        if position.xid >= 2**63 or position.event_id >= 2**63:
            raise ValueError("not a feed position")
        return position


class FeedEvent(NamedTuple):
    """An event read from the feed, with its tenant and feed position."""

    tenant_ref: int
    network_ref: int
    position: FeedPosition
    event: ReadEvent


class FeedPage(NamedTuple):
    """Events after a position, in feed order, and the horizon they were
    read up to. ``complete``: every event before the horizon was returned
    (otherwise the limit cut the page short: read again from ``last``)."""

    events: list[FeedEvent]
    horizon: int
    complete: bool

    def last(self, after: FeedPosition) -> FeedPosition:
        """Where the next read starts: after the last event returned, or at
        the horizon when every event before it was returned."""
        if self.complete:
            return max(after, FeedPosition(self.horizon))
        return self.events[-1].position if self.events else after


async def horizon(conn: asyncpg.Connection) -> FeedPosition:
    """The position before every event not yet final: a new reader that
    starts here sees every event stored from now on (and possibly a few
    stored just before)."""
    value: int = await conn.fetchval(f"SELECT {HORIZON}")
    return FeedPosition(value)


async def read_after(
    conn: asyncpg.Connection, after: FeedPosition, limit: int, *, tenant_ref: int | None = None
) -> FeedPage:
    """Up to ``limit`` final events after ``after``, in feed order (of one
    tenant, or of every tenant). The horizon and the events are read in one
    snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head: int = await conn.fetchval(f"SELECT {HORIZON}")
        rows = await conn.fetch(
            f"""SELECT {READ_COLUMNS}, e.tenant_ref, e.network_ref, e.stored_xid
                FROM connection_events e JOIN networks n USING (network_ref)
                WHERE e.stored_xid >= $1 AND e.stored_xid < $3
                  AND (e.stored_xid, e.id) > ($1, $2)
                  AND ($5::int IS NULL OR e.tenant_ref = $5)
                ORDER BY e.stored_xid, e.id
                LIMIT $4""",
            after.xid,
            after.event_id,
            head,
            limit,
            tenant_ref,
            record_class=EventRow,
        )
    events = [
        FeedEvent(row["tenant_ref"], row["network_ref"], FeedPosition(row["stored_xid"], row["id"]), read_event(row))
        for row in rows
    ]
    return FeedPage(events, head, len(events) < limit)


class FeedNotifier:
    """Wakes the feed's readers after events are stored: ``stored()`` (cheap,
    never waits) asks for one ``NOTIFY`` on ``CHANNEL``; a task of its own
    sends it from a pooled connection, then waits ``interval`` seconds
    before the next one (every write in between is covered by it)."""

    def __init__(self, pool: asyncpg.Pool, interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("feed")

    def stored(self) -> None:
        """Events were committed: readers are to be woken soon."""
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="feed-notifier")

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # readers poll as well: a lost wake-up delays, never loses
                self._log.warning("feed notification not sent", error=type(error).__name__)
            await asyncio.sleep(self._interval)  # a rate limit, not a wait for anything

    def close(self) -> None:
        """Stop sending (a pending wake-up is dropped: readers poll)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


async def frontier(conn: asyncpg.Connection) -> int:
    """The id the next transaction will get: every event stored (or being
    stored) before this call has a smaller ``stored_xid``, so once the
    horizon reaches it all of them are readable (the live tail waits for
    that after a notification)."""
    value: int = await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
    return value
