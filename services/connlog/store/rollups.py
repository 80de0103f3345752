"""Connection rollups (migrations 0009, 0014) and the client directory
(0016): the counts behind the connection summary and the client listing,
kept up to date from the commit feed, exactly once.

``connection_rollups`` holds, per network, UTC hour of occurrence and
bounded dimension (``ROLLUP_DIMENSIONS``), how many events there are, their
first and last occurrence and the id of the most recent one;
``connection_rollups_daily`` the same per UTC day (``LEVELS``: a long range
reads ~24 times fewer rows); ``client_directory`` per network and client
(its MAC, else its client id) the first and last occurrence and the event
and failure counts, with ``client_directory_days`` the same per UTC day
(what retention subtracts: ``forget``). The watermark row says how far the
feed is rolled up: every event with ``stored_xid`` below its ``xid`` (and
every event stored before 0008, rolled up by 0009) is counted in both
levels and in the directory, no other. ``fold`` counts the next range of
final transactions into all of them (one statement) and advances the
watermark in one transaction: a crash leaves everything as it was, and the
``FOR UPDATE`` on the watermark row makes two folders take turns (so a
range is never counted twice). Duplicates are never stored
(``connection_events``' dedup key), so they are never counted.

A rollup row and a raw event are read alike, as *units* (``UNIT_COLUMNS``:
an event is a unit of one); the fold and the summary aggregate units with
the same expressions (``AGGREGATES``), so the rollup and the raw paths of
the summary cannot drift apart (``connlog.store.insights``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from connlog.store.feed import HORIZON

# a connection of its own, or one acquired from a pool
Connection = asyncpg.Connection | PoolConnectionProxy

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# hours and days are binned from this origin (UTC, whatever the session's zone)
ORIGIN = "'2000-01-01 00:00:00+00'::timestamptz"


@dataclass(frozen=True)
class Level:
    """A level of rollups: rows per ``interval`` of occurrence (binned from
    ``ORIGIN``) in ``table``, the start of each in ``column``, unique by
    ``key`` (tenant, network, time, the other dimensions; NULLS NOT DISTINCT)."""

    interval: str
    table: str
    column: str
    key: str

    @property
    def bin(self) -> str:
        """The expression binning an event's occurrence to this level."""
        return f"date_bin('{self.interval}', e.occurred_at, {ORIGIN})"


# (0014 renamed the hourly key from connection_rollups_key, and 0016 from
# connection_rollups_hour_key, so that a fold of a version before either,
# which knows no daily rollups or no client directory, fails instead of
# leaving them short)
HOURLY = Level("1 hour", "connection_rollups", "hour", "connection_rollups_hourly_key")
DAILY = Level("1 day", "connection_rollups_daily", "day", "connection_rollups_day_key")
LEVELS = (HOURLY, DAILY)

# The dimensions of a rollup row, each as the expression over an event (the
# access point's name only for an event without a serial: the access point
# key of connlog.store.insights.DIMENSIONS).
ROLLUP_DIMENSIONS: dict[str, str] = {
    "tenant_ref": "e.tenant_ref",
    "network_ref": "e.network_ref",
    "hour": HOURLY.bin,
    "ap_serial": "e.ap_serial",
    "ap_name": "CASE WHEN e.ap_serial IS NULL THEN e.ap_name END",
    "ssid": "e.ssid",
    "band": "e.band",
    "step": "e.step",
    "outcome": "e.outcome",
    "failure_code": "e.failure_code",
}
# A unit's columns besides its dimensions: how many events it counts, their
# first and last occurrence, the id of the most recent (by occurrence, then id).
MEASURES = ("events", "first_at", "last_at", "last_id")
# The measures of units aggregated (by the fold, and by the summary).
AGGREGATES: dict[str, str] = {
    "events": "sum(e.events)::bigint",
    "first_at": "min(e.first_at)",
    "last_at": "max(e.last_at)",
    "last_id": "(array_agg(e.last_id ORDER BY e.last_at DESC, e.last_id DESC))[1]",
}
# The filters of connlog.store.events.listing_conditions a rollup row can
# answer (its columns bear the same names and meaning).
ROLLUP_FILTERS = frozenset({"network_ref", "steps", "outcomes", "bands", "failure_codes", "ssid", "ap_serial"})


