"""Connection events: set-based inserts with database de-duplication, and
keyset-paginated reads."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.identifiers import event_name
from connlog.core.logging import get_logger
from connlog.store.partitions import Connection, create_partitions
from connlog.store.row import (
    COPY_COLUMNS,
    CREATE_STAGING_EMPTY,
    INSERT,
    INSERT_STAGED,
    INSERT_STAGED_QUIET,
    NETWORK_FIELD,
    READ_COLUMNS,
    RESTORED_SLICE,
    STAGING_TABLE,
    TABLE,
    CopyRows,
    StoredEvent,
    copy_rows,
    insert_order,
    restore_columns,
    restored_value,
)

__all__ = [
    "READ_COLUMNS", "CopiedRows", "EventFilter", "EventStore", "InsertOutcome", "NoPartitionError", "ReadEvent",
    "StoredEvent", "TenantBatch", "restore_columns",
]


@dataclass(frozen=True)
class InsertOutcome:
    """Where one inserted event ended up."""

    event_id: int
    new: bool


class CopiedRows(NamedTuple):
    """What ``EventStore.insert_copied`` stored: how many rows were new, and
    whether the direct COPY was refused (some were stored already)."""

    new: int
    copy_refused: bool


class TenantBatch(NamedTuple):
    """One tenant's events of a group (``EventStore.insert_group``):
    distinct (dedup_key, occurred_at), their networks in ``network_refs``."""

    tenant_ref: int
    events: Sequence[StoredEvent]
    network_refs: dict[str, int]


class EventRow(asyncpg.Record):
    """A row as asyncpg decodes it, columns in the order of ``READ_COLUMNS``
    (turned into a ``ReadEvent`` at once)."""


class ReadEvent:
    """One stored event as read back: its id, times and keyset position, and
    the whole stored event (``event``: the payload with the column-held
    fields put back).

    The put-back happens the first time ``event`` is read (~0.8 µs a row): a
    vendor projection that prints only some column-held fields reads the
    payload as parsed (``stored``) and those fields with ``column``, and
    never pays for it. The resource fields (name, id, receive time, tenant)
    are left to ``api_event``: only the canonical API prints them."""

    __slots__ = ("_event", "_row", "event_id", "occurred_at", "received_at")

    def __init__(
        self,
        event_id: int,
        occurred_at: dt.datetime,
        received_at: dt.datetime,
        event: pb.ConnectionEvent,
        row: EventRow | None = None,
    ) -> None:
        self.event_id = event_id
        self.occurred_at = occurred_at  # the stored time, to the microsecond (the keyset position)
        self.received_at = received_at
        self._event = event
        self._row = row  # the row whose columns are still to be put back into ``event``

    @property
    def position(self) -> tuple[dt.datetime, int]:
        return self.occurred_at, self.event_id

    @property
    def event(self) -> pb.ConnectionEvent:
        """The whole stored event."""
        row = self._row
        if row is not None:
            restore_columns(self._event, row[RESTORED_SLICE])
            self._row = None
        return self._event

    @property
    def stored(self) -> pb.ConnectionEvent:
        """The event as parsed: whole but for the column-held fields, which
        may still be empty (read them with ``column``)."""
        return self._event

    def column(self, name: str) -> str | None:
        """A column-held value by its column name (``store.row.RESTORED``):
        ``ap_serial``, ``client_mac`` ..."""
        row = self._row
        if row is not None:
            value: str | None = row[name]
            return value
        return restored_value(self._event, name)

    def api_event(self, tenant_id: str) -> pb.ConnectionEvent:
        """The event as the canonical API returns it: whole, with its
        resource name, id, receive time and tenant (set on ``event``)."""
        event = self.event
        event.name = event_name(event.network_id, self.event_id)
        event.event_id = str(self.event_id)
        event.tenant_id = tenant_id
        event.receive_time.FromDatetime(self.received_at)
        return event

    @classmethod
    def of(cls, event: pb.ConnectionEvent, event_id: int = 0) -> ReadEvent:
        """A whole event that does not come from the store, read like one
        that does (its occur_time as the stored time)."""
        when = event.occur_time.ToDatetime(tzinfo=dt.UTC)
        return cls(event_id, when, when, event)


def read_event(row: EventRow) -> ReadEvent:
    """The stored event of a row (hot path: one per row)."""
    event_id, network_id, occurred_at, received_at, payload = row[:5]  # row.READ_KEYS
    event = _parse(payload)
    event.network_id = network_id
    return ReadEvent(event_id, occurred_at, received_at, event, row)


_parse = pb.ConnectionEvent.FromString


@dataclass
class EventFilter:
    """Filters of a listing; None / empty means no filter."""

    network_ref: int | None = None
    client_id: str | None = None
    client_mac: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    steps: list[int] = field(default_factory=list)
    outcomes: list[int] = field(default_factory=list)
    severities: list[int] = field(default_factory=list)
    bands: list[int] = field(default_factory=list)
    ssid: str | None = None
    ssid_number: int | None = None
    ap_serial: str | None = None
    ap_name: str | None = None
    bssid: str | None = None
    failure_codes: list[int] = field(default_factory=list)
    vendor: int | None = None


class NoPartitionError(Exception):
    """An event's day has no partition, even after creating it."""


