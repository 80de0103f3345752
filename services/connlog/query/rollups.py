"""The rollup maintainer: keeps the rollups (hourly and daily) up to date from the
commit feed (``connlog.store.rollups``), run by every query process.

One process at a time folds: the one holding a PostgreSQL session advisory
lock (``connlog.store.feed.FOLDER_LOCK_ID``) on a connection of its own; the others check now and
then, and take over when that connection ends (its lock goes with it). The
holder folds on every feed notification (``connlog.store.feed.CHANNEL``)
and at least every ``rollup_period_seconds`` (events stored by paths that
do not notify, such as a bulk SQL load), each fold covering a span of
transaction ids sized to take about ``rollup_fold_seconds``, until the
rollups hold every final event. A failed pass (the database away, a fold
refused) is logged and retried after ``rollup_retry_seconds`` on a new
connection; since a fold and its watermark commit together, nothing is
counted twice or lost. Summaries never wait for it: they read the rollups
below the watermark and the raw events from it on, in one snapshot.

The lag is exported on the query service's ``/metrics``:
``connlog_rollup_lag_seconds`` (0 while no final event waits to be rolled
up, else the time since the rollups last held every one),
``connlog_rollup_lag_transactions`` (transaction ids between the watermark
and the feed's horizon), ``connlog_rollup_folds_total`` and
``connlog_rollup_failures_total``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from connlog.core.logging import get_logger
from connlog.core.settings import Settings
from connlog.store.feed import CHANNEL, FOLDER_LOCK_ID
from connlog.store.rollups import Fold, fold, status, try_lock

FIRST_SPAN, MAX_SPAN = 1 << 12, 1 << 40  # transaction ids per fold: where the adaptation starts, at most

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class RollupMaintainer:
    """Folds the feed into the rollups while ``run`` runs (see the module
    docstring); its state is read by ``RollupCollector``."""

    def __init__(self, settings: Settings, connect: Connect) -> None:
        self._settings = settings
        self._connect = connect
        self._span = FIRST_SPAN
        self._log = get_logger("rollups")
        self.holder = False
        self.lag_seconds = 0.0
        self.lag_transactions = 0
        self.folds = 0
        self.failures = 0
        self._caught_up_at = dt.datetime.now(dt.UTC)
        # set after every pass (for waiting on one in tests: never polled)
        self.passed = asyncio.Event()

    async def run(self) -> None:
        """Maintain until cancelled; a failed pass is logged, then retried
        on a new connection."""
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away, a fold refused: log and try again
                self.failures += 1
                self.holder = False
                self._log.error("rollup maintenance failed", error=type(error).__name__, detail=str(error),
                                retry_seconds=self._settings.rollup_retry_seconds)
                await asyncio.sleep(self._settings.rollup_retry_seconds)

    async def _session(self) -> None:
        conn = await self._connect()
        woken = asyncio.Event()

        def wake(*_: object) -> None:
            woken.set()

        try:
            await conn.add_listener(CHANNEL, wake)
            loop = asyncio.get_running_loop()
            while True:
                woken.clear()
                began = loop.time()
                await self.pass_once(conn)
                rest = self._settings.rollup_fold_interval_seconds - (loop.time() - began)
                if self.holder and rest > 0:
                    # (a pace, not a wait for anything: what is stored meanwhile is folded by the next pass)
                    await asyncio.sleep(rest)
                try:  # the holder wakes on notifications, a standby only checks now and then
                    await asyncio.wait_for(woken.wait() if self.holder else asyncio.Event().wait(),
                                           self._settings.rollup_period_seconds)
                except TimeoutError:
                    pass
        finally:
            self.holder = False
            conn.terminate()  # (a close could wait on a broken connection; the lock goes with the session)

    async def pass_once(self, conn: asyncpg.Connection) -> None:
        """Fold until the rollups hold every final event, if this process
        holds the lock (taking it if free); otherwise read the lag."""
        if not self.holder:
            self.holder = await try_lock(conn, FOLDER_LOCK_ID)
            if self.holder:
                self._log.info("maintaining the rollups")
        if self.holder:
            while not (done := await self._fold(conn)).caught_up:
                self._lag(done)
            self._caught_up_at = dt.datetime.now(dt.UTC)
            self.lag_seconds, self.lag_transactions = 0.0, 0
        else:
            now = await status(conn)
            self.lag_seconds = now.lag_seconds(dt.datetime.now(dt.UTC))
            self.lag_transactions = max(0, now.horizon - now.watermark)
        self.passed.set()
        self.passed = asyncio.Event()

    async def _fold(self, conn: asyncpg.Connection) -> Fold:
        began = time.monotonic()
        done = await fold(conn, self._span, self._settings.rollup_fold_max_events)
        took = time.monotonic() - began
        self.folds += 1
        target = self._settings.rollup_fold_seconds
        # the next span: halved after a fold that took too long, doubled
        # after one that took a quarter of the target and filled its span
        if took > target:
            self._span = max(1, self._span // 2)
        elif took < target / 4 and done.upper - done.lower >= self._span:
            self._span = min(MAX_SPAN, self._span * 2)
        return done

    def _lag(self, done: Fold) -> None:
        self.lag_seconds = max(0.0, (dt.datetime.now(dt.UTC) - self._caught_up_at).total_seconds())
        self.lag_transactions = max(0, done.horizon - done.upper)


class RollupCollector:
    """The maintainer's lag and counts on a service's ``/metrics``."""

    def __init__(self, maintainer: RollupMaintainer) -> None:
        self._maintainer = maintainer

    def collect(self) -> Iterator[Metric]:
        m = self._maintainer
        lag = GaugeMetricFamily("connlog_rollup_lag_seconds",
                                "Seconds since the rollups last held every final event (0: they do)")
        lag.add_metric([], m.lag_seconds)
        behind = GaugeMetricFamily("connlog_rollup_lag_transactions",
                                   "Transaction ids between the rollups' watermark and the feed's horizon")
        behind.add_metric([], m.lag_transactions)
        holder = GaugeMetricFamily("connlog_rollup_maintaining", "1 while this process maintains the rollups")
        holder.add_metric([], 1 if m.holder else 0)
        folds = CounterMetricFamily("connlog_rollup_folds", "Folds of the feed into the rollups by this process")
        folds.add_metric([], m.folds)
        failures = CounterMetricFamily("connlog_rollup_failures", "Failed rollup maintenance passes (retried)")
        failures.add_metric([], m.failures)
        yield from (lag, behind, holder, folds, failures)