def event_units(extra: dict[str, str] | None = None) -> str:
    """The SELECT list reading events of ``connection_events e`` as units
    (``occurred_at``: the event's time; ``extra``: more columns by name)."""
    columns = {name: expression for name, expression in ROLLUP_DIMENSIONS.items() if name != "hour"}
    columns |= {"occurred_at": "e.occurred_at", "events": "1::bigint", "first_at": "e.occurred_at",
                "last_at": "e.occurred_at", "last_id": "e.id"} | (extra or {})
    return ", ".join(f"{expression} AS {name}" for name, expression in columns.items())


def rollup_units(level: Level = HOURLY) -> str:
    """The SELECT list reading rows of ``level``'s table ``e`` as units
    (``occurred_at``: the hour's or day's start)."""
    columns = [f"e.{name}" for name in ROLLUP_DIMENSIONS if name != "hour"]
    return ", ".join([*columns, f"e.{level.column} AS occurred_at", *(f"e.{m}" for m in MEASURES)])


def _upsert(level: Level, source: str) -> str:
    """Add the units of ``source`` (``CTE e``), aggregated per row of
    ``level``, to its table."""
    names = [level.column if d == "hour" else d for d in ROLLUP_DIMENSIONS]
    group = ", ".join(f"e.{d}" for d in names)
    return f"""INSERT INTO {level.table} AS r ({", ".join(names)}, {", ".join(MEASURES)})
    SELECT {group}, {", ".join(AGGREGATES.values())}
    FROM {source} e
    GROUP BY {group}
    ON CONFLICT ON CONSTRAINT {level.key} DO UPDATE SET
        events = r.events + EXCLUDED.events,
        first_at = least(r.first_at, EXCLUDED.first_at),
        last_at = greatest(r.last_at, EXCLUDED.last_at),
        last_id = CASE WHEN (EXCLUDED.last_at, EXCLUDED.last_id) > (r.last_at, r.last_id)
                       THEN EXCLUDED.last_id ELSE r.last_id END
    RETURNING 1"""


# A client's key in the directory: its MAC's text, else its client id (the
# ``{client}`` of its resource name, as ListClientSessions reads it).
CLIENT_KEY = "coalesce(e.client_mac::text, e.client_id)"
FAILURE = 2  # connlog.api.v1.Outcome.OUTCOME_FAILURE

# The directory's part of the fold: the batch's clients per day (``c``),
# added to the day rows and, per client, to the directory (a client's
# client id: the one of its latest event that has one).
_CLIENT_DAYS = """INSERT INTO client_directory_days AS r (tenant_ref, network_ref, client_key, day, events, failures,
                                               first_at, last_at)
    SELECT c.tenant_ref, c.network_ref, c.client_key, c.day, c.events, c.failures, c.first_at, c.last_at
    FROM clients c
    ON CONFLICT (tenant_ref, network_ref, client_key, day) DO UPDATE SET
        events = r.events + EXCLUDED.events,
        failures = r.failures + EXCLUDED.failures,
        first_at = least(r.first_at, EXCLUDED.first_at),
        last_at = greatest(r.last_at, EXCLUDED.last_at)
    RETURNING 1"""
_DIRECTORY = """INSERT INTO client_directory AS r (tenant_ref, network_ref, client_key, client_mac, client_id,
                                          client_id_at, first_seen_at, last_seen_at, events, failures)
    SELECT c.tenant_ref, c.network_ref, c.client_key,
           (array_agg(c.client_mac) FILTER (WHERE c.client_mac IS NOT NULL))[1],
           (array_agg(c.client_id ORDER BY c.client_id_at DESC) FILTER (WHERE c.client_id IS NOT NULL))[1],
           max(c.client_id_at), min(c.first_at), max(c.last_at), sum(c.events)::bigint, sum(c.failures)::bigint
    FROM clients c
    GROUP BY c.tenant_ref, c.network_ref, c.client_key
    ON CONFLICT (tenant_ref, network_ref, client_key) DO UPDATE SET
        client_mac = coalesce(r.client_mac, EXCLUDED.client_mac),
        client_id = CASE WHEN r.client_id_at IS NULL OR EXCLUDED.client_id_at >= r.client_id_at
                         THEN coalesce(EXCLUDED.client_id, r.client_id) ELSE r.client_id END,
        client_id_at = greatest(r.client_id_at, EXCLUDED.client_id_at),
        first_seen_at = least(r.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = greatest(r.last_seen_at, EXCLUDED.last_seen_at),
        events = r.events + EXCLUDED.events,
        failures = r.failures + EXCLUDED.failures
    RETURNING 1"""

