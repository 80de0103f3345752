"""The SQL of the insights (``connlog.query.insights``): per-step counts and
failure reasons aggregated in PostgreSQL (from the connection rollups where
they can answer, ``connlog.store.rollups``, and raw events elsewhere: the
same answer either way), and the light event rows sessions and time to
connect are computed from.

Every statement is keyed by the tenant first (``$1``) and narrowed by the
same filters as a listing (``connlog.store.events``), so it runs on the same
indexes: ``(network_ref, occurred_at, id)`` for a network,
``(tenant_ref, occurred_at, dedup_key)`` for a tenant, the per-client
``(tenant_ref, client_mac|client_id, occurred_at, id)`` for a client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from connlog.store.events import EventFilter, listing_conditions
from connlog.store.partitions import Connection
from connlog.store.rollups import (
    AGGREGATES,
    DAILY,
    DAY,
    HOUR,
    HOURLY,
    ROLLUP_FILTERS,
    Level,
    event_units,
    rollup_units,
    watermark,
)

# The dimensions a group key can have, each as the SQL expressions of its
# columns (an access point is its serial, or its name when it has no serial;
# a client is its MAC, or its id when it has no MAC).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "network": ("n.network_id",),
    "access_point": ("e.ap_serial", "CASE WHEN e.ap_serial IS NULL THEN e.ap_name END"),
    "ssid": ("e.ssid",),
    "band": ("e.band",),
    "client": ("e.client_mac::text", "CASE WHEN e.client_mac IS NULL THEN e.client_id END"),
    "failure_category": ("e.failure_code",),
    "step": ("e.step",),
}
# Text columns are ordered bytewise, whatever the database's collation.
_TEXT = {"n.network_id", "e.ap_serial", "CASE WHEN e.ap_serial IS NULL THEN e.ap_name END", "e.ssid",
         "e.client_mac::text", "CASE WHEN e.client_mac IS NULL THEN e.client_id END"}


@dataclass(frozen=True)
class Grouping:
    """What rows are grouped by: dimensions (names of ``DIMENSIONS``, in
    order) and, optionally, time buckets of ``bucket`` aligned to ``origin``."""

    dimensions: tuple[str, ...]
    bucket: dt.timedelta | None = None
    origin: dt.datetime | None = None

    def width(self) -> int:
        """How many key columns a row starts with."""
        return sum(len(DIMENSIONS[d]) for d in self.dimensions) + (1 if self.bucket else 0)


def _key_columns(grouping: Grouping, args: list[object]) -> list[str]:
    """The key expressions of ``grouping`` (parameters appended to ``args``)."""
    columns = [expression for d in grouping.dimensions for expression in DIMENSIONS[d]]
    if grouping.bucket is not None:
        args.extend((grouping.bucket, grouping.origin))
        columns.append(f"date_bin(${len(args) - 1}::interval, e.occurred_at, ${len(args)}::timestamptz)")
    return columns


def _order(columns: list[str]) -> list[str]:
    return [f"{c} COLLATE \"C\" NULLS FIRST" if c in _TEXT else f"{c} NULLS FIRST" for c in columns]


def _select_keys(columns: list[str]) -> str:
    return "".join(f"{c} AS k{i}, " for i, c in enumerate(columns))


def _floor(when: dt.datetime, width: dt.timedelta) -> dt.datetime:
    """The start of the UTC hour or day (``width``) holding ``when``."""
    when = when.astimezone(dt.UTC)
    return when.replace(minute=0, second=0, microsecond=0, hour=0 if width == DAY else when.hour)


def _whole(start: dt.datetime, end: dt.datetime, width: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    """The whole hours or days ``[lo, hi)`` inside ``[start, end)`` (lo >= hi: none)."""
    lo = _floor(start, width)
    return (lo if lo >= start else lo + width), _floor(end, width)


@dataclass(frozen=True)
class RollupRange:
    """``[start, end)``: whole hours or days read from ``level``'s rollups."""

    level: Level
    start: dt.datetime
    end: dt.datetime


