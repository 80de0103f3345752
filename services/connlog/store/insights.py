"""The SQL of the insights (``connlog.query.insights``): per-step counts and
failure reasons aggregated in PostgreSQL, and the light event rows sessions
and time to connect are computed from.

Every statement is keyed by the tenant first (``$1``) and narrowed by the
same filters as a listing (``connlog.store.events``), so it runs on the same
indexes: ``(network_ref, occurred_at, id)`` for a network,
``(tenant_ref, occurred_at, dedup_key)`` for a tenant, the per-client
``(tenant_ref, client_mac|client_id, occurred_at, id)`` for a client.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.store.events import EventFilter, listing_conditions

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


class InsightStore:
    """The insights' reads (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def step_counts(
        self, tenant_ref: int, flt: EventFilter, grouping: Grouping, limit: int
    ) -> list[asyncpg.Record]:
        """Per group and step: ``events``, ``successes``, ``failures``, the
        key columns first (``k0``...), ordered by key then step; at most
        ``limit`` rows."""
        where, args = listing_conditions(tenant_ref, flt, None, False)
        keys = _key_columns(grouping, args)
        order = ", ".join([*_order(keys), "e.step"])
        group = ", ".join([*(str(i) for i in range(1, len(keys) + 1)), "e.step"])
        args.append(limit)
        sql = f"""SELECT {_select_keys(keys)}e.step AS step, count(*) AS events,
                         count(*) FILTER (WHERE e.outcome = {pb.OUTCOME_SUCCESS}) AS successes,
                         count(*) FILTER (WHERE e.outcome = {pb.OUTCOME_FAILURE}) AS failures
                  FROM connection_events e JOIN networks n USING (network_ref)
                  WHERE {where}
                  GROUP BY {group}
                  ORDER BY {order}
                  LIMIT ${len(args)}"""
        async with self._pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def failure_reasons(
        self, tenant_ref: int, flt: EventFilter, grouping: Grouping, limit: int
    ) -> list[asyncpg.Record]:
        """Per group, step and failure code of the failures: ``count``,
        ``first_at``, ``last_at`` and the ``payload`` of the most recent one
        (key columns first, as ``step_counts``); at most ``limit`` rows."""
        where, args = listing_conditions(tenant_ref, flt, None, False)
        keys = _key_columns(grouping, args)
        partition = ", ".join([*keys, "e.step", "e.failure_code"])
        key_names = "".join(f"k{i}, " for i in range(len(keys)))
        args.append(limit)
        sql = f"""SELECT {key_names}step, failure_code, count, first_at, last_at, payload FROM (
                    SELECT {_select_keys(keys)}e.step AS step, e.failure_code AS failure_code,
                           count(*) OVER w AS count, min(e.occurred_at) OVER w AS first_at,
                           max(e.occurred_at) OVER w AS last_at,
                           row_number() OVER (w ORDER BY e.occurred_at DESC, e.id DESC) AS latest,
                           e.payload AS payload
                    FROM connection_events e JOIN networks n USING (network_ref)
                    WHERE {where} AND e.outcome = {pb.OUTCOME_FAILURE}
                    WINDOW w AS (PARTITION BY {partition})
                  ) reasons
                  WHERE latest = 1
                  LIMIT ${len(args)}"""
        async with self._pool.acquire() as conn:
            return await conn.fetch(sql, *args)

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