# Deliberately multi-tenant: one fold counts every tenant's events of a feed
# range, into both levels and the client directory in one statement (the
# events are aggregated once per hour: the hourly rows; the days aggregate
# those hours, as units with the same AGGREGATES, keyed by the day of the
# events' occurrence; and once per client and day: the directory's rows).
FOLD = f"""
WITH batch AS MATERIALIZED (
    SELECT {event_units({"hour": HOURLY.bin, "day": DAILY.bin, "client_key": CLIENT_KEY,
                         "client_mac": "e.client_mac", "client_id": "e.client_id"})}
    FROM connection_events e
    WHERE e.stored_xid >= $1 AND e.stored_xid < $2
), clients AS MATERIALIZED (
    SELECT e.tenant_ref, e.network_ref, e.client_key, e.day, count(*) AS events,
           count(*) FILTER (WHERE e.outcome = {FAILURE}) AS failures,
           min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at,
           (array_agg(e.client_mac) FILTER (WHERE e.client_mac IS NOT NULL))[1] AS client_mac,
           (array_agg(e.client_id ORDER BY e.occurred_at DESC, e.last_id DESC)
                FILTER (WHERE e.client_id IS NOT NULL))[1] AS client_id,
           max(e.occurred_at) FILTER (WHERE e.client_id IS NOT NULL) AS client_id_at
    FROM batch e
    WHERE e.client_key IS NOT NULL
    GROUP BY e.tenant_ref, e.network_ref, e.client_key, e.day
), client_days AS (
    {_CLIENT_DAYS}
), directory AS (
    {_DIRECTORY}
), hours AS MATERIALIZED (
    SELECT {", ".join(f"e.{d}" for d in ROLLUP_DIMENSIONS)}, e.day,
           {", ".join(f"{expression} AS {name}" for name, expression in AGGREGATES.items())}
    FROM batch e
    GROUP BY {", ".join(f"e.{d}" for d in ROLLUP_DIMENSIONS)}, e.day
), hourly AS (
    {_upsert(HOURLY, "hours")}
), daily AS (
    {_upsert(DAILY, "hours")}
)
SELECT (SELECT count(*) FROM hourly) AS hours, (SELECT count(*) FROM daily) AS days,
       (SELECT count(*) FROM directory) AS clients, (SELECT count(*) FROM client_days) AS client_days
"""


@dataclass(frozen=True)
class Fold:
    """What one fold did: the watermark before and after (``upper``), the
    feed's horizon when it ran, and the rows it wrote (hourly rollups,
    ``days``: daily rollups, ``clients``: directory entries)."""

    lower: int
    upper: int
    horizon: int
    rows: int
    days: int = 0
    clients: int = 0

    @property
    def caught_up(self) -> bool:
        """Every final event is rolled up (as of this fold)."""
        return self.upper >= self.horizon


# Deliberately multi-tenant (the watermark is one for all tenants): the
# transaction id of the feed's ($3 + 1)-th event from $1 on, below $2 (a
# fold of at most $3 events ends before it); read on the feed's
# (stored_xid, id) index.
FOLD_LIMIT = """SELECT e.stored_xid FROM connection_events e
                WHERE e.stored_xid >= $1 AND e.stored_xid < $2
                ORDER BY e.stored_xid OFFSET $3 LIMIT 1"""


async def fold(conn: asyncpg.Connection, span: int, max_events: int | None = None) -> Fold:
    """Fold the events of the next ``span`` transaction ids after the
    watermark (at most up to the feed's horizon; with ``max_events``, fewer
    ids where they hold more events than that, but at least one) into the
    rollups and advance the watermark, in one transaction.

    ``max_events`` bounds one fold's work after a backlog. (The feed's
    readers do not wait for a fold in progress: the maintainer's session
    holds ``FOLDER_LOCK_ID``, ``connlog.store.feed.READER_HORIZON``.)"""
    async with conn.transaction():
        lower: int = await conn.fetchval("SELECT xid FROM connection_rollup_watermark FOR UPDATE")
        head: int = await conn.fetchval(f"SELECT {HORIZON}")
        upper = max(lower, min(head, lower + span))
        if max_events is not None and upper > lower:
            beyond: int | None = await conn.fetchval(FOLD_LIMIT, lower, upper, max_events)
            if beyond is not None:
                upper = max(beyond, lower + 1)
        rows = days = clients = 0
        if upper > lower:
            written = await conn.fetchrow(FOLD, lower, upper)
            assert written is not None
            rows, days, clients = written["hours"], written["days"], written["clients"]
            await conn.execute(
                """UPDATE connection_rollup_watermark SET xid = $1, updated_at = now(),
                       caught_up_at = CASE WHEN $2 THEN now() ELSE caught_up_at END""",
                upper, upper >= head)
        return Fold(lower, upper, head, rows, days, clients)


