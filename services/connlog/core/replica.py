"""The query service's read replica (``database_read_url``).

Reads that may be stale (events, vendor read shapes, insights) go to a pool
on a hot standby; everything that must be current stays on the primary (see
docs/operations.md, "Reads off the primary"). This module holds that pool
and keeps track of whether the replica is fit to serve:

* reachable: the health check's own connection answers;
* current enough: its replay lag is at most ``database_read_max_lag_seconds``
  (0: no bound). The lag is tracked here, not read from
  ``now() - pg_last_xact_replay_timestamp()`` (which, after a quiet spell,
  counts the quiet as lag): when WAL is seen received but not replayed, the
  replica is behind since then, until it has replayed that much; while it
  hears from no primary (no WAL receiver) it is behind since it stopped.
  It errs short by at most one check period, never long.

While it is not fit, ``DatabaseWatch`` (connlog.core.server) makes the
service NOT_SERVING; while it is too far behind ``ensure_current`` refuses
reads (UNAVAILABLE with Retry-After at the edge). There is no fallback onto
the primary: the primary was sized without these reads, and a fleet of
query processes moving onto it at once would slow every write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric

from connlog.core.database import ReplicationState, create_pool, replication_state
from connlog.core.settings import Settings

# A received LSN no replay reaches: the replica hears from no primary.
_CUT_OFF = 1 << 64


@dataclass
class ReplayTracker:
    """How long a replica has been behind, from its replication states seen
    over time (``observe``; times in seconds of a monotonic clock)."""

    pending: int | None = None  # a received LSN not replayed when first seen (or _CUT_OFF)
    since: float | None = None  # when the replica fell behind

    def observe(self, now: float, state: ReplicationState) -> float:
        """The lag in seconds after seeing ``state`` at ``now`` (0: current)."""
        if not state.in_recovery:  # a primary (the read URL reaches a promoted server): current
            self.pending = self.since = None
            return 0.0
        if not state.streaming or state.received is None or state.replayed is None:
            if self.since is None:
                self.since = now
            self.pending = _CUT_OFF
            return now - self.since
        if self.pending == _CUT_OFF:  # heard from its primary again: current once it replays what it has
            self.pending = state.received
        if self.pending is not None and state.replayed >= self.pending:
            self.pending = self.since = None
        if self.pending is None and state.replayed < state.received:
            self.pending, self.since = state.received, now
        return 0.0 if self.since is None else now - self.since


class ReadReplica:
    """The read pool of a query process and whether its server is fit to
    serve reads (see the module docstring); ``check`` is run by the
    service's ``DatabaseWatch``."""

    def __init__(self, settings: Settings, url: str, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._url = url
        self._max_lag = settings.database_read_max_lag_seconds
        self._timeout = max(settings.database_check_seconds, 2.0)
        self._conn: asyncpg.Connection | None = None  # the check's own, outside the pool
        self._tracker = ReplayTracker()
        self.reachable = True
        self.lag_seconds = 0.0

    @classmethod
    async def open(cls, settings: Settings, url: str) -> ReadReplica:
        """The replica at ``url``, its pool opened without connecting (a
        replica that is down when the service starts makes it NOT_SERVING,
        not fail to start)."""
        return cls(settings, url, await create_pool(settings, url, min_size=0))

    @property
    def behind(self) -> bool:
        """Whether its replay lag is past the bound."""
        return self._max_lag > 0 and self.lag_seconds > self._max_lag

    @property
    def fit(self) -> bool:
        return self.reachable and not self.behind

    def describe(self) -> str:
        if not self.reachable:
            return "the read replica is unreachable"
        if self.behind:
            return f"the read replica is {self.lag_seconds:.1f} s behind (bound {self._max_lag:g} s)"
        return "the read replica is current"

    def ensure_current(self) -> None:
        """Raise (a transient error: UNAVAILABLE at the edge) while the
        replica is further behind than the bound. An unreachable replica is
        not refused here: the read itself fails, or succeeds once it is back."""
        if self.behind:
            raise asyncpg.exceptions.CannotConnectNowError(self.describe())

    async def check(self, now: float) -> bool:
        """Ask the replica for its replay state; whether it is fit."""
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._url, timeout=self._timeout)
            state = await replication_state(self._conn, self._timeout)
        except Exception:  # any failure to reach it counts as unreachable
            await self._close_connection()
            self.reachable = False
            return False
        self.reachable = True
        self.lag_seconds = self._tracker.observe(now, state)
        return not self.behind

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        await self._close_connection()
        await self.pool.close()


class ReplicaCollector:
    """The replica's state on a service's ``/metrics``."""

    def __init__(self, replica: ReadReplica) -> None:
        self._replica = replica

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("connlog_read_replica_up", "1 while the read replica answers its health check")
        up.add_metric([], 1 if self._replica.reachable else 0)
        lag = GaugeMetricFamily("connlog_read_replica_lag_seconds",
                                "How long the read replica has been behind in replay (0: current)")
        lag.add_metric([], self._replica.lag_seconds)
        yield from (up, lag)