# Large batches travel by binary COPY into a per-connection staging table
# (asyncpg's array parameters check every element's type in Python, which
# costs more than the COPY), then one INSERT ... SELECT like the small path.
COPY_THRESHOLD = 64


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as what ``copy_to_table`` reads (asyncpg would take bytes
    themselves for a file's path)."""
    yield data


def _row_count(status: str) -> int:
    """Rows an ``INSERT 0 <n>`` command status reports."""
    return int(status.rsplit(" ", 1)[1])


_EXISTING = """
SELECT e.id, e.dedup_key, e.occurred_at
FROM connection_events e
JOIN unnest($2::bytea[], $3::timestamptz[]) AS k(dedup_key, occurred_at)
  ON e.dedup_key = k.dedup_key AND e.occurred_at = k.occurred_at
WHERE e.tenant_ref = $1
"""


EventKey = tuple[bytes, dt.datetime]  # what identifies a stored event within its tenant
T = TypeVar("T")



def _key(event: StoredEvent) -> EventKey:
    return event.dedup_key, event.occurred_at


@contextlib.contextmanager
def _partition_errors() -> Iterator[None]:
    """An insert into a day that has no partition raises NoPartitionError.
    PostgreSQL reports it as a check violation on the partitioned table that
    names no constraint (a CHECK constraint's violation names it); the
    message is not compared, since the server may print it in any language."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        if exc.table_name == TABLE and not exc.constraint_name:
            raise NoPartitionError(str(exc)) from exc
        raise


_NETWORK = StoredEvent._fields.index(NETWORK_FIELD)


def _columns(events: list[StoredEvent], network_refs: dict[str, int]) -> list[list]:
    """The parameters of ``INSERT``: one array per column (network ids
    replaced by their refs)."""
    columns = [list(column) for column in zip(*events, strict=True)]
    columns[_NETWORK] = [network_refs[network_id] for network_id in columns[_NETWORK]]
    return columns


def filter_conditions(flt: EventFilter, param: Callable[[object], str]) -> list[str]:
    """The conditions of ``flt`` on a row ``e`` of ``connection_events`` (its
    tenant aside), each value passed through ``param``, which adds it to the
    statement's parameters and returns its placeholder. The listing's and the
    live tail follower's (``connlog.store.feed.read_facts_after``) one
    definition; ``connlog.query.event_match`` is the same in Python."""
    where: list[str] = []
    if flt.network_ref is not None:
        where.append(f"e.network_ref = {param(flt.network_ref)}")
    if flt.client_id is not None:
        where.append(f"e.client_id = {param(flt.client_id)}")
    if flt.client_mac is not None:
        where.append(f"e.client_mac = {param(flt.client_mac)}::macaddr")
    if flt.start is not None:
        where.append(f"e.occurred_at >= {param(flt.start)}")
    if flt.end is not None:
        where.append(f"e.occurred_at < {param(flt.end)}")
    for column, values in (
        ("step", flt.steps),
        ("outcome", flt.outcomes),
        ("severity", flt.severities),
        ("band", flt.bands),
    ):
        if values:
            where.append(f"e.{column} = ANY({param(values)}::smallint[])")
    if flt.failure_codes:
        where.append(f"e.failure_code = ANY({param(flt.failure_codes)}::int[])")
    for column, value in (("ssid", flt.ssid), ("ap_serial", flt.ap_serial), ("ap_name", flt.ap_name)):
        if value is not None:
            where.append(f"e.{column} = {param(value)}")
    if flt.ssid_number is not None:
        where.append(f"e.ssid_number = {param(flt.ssid_number)}")
    if flt.bssid is not None:
        where.append(f"e.bssid = {param(flt.bssid)}::macaddr")
    if flt.vendor is not None:
        where.append(f"e.vendor = {param(flt.vendor)}")
    return where


def listing_conditions(
    tenant_ref: int, flt: EventFilter, after: tuple[dt.datetime, int] | None, descending: bool
) -> tuple[str, list[object]]:
    """The WHERE conditions of a listing (``flt``, strictly beyond the keyset
    position ``after`` in the listing's direction) and their parameters."""
    args: list[object] = [tenant_ref]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["e.tenant_ref = $1", *filter_conditions(flt, param)]
    if after is not None:
        op = "<" if descending else ">"
        position = param(after[0])
        # the plain bound lets any time-ordered index start at the position
        where.append(f"e.occurred_at {op}= {position}")
        where.append(f"(e.occurred_at, e.id) {op} ({position}, {param(after[1])})")
    return " AND ".join(where), args


class EventStore:
    """Data access for connection events."""

    def __init__(self, pool: asyncpg.Pool, *, on_stored: Callable[[], None] | None = None) -> None:
        self._pool = pool
        self._log = get_logger("store")
        # called after every committed write (the ingest service wakes the
        # commit feed's readers: connlog.store.feed.FeedNotifier)
        self._on_stored = on_stored

    async def insert(
        self, tenant_ref: int, events: Sequence[StoredEvent], network_refs: dict[str, int]
    ) -> list[InsertOutcome]:
        """Store events not stored yet, in one transaction. Events must have
        distinct (dedup_key, occurred_at), and their networks must exist
        (``network_refs``). Returns one outcome per event, in order."""
        if not events:
            return []

        async def write(conn: Connection, ordered: list[StoredEvent]) -> dict[EventKey, InsertOutcome]:
            return await self._insert_returning(conn, tenant_ref, ordered, network_refs)

        outcomes = await self._write(events, write)
        self._stored()
        return [outcomes[_key(e)] for e in events]

    async def insert_group(self, batches: Sequence[TenantBatch]) -> list[dict[EventKey, InsertOutcome]]:
        """Store several tenants' events in ONE transaction (group commit,
        ``connlog.ingest.group_commit``): one set-based INSERT per tenant,
        tenants in ref order and each tenant's rows in key order (concurrent
        groups take their locks in the same order). Either every batch is
        stored or none is; returns, per batch, every event's outcome by key
        once the transaction has committed."""
        order = sorted(range(len(batches)), key=lambda i: batches[i].tenant_ref)
        ordered = [sorted(batch.events, key=insert_order) for batch in batches]

        async def write(conn: Connection) -> list[dict[EventKey, InsertOutcome]]:
            found: list[dict[EventKey, InsertOutcome]] = [{} for _ in batches]
            # a transaction even for one tenant: the look-up of duplicates'
            # ids belongs to it, so a group that fails has stored nothing
            async with conn.transaction():
                for i in order:
                    batch = batches[i]
                    found[i] = await self._insert_returning(conn, batch.tenant_ref, ordered[i], batch.network_refs)
            return found

        found = await self._with_partitions(
            lambda: {e.occurred_at.astimezone(dt.UTC).date() for events in ordered for e in events}, write)
        self._stored()
        return found

    def _stored(self) -> None:
        if self._on_stored is not None:
            self._on_stored()

    async def insert_copied(
        self, rows: CopyRows, tenant_ref: int, network_refs: Mapping[str, int], *, copy_first: bool = True
    ) -> CopiedRows:
        """Store ``rows`` of tenant ``tenant_ref`` (``connlog.store.row.copy_rows``:
        distinct events in ``insert_order``; ``network_refs`` holds their
        networks' refs): how many were new.

        With ``copy_first`` the rows are copied straight into
        ``connection_events``: one statement, no staging table, and COPY's
        batched inserts (a third less of PostgreSQL's CPU per row than
        INSERT ... SELECT from a staged copy). Should one of them be stored
        already, the unique index refuses the COPY, which then stores
        nothing; the rows are then staged and inserted with ON CONFLICT DO
        NOTHING, as they are at once without ``copy_first``. Either way the
        count is exact and nothing is stored twice."""
        if not rows.row_count:
            return CopiedRows(0, False)
        data = rows.bound(network_refs)
        refused = False

        async def write(conn: Connection) -> int:
            nonlocal refused
            with _partition_errors():
                if copy_first and not refused:
                    try:
                        await conn.copy_to_table(TABLE, source=_chunks(data), columns=COPY_COLUMNS, format="binary")
                        return rows.row_count
                    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                        # (a deadlock too: a concurrent batch holding some of the same
                        # events waits on these; the staged INSERT below waits its turn)
                        refused = True
                return await self._insert_staged_counting(conn, tenant_ref, data)

        count = await self._with_partitions(lambda: rows.days, write)
        if count:
            self._stored()
        return CopiedRows(count, refused)

    async def _write(
        self, events: Sequence[StoredEvent], write: Callable[[Connection, list[StoredEvent]], Awaitable[T]]
    ) -> T:
        """Run one insert of ``events`` on a pooled connection, in key order
        (so that concurrent batches sharing events take their unique-index
        locks in the same order: no deadlock)."""
        ordered = sorted(events, key=insert_order)
        return await self._with_partitions(lambda: {e.occurred_at.astimezone(dt.UTC).date() for e in ordered},
                                           lambda conn: write(conn, ordered))

    async def _with_partitions(
        self, days: Callable[[], Iterable[dt.date]], write: Callable[[Connection], Awaitable[T]]
    ) -> T:
        """Run ``write`` on a pooled connection; should a day it writes have
        no partition, create the ``days()`` written and run it again."""
        async with self._pool.acquire() as conn:
            try:
                return await write(conn)
            except NoPartitionError:
                # Retention (connlog.store.retention) creates the days ahead;
                # should it not have run yet, the days written here are
                # created now (only created: dropping is retention's alone).
                created = await create_partitions(conn, days())
                self._log.info("partitions created for incoming events", created=created)
                return await write(conn)

    async def _insert_returning(
        self, conn: Connection, tenant_ref: int, events: list[StoredEvent], network_refs: dict[str, int]
    ) -> dict[EventKey, InsertOutcome]:
        """One INSERT ... RETURNING: every event's id, and whether it was new."""
        with _partition_errors():
            if len(events) >= COPY_THRESHOLD:
                async with conn.transaction():  # the staging rows live until the commit
                    await self._stage(conn, copy_rows(events, tenant_ref).bound(network_refs))
                    inserted = await conn.fetch(INSERT_STAGED, tenant_ref)
            else:  # one statement: atomic without BEGIN/COMMIT round trips
                inserted = await conn.fetch(INSERT, tenant_ref, *_columns(events, network_refs))
        outcomes = {(r["dedup_key"], r["occurred_at"]): InsertOutcome(r["id"], True) for r in inserted}
        missing = [e for e in events if _key(e) not in outcomes]
        if missing:
            # stored by someone else, and committed: ON CONFLICT waited for it
            rows = await conn.fetch(
                _EXISTING, tenant_ref, [e.dedup_key for e in missing], [e.occurred_at for e in missing]
            )
            outcomes.update({(r["dedup_key"], r["occurred_at"]): InsertOutcome(r["id"], False) for r in rows})
        return outcomes

    async def _insert_staged_counting(self, conn: Connection, tenant_ref: int, data: bytes) -> int:
        """Stage ``data`` (``CopyRows.bound``) and insert it with ON CONFLICT
        DO NOTHING, in one transaction: how many rows were new."""
        async with conn.transaction():  # the staging rows live until the commit
            await self._stage(conn, data)
            return _row_count(await conn.execute(INSERT_STAGED_QUIET, tenant_ref))

    @staticmethod
    async def _stage(conn: Connection, data: bytes) -> None:
        """Copy ``data`` (``CopyRows.bound``) into the session's staging table (inside the
        caller's transaction: the rows go at its commit), which then holds
        them alone: rows an earlier batch staged in the same transaction (a
        group commit writes several tenants' batches in one) are deleted
        first, or the next INSERT would take them too. The table is created
        the first time a session stages rows, and kept for the session."""
        await conn.execute(CREATE_STAGING_EMPTY)
        await conn.copy_to_table(STAGING_TABLE, source=_chunks(data), columns=COPY_COLUMNS, format="binary")

    async def get(self, tenant_ref: int, network_id: str, event_id: int) -> ReadEvent | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {READ_COLUMNS}
                   FROM connection_events e JOIN networks n USING (network_ref)
                   WHERE e.id = $1 AND e.tenant_ref = $2 AND n.network_id = $3""",
                event_id,
                tenant_ref,
                network_id,
                record_class=EventRow,
            )
        return None if row is None else read_event(row)

    async def client_exists(
        self, tenant_ref: int, network_ref: int | None, *, client_id: str | None = None, client_mac: str | None = None
    ) -> bool:
        """Whether any stored event is about this client (in this network)."""
        column, value = ("client_mac", client_mac) if client_mac else ("client_id", client_id)
        cast = "::macaddr" if client_mac else ""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                f"""SELECT EXISTS (SELECT 1 FROM connection_events
                    WHERE tenant_ref = $1 AND {column} = $2{cast} AND ($3::int IS NULL OR network_ref = $3))""",
                tenant_ref,
                value,
                network_ref,
            )

    async def list(
        self,
        tenant_ref: int,
        flt: EventFilter,
        *,
        after: tuple[dt.datetime, int] | None,
        descending: bool,
        limit: int,
    ) -> list[ReadEvent]:
        """Up to ``limit`` events matching ``flt`` in (occurred_at, id) order,
        strictly after the keyset position ``after``."""
        where, args = listing_conditions(tenant_ref, flt, after, descending)
        direction = "DESC" if descending else "ASC"
        sql = f"""SELECT {READ_COLUMNS}
                  FROM connection_events e JOIN networks n USING (network_ref)
                  WHERE {where}
                  ORDER BY e.occurred_at {direction}, e.id {direction}
                  LIMIT ${len(args) + 1}"""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args, limit, record_class=EventRow)
        return [read_event(row) for row in rows]

    async def any(
        self, tenant_ref: int, flt: EventFilter, *, after: tuple[dt.datetime, int] | None, descending: bool
    ) -> bool:
        """Whether any event matching ``flt`` lies beyond ``after`` (no row
        is read back)."""
        where, args = listing_conditions(tenant_ref, flt, after, descending)
        async with self._pool.acquire() as conn:
            found: bool = await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM connection_events e WHERE {where})", *args)
        return found