def rollup_ranges(flt: EventFilter, grouping: Grouping) -> list[RollupRange]:
    """The parts of a summary the rollups can answer, in order and
    contiguous: the whole UTC days inside the range from the daily rollups,
    the whole hours before the first whole day and after the last (or all
    the whole hours, if no whole day) from the hourly ones. None of it (an
    empty list) when a filter or dimension the rollups lack is asked (client,
    access point name, BSSID, SSID number, vendor, severity), or the range
    holds no whole hour. Time buckets: days only when the buckets are whole
    days from a day's start, hours when whole hours from an hour's start,
    else none."""
    if flt.start is None or flt.end is None or "client" in grouping.dimensions:
        return []
    for f in dataclasses.fields(flt):
        value = getattr(flt, f.name)
        if f.name not in ("start", "end") and value is not None and value != [] and f.name not in ROLLUP_FILTERS:
            return []
    days = True
    if grouping.bucket is not None:
        origin = grouping.origin or flt.start
        if grouping.bucket % HOUR or _floor(origin, HOUR) != origin:
            return []
        days = not grouping.bucket % DAY and _floor(origin, DAY) == origin
    lo, hi = _whole(flt.start, flt.end, HOUR)
    if lo >= hi:
        return []
    day_lo, day_hi = _whole(flt.start, flt.end, DAY)
    if not days or day_lo >= day_hi:
        return [RollupRange(HOURLY, lo, hi)]
    parts = [RollupRange(HOURLY, lo, day_lo), RollupRange(DAILY, day_lo, day_hi), RollupRange(HOURLY, day_hi, hi)]
    return [part for part in parts if part.start < part.end]


