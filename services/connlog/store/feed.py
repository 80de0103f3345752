"""The commit feed: stored events in the order their transactions made them
final (migration 0008), for readers that must see every new event exactly
once (the live tail, the rollups).

A position is ``(stored_xid, id)``. ``read_after`` returns the events after a
position up to the *horizon*, the current snapshot's xmin: every transaction
with a smaller id has ended, and any later one gets a larger id, so nothing
can ever appear between two positions a reader has passed. An event becomes
readable once every transaction that began writing before its own has ended
(normally within milliseconds; a long-running write, such as a large bulk
load, holds the horizon back until it ends). ``read_facts_after`` reads the
same events' filterable columns only (``FACT_COLUMNS``, no payload), and
``read_events`` whole events by key: the live tail's follower matches on
the former and reads payloads only for what it matched.

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
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import asyncpg

from connlog.core.logging import get_logger
from connlog.store.events import EventFilter, EventRow, ReadEvent, filter_conditions, read_event
from connlog.store.row import READ_COLUMNS

CHANNEL = "connlog_events"

# The feed's horizon: every transaction id below it has ended.
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

# The session advisory lock the rollup maintainer holds while it folds
# (``connlog.query.rollups``): its session's transactions write no events.
FOLDER_LOCK_ID = 0x636C5F726F6C6C  # "cl_roll"

# The horizon of the feed's readers (the live tail): every transaction id
# below it has ended, or is the rollup maintainer's fold in progress, which
# stores no event (found by its advisory lock: no other session can hold
# it). A fold takes up to ``rollup_fold_seconds`` and used to hold every
# event stored meanwhile back from the live tail until it committed.
READER_HORIZON = f"""coalesce(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) x
     WHERE xid(x) NOT IN (SELECT a.backend_xid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                            AND (l.classid::bigint << 32 | l.objid::bigint) = {FOLDER_LOCK_ID}
                            AND a.backend_xid IS NOT NULL)),
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"""


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


# The columns a listing filters on (connlog.store.events.listing_conditions):
# what the live tail matches a watch's filter against
# (connlog.query.event_match), as stored (NULL: None).
FACT_COLUMNS = ("network_ref", "occurred_at", "step", "outcome", "severity", "band", "vendor", "client_id",
                "client_mac", "ssid", "ssid_number", "ap_serial", "ap_name", "bssid", "failure_code")


class EventFacts(Protocol):
    """An event's ``FACT_COLUMNS`` by name: a row read with them (an
    asyncpg Record), or any mapping of them."""

    def __getitem__(self, column: str, /) -> Any: ...


class FeedEvent(NamedTuple):
    """An event read from the feed, with its tenant and feed position, and
    its row's ``FACT_COLUMNS`` (``facts``)."""

    tenant_ref: int
    network_ref: int
    position: FeedPosition
    event: ReadEvent
    facts: EventFacts


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
    value: int = await conn.fetchval(f"SELECT {READER_HORIZON}")
    return FeedPosition(value)


# The feed after ($1, $2) below the horizon $3, at most $4 events: of the
# tenant $5 (a watch's catch-up), or of every tenant (READ_ALL: no service
# sends it; it is not keyed by tenant, so tests/test_citus_ready.py would
# flag it: see docs/operations.md "Moving to Citus").
_READ_ONLY_FACTS = ", ".join(
    f"e.{name}" for name in FACT_COLUMNS if f"e.{name}" not in READ_COLUMNS.split(", "))  # (network_ref, step ...)
_READ = f"""SELECT {READ_COLUMNS}, e.tenant_ref, e.stored_xid, {_READ_ONLY_FACTS}
            FROM connection_events e JOIN networks n USING (network_ref)
            WHERE e.stored_xid >= $1 AND e.stored_xid < $3
              AND (e.stored_xid, e.id) > ($1, $2){{tenant}}
            ORDER BY e.stored_xid, e.id
            LIMIT $4"""
READ_ALL = _READ.format(tenant="")
READ_TENANT = _READ.format(tenant="\n              AND e.tenant_ref = $5")