@dataclass(frozen=True)
class RollupStatus:
    """How far behind the rollups are: the watermark, the feed's horizon,
    whether final events wait to be rolled up, and since when the rollups
    held every final event."""

    watermark: int
    horizon: int
    pending: bool
    caught_up_at: dt.datetime

    def lag_seconds(self, now: dt.datetime) -> float:
        """0 while nothing final waits; else the time since the rollups
        last held every final event."""
        return max(0.0, (now - self.caught_up_at).total_seconds()) if self.pending else 0.0


# Whether any final event of any tenant waits to be rolled up (deliberately
# multi-tenant: the watermark is one for all tenants).
STATUS = f"""SELECT w.xid, w.caught_up_at, {HORIZON} AS horizon,
                    EXISTS (SELECT 1 FROM connection_events e
                            WHERE e.stored_xid >= w.xid AND e.stored_xid < {HORIZON}) AS pending
             FROM connection_rollup_watermark w"""


async def status(conn: asyncpg.Connection) -> RollupStatus:
    """The rollups' status now (one snapshot; the pending events are found
    on the ``(stored_xid, id)`` index, migration 0015)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(STATUS)
    assert row is not None  # (0009 inserts the one row)
    return RollupStatus(row["xid"], row["horizon"], row["pending"], row["caught_up_at"])


async def watermark(conn: Connection) -> int:
    """The watermark (in the caller's snapshot)."""
    value: int = await conn.fetchval("SELECT xid FROM connection_rollup_watermark")
    return value


async def try_lock(conn: asyncpg.Connection, lock_id: int) -> bool:
    """Take the maintainer's session advisory lock if no other session has
    it (released when ``conn`` closes)."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_id)
    return taken


async def forget(conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
    """Delete the rollup rows of the hours and days in ``[start, end)``, and
    take those days out of the client directory (whole UTC days; retention:
    in the transaction that drops those days' events)."""
    await conn.execute(FORGET_HOURS, start, end)
    await conn.execute(FORGET_DAYS, start, end)
    await conn.execute(FORGET_CLIENTS, start, end)


# Every tenant's rollups of the hours / days [$1, $2): deliberately
# multi-tenant (retention drops a whole day of every tenant).
FORGET_HOURS = "DELETE FROM connection_rollups WHERE hour >= $1 AND hour < $2"
FORGET_DAYS = "DELETE FROM connection_rollups_daily WHERE day >= $1 AND day < $2"
# Every tenant's client directory without the days [$1, $2): a client with
# no other day is deleted; the others lose those days' counts and take their
# first and last occurrence from the days kept; then the day rows go
# (deliberately multi-tenant, as the two above). The CTEs all read the day
# rows as they were before the statement.
FORGET_CLIENTS = """
WITH lost AS (
    SELECT d.tenant_ref, d.network_ref, d.client_key, sum(d.events)::bigint AS events,
           sum(d.failures)::bigint AS failures
    FROM client_directory_days d WHERE d.day >= $1 AND d.day < $2
    GROUP BY d.tenant_ref, d.network_ref, d.client_key
), kept AS (
    SELECT d.tenant_ref, d.network_ref, d.client_key, min(d.first_at) AS first_at, max(d.last_at) AS last_at
    FROM client_directory_days d JOIN lost l USING (tenant_ref, network_ref, client_key)
    WHERE d.day < $1 OR d.day >= $2
    GROUP BY d.tenant_ref, d.network_ref, d.client_key
), gone AS (
    DELETE FROM client_directory c USING lost l
    WHERE c.tenant_ref = l.tenant_ref AND c.network_ref = l.network_ref AND c.client_key = l.client_key
      AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.tenant_ref = l.tenant_ref AND k.network_ref = l.network_ref
                      AND k.client_key = l.client_key)
    RETURNING 1
), changed AS (
    UPDATE client_directory c
    SET events = c.events - l.events, failures = c.failures - l.failures, first_seen_at = k.first_at,
        last_seen_at = k.last_at
    FROM lost l JOIN kept k USING (tenant_ref, network_ref, client_key)
    WHERE c.tenant_ref = l.tenant_ref AND c.network_ref = l.network_ref AND c.client_key = l.client_key
    RETURNING 1
)
DELETE FROM client_directory_days WHERE day >= $1 AND day < $2
"""