class SummaryReader:
    """The reads of one summary, in one snapshot (``InsightStore.summary``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def cells(
        self, tenant_ref: int, flt: EventFilter, grouping: Grouping, limit: int, *, use_rollups: bool = True
    ) -> list[asyncpg.Record]:
        """Per group, step, outcome and failure code: ``events``,
        ``first_at``, ``last_at`` and ``last_id`` (the most recent event),
        the key columns first (``k0``...), ordered by key then step; at most
        ``limit`` rows.

        The whole days and hours the rollups can answer
        (``rollup_ranges``) are read from them for the feed below the
        watermark, and raw for the events from it on; the rest of the range
        (the partial hours at its edges, or all of it) raw. Rollup rows and
        events are aggregated as the same units with the same expressions
        (``connlog.store.rollups``), so either way the answer is the raw
        events' (``use_rollups`` False: read every event raw)."""
        where, args = listing_conditions(tenant_ref, dataclasses.replace(flt, start=None, end=None), None, False)

        def param(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        extra = {"client_mac": "e.client_mac", "client_id": "e.client_id"} if "client" in grouping.dimensions else {}
        raw = f"SELECT {event_units(extra)} FROM connection_events e WHERE {where}"
        ranges = rollup_ranges(flt, grouping) if use_rollups else []
        if ranges:
            ranges = await self._whole_edge_hours(ranges, flt, where, list(args))
        branches = []
        edges = [(flt.start, flt.end)] if not ranges else [(flt.start, ranges[0].start), (ranges[-1].end, flt.end)]
        for start, end in edges:
            if start is not None and end is not None and start >= end:
                continue
            bounds = ([f"e.occurred_at >= {param(start)}"] if start is not None else []) + (
                [f"e.occurred_at < {param(end)}"] if end is not None else [])
            branches.append(" AND ".join([raw, *bounds]))
        if ranges:
            # (an edge hour read from the rollups reaches past the range: the
            # raw events past the watermark are bounded by the range itself)
            lo = param(max(ranges[0].start, flt.start) if flt.start is not None else ranges[0].start)
            hi = param(min(ranges[-1].end, flt.end) if flt.end is not None else ranges[-1].end)
            # the feed from the watermark on, found on the (stored_xid, id) index
            mark = param(await watermark(self._conn))
            branches.append(f"{raw} AND e.occurred_at >= {lo} AND e.occurred_at < {hi} AND e.stored_xid >= {mark}")
            for part in ranges:
                column = f"e.{part.level.column}"
                branches.append(f"SELECT {rollup_units(part.level)} FROM {part.level.table} e WHERE {where} "
                                f"AND {column} >= {param(part.start)} AND {column} < {param(part.end)}")
        keys = _key_columns(grouping, args)
        group = ", ".join([*(str(i) for i in range(1, len(keys) + 1)), "e.step", "e.outcome", "e.failure_code"])
        order = ", ".join([*_order(keys), "e.step"])
        measures = ", ".join(f"{expression} AS {name}" for name, expression in AGGREGATES.items())
        args.append(limit)
        union = "\n                    UNION ALL ".join(branches)
        sql = f"""WITH e AS ({union})
                  SELECT {_select_keys(keys)}e.step AS step, e.outcome AS outcome,
                         e.failure_code AS failure_code, {measures}
                  FROM e JOIN networks n USING (network_ref)
                  GROUP BY {group}
                  ORDER BY {order}
                  LIMIT ${len(args)}"""
        return await self._conn.fetch(sql, *args)

    async def _whole_edge_hours(self, ranges: list[RollupRange], flt: EventFilter, where: str,
                                args: list[object]) -> list[RollupRange]:
        """``ranges`` with the partial hours at the range's edges added as
        hourly rollups where their rows hold no event outside the range
        (the hour holding the range's start: none before it, by the rows'
        ``first_at``; the hour holding its end: none at or after it, by
        ``last_at``), so that they are not read raw. A week ending now
        holds the current hour, whose events (all before now) would
        otherwise be read one by one. Rows of the summary's filters only
        (``where``, ``args``: its conditions without the time range)."""
        assert flt.start is not None and flt.end is not None
        edge = (f"SELECT min(e.first_at) AS earliest, max(e.last_at) AS latest FROM {HOURLY.table} e "
                f"WHERE {where} AND e.hour = ${len(args) + 1}")
        first, last = ranges[0], ranges[-1]
        head = _floor(flt.start, HOUR)
        if head < flt.start and head + HOUR == first.start:
            earliest = await self._conn.fetchval(edge, *args, head, column=0)
            if earliest is None or earliest >= flt.start:
                ranges = ([RollupRange(HOURLY, head, first.end)] if first.level is HOURLY
                          else [RollupRange(HOURLY, head, first.start), *ranges]) + ranges[1:]
        tail = _floor(flt.end, HOUR)
        if tail < flt.end and tail == last.end:
            latest = await self._conn.fetchval(edge, *args, tail, column=1)
            if latest is None or latest < flt.end:
                last = ranges[-1]
                ranges = ranges[:-1] + ([RollupRange(HOURLY, last.start, tail + HOUR)] if last.level is HOURLY
                                        else [last, RollupRange(HOURLY, tail, tail + HOUR)])
        return ranges

    async def payloads(self, tenant_ref: int, events: Sequence[tuple[int, dt.datetime]]) -> dict[int, bytes]:
        """The payloads of events by (id, occurred_at), by id."""
        if not events:
            return {}
        rows = await self._conn.fetch(
            """SELECT e.id, e.payload FROM connection_events e
               JOIN unnest($2::bigint[], $3::timestamptz[]) AS k(id, occurred_at)
                 ON e.id = k.id AND e.occurred_at = k.occurred_at
               WHERE e.tenant_ref = $1""",
            tenant_ref, [i for i, _ in events], [at for _, at in events])
        return {row["id"]: row["payload"] for row in rows}


class InsightStore:
    """The insights' reads (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def summary(self) -> AsyncIterator[SummaryReader]:
        """A summary's reads, in one read-only snapshot (the rollups, their
        watermark and the raw events as of one moment). Plans are made for
        the actual values (the watermark decides whether the feed's
        ``(stored_xid, id)`` index is the way in)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            yield SummaryReader(conn)

    async def timeline(
        self,
        tenant_ref: int,
        flt: EventFilter,
        *,
        after: tuple[dt.datetime, int] | None = None,
        descending: bool = False,
        by_client: bool = False,
        limit: int,
    ) -> Sequence[asyncpg.Record]:
        """Light rows of the events matching ``flt`` (``TIMELINE_COLUMNS``),
        in (occurred_at, id) order (``descending``: newest first) strictly
        beyond the keyset position ``after``; ``by_client``: ordered by the
        client (MAC, else id) first. At most ``limit`` rows."""
        where, args = listing_conditions(tenant_ref, flt, after, descending)
        direction = "DESC" if descending else "ASC"
        client = "COALESCE(e.client_mac::text, e.client_id) COLLATE \"C\", " if by_client else ""
        args.append(limit)
        sql = f"""SELECT {TIMELINE_COLUMNS}
                  FROM connection_events e JOIN networks n USING (network_ref)
                  WHERE {where}
                  ORDER BY {client}e.occurred_at {direction}, e.id {direction}
                  LIMIT ${len(args)}"""
        async with self._pool.acquire() as conn:
            return await conn.fetch(sql, *args)


# What a timeline row holds: the filterable columns and the payload (for
# failure reasons, subtypes and connection-timing facts).
TIMELINE_COLUMNS = ", ".join((
    "e.id", "n.network_id", "e.occurred_at", "e.step", "e.outcome", "e.band", "e.vendor",
    "e.client_mac::text AS client_mac", "e.client_id", "e.ssid", "e.ap_serial", "e.ap_name",
    "e.bssid::text AS bssid", "e.failure_code", "e.payload",
))