async def read_after(
    conn: asyncpg.Connection, after: FeedPosition, limit: int, *, tenant_ref: int | None = None
) -> FeedPage:
    """Up to ``limit`` final events after ``after``, in feed order (of one
    tenant, or of every tenant). The horizon and the events are read in one
    snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head: int = await conn.fetchval(f"SELECT {READER_HORIZON}")
        if tenant_ref is None:
            rows = await conn.fetch(READ_ALL, after.xid, after.event_id, head, limit, record_class=EventRow)
        else:
            rows = await conn.fetch(READ_TENANT, after.xid, after.event_id, head, limit, tenant_ref,
                                    record_class=EventRow)
    events = [
        FeedEvent(row["tenant_ref"], row["network_ref"], FeedPosition(row["stored_xid"], row["id"]), read_event(row),
                  row)
        for row in rows
    ]
    return FeedPage(events, head, len(events) < limit)


class FactsPage(NamedTuple):
    """The facts of the events after a position (``read_facts_after``): rows
    of ``tenant_ref``, ``id``, ``stored_xid`` and ``FACT_COLUMNS``, in feed
    order, and the horizon, as in a ``FeedPage``."""

    rows: list[asyncpg.Record]
    horizon: int
    complete: bool

    def last(self, after: FeedPosition) -> FeedPosition:
        """Where the next read starts (as ``FeedPage.last``)."""
        if self.complete:
            return max(after, FeedPosition(self.horizon))
        return position_of(self.rows[-1]) if self.rows else after


def position_of(row: asyncpg.Record) -> FeedPosition:
    """The feed position of a row read with ``stored_xid`` and ``id``."""
    return FeedPosition(row["stored_xid"], row["id"])


# The feed after ($1, $2) below the horizon $3, at most $4 events, of the
# tenants $5: the facts only (no payload, no network id), for the live tail's
# follower, which reads whole events only for what some watch matched. The
# tenants are a filter on the rows the feed's range finds, never an index
# condition ("IS TRUE": the planner cannot use it as one): a day's partition
# not analysed yet would otherwise be read by its tenant index, every event
# of those tenants that day for each page. {watches}: the watches' filters
# (``watch_conditions``), so that PostgreSQL returns only the events some
# watch wants; the follower still reads the whole range of the feed (that
# is what advances it), but an event no watch wants costs no row sent,
# decoded or matched in Python. They too are a filter only ("IS TRUE"): a
# watch of a network or a client must not lead the planner to that
# network's or client's index, every event of it in every partition.
_READ_FACTS = f"""SELECT e.tenant_ref, e.id, e.stored_xid, {", ".join(f"e.{name}" for name in FACT_COLUMNS)}
                 FROM connection_events e
                 WHERE e.stored_xid >= $1 AND e.stored_xid < $3
                   AND (e.stored_xid, e.id) > ($1, $2){{watches}}
                   AND (e.tenant_ref = ANY($5::int[])) IS TRUE
                 ORDER BY e.stored_xid, e.id
                 LIMIT $4"""
READ_FACTS = _READ_FACTS.format(watches="")

# Filters of more watches than this are matched in Python only (the
# statement would grow with them).
MAX_SQL_WATCH_FILTERS = 32


def watch_conditions(filters: Sequence[tuple[int, EventFilter]], first_param: int) -> tuple[str, list[object]]:
    """``filters`` (tenant, filter) as one SQL condition an event passes when
    it passes any of them, its parameters numbered from ``first_param``."""
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${first_param + len(args) - 1}"

    branches = []
    for tenant_ref, flt in filters:
        conditions = [f"e.tenant_ref = {param(tenant_ref)}", *filter_conditions(flt, param)]
        branches.append("(" + " AND ".join(conditions) + ")")
    return "(" + " OR ".join(branches) + ")", args


async def read_facts_after(
    conn: asyncpg.Connection, after: FeedPosition, limit: int, tenant_refs: Sequence[int],
    filters: Sequence[tuple[int, EventFilter]] | None = None,
) -> FactsPage:
    """The facts of up to ``limit`` final events of ``tenant_refs`` after
    ``after``, in feed order: ``read_after``'s events (the same ordering,
    horizon and snapshot), without their payloads; with ``filters`` (of
    those tenants), only the events that pass one of them (a page cut short
    by the limit still ends at its last row: the events skipped before it
    passed none)."""
    statement = READ_FACTS
    args: list[object] = []
    if filters:
        condition, args = watch_conditions(filters, 6)
        statement = _READ_FACTS.format(watches=f"\n                   AND {condition} IS TRUE")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head: int = await conn.fetchval(f"SELECT {READER_HORIZON}")
        rows = await conn.fetch(statement, after.xid, after.event_id, head, limit, list(tenant_refs), *args)
    return FactsPage(rows, head, len(rows) < limit)


# Whole events by key ($1 tenant_refs, $2 ids, $3 occurred_ats; $4 the
# distinct tenant_refs): each key probes the primary key of the one partition
# of its occurred_at (LATERAL: a probe per key whatever the statistics say,
# never a scan of the tenants' events).
READ_KEYED = f"""SELECT {READ_COLUMNS}
                 FROM unnest($1::int[], $2::bigint[], $3::timestamptz[]) AS k(tenant_ref, id, occurred_at)
                 CROSS JOIN LATERAL (
                   SELECT * FROM connection_events e
                   WHERE e.tenant_ref = k.tenant_ref AND e.id = k.id AND e.occurred_at = k.occurred_at
                     AND e.tenant_ref = ANY($4::int[])
                   OFFSET 0) e
                 JOIN networks n ON n.network_ref = e.network_ref"""


async def read_events(
    conn: asyncpg.Connection, keys: Sequence[tuple[int, int, dt.datetime]]
) -> dict[int, ReadEvent]:
    """The stored events of ``keys`` (``(tenant_ref, id, occurred_at)``:
    a fact row's), by id, in one query."""
    if not keys:
        return {}
    rows = await conn.fetch(READ_KEYED, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                            sorted({k[0] for k in keys}), record_class=EventRow)
    return {row["id"]: read_event(row) for row in rows}


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
