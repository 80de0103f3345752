"""Token buckets shared by every replica, in the table ``rate_buckets``
(migration 0011).

A take is ONE statement (``INSERT … ON CONFLICT DO UPDATE``): PostgreSQL
locks the bucket's row, refills it by the time elapsed since its last take
on the database's clock (``now()``; a take whose clock is behind the row's
refills nothing and keeps the row's time: refills are only ever
under-counted), grants or refuses by ``connlog.core.budgets.granted`` and
stores what is left. Concurrent takers in any number of processes are
serialised on the row, so together they never take more than
``burst + rate × elapsed`` (plus the debt of one over-burst take).

A row that would be full by now (``full_at`` passed) is the same as no row,
and ``sweep`` deletes such rows: the table holds only buckets in use.
"""

from __future__ import annotations

import asyncio

import asyncpg
from structlog.typing import FilteringBoundLogger

from connlog.core.budgets import Ask, Budget, Take

# The most seconds full_at looks ahead: a bucket taking longer to refill (a
# rate under burst / 1e9 per second) may be swept, and start full, early.
FULL_AT_MAX_SECONDS = 1e9

# $1 scope, $2 key, $3 rate, $4 burst, $5 need, $6 least, $7 most: the same
# arithmetic as connlog.core.budgets (refill, granted); a new bucket is full.
_TAKE = f"""
INSERT INTO rate_buckets AS b (scope, key, tokens, taken, updated_at, full_at)
SELECT $1, $2, $4::float8 - g.taken, g.taken, now(),
       now() + make_interval(secs => least(g.taken / $3::float8, {FULL_AT_MAX_SECONDS}))
  FROM (SELECT CASE WHEN $4::float8 >= $5::float8 THEN greatest($6::float8, least($7::float8, $4::float8))
                    ELSE 0 END AS taken) g
ON CONFLICT (scope, key) DO UPDATE SET (tokens, taken, updated_at, full_at) = (
    SELECT s.available - s.taken, s.taken, s.at,
           s.at + make_interval(secs => least(($4::float8 - s.available + s.taken) / $3::float8,
                                              {FULL_AT_MAX_SECONDS}))
      FROM (SELECT a.available, a.at,
                   CASE WHEN a.available >= $5::float8 THEN greatest($6::float8, least($7::float8, a.available))
                        ELSE 0 END AS taken
              FROM (SELECT greatest(b.updated_at, now()) AS at,
                           least($4::float8, b.tokens + $3::float8
                                 * greatest(0, extract(epoch FROM now() - b.updated_at)::float8)) AS available) a
           ) s)
RETURNING tokens, taken
"""

_SWEEP = """
DELETE FROM rate_buckets
 WHERE (scope, key) IN (SELECT scope, key FROM rate_buckets WHERE full_at < now() LIMIT $1)
   AND full_at < now()
"""


class SharedBuckets:
    """Buckets in the database, shared by every process using it (a
    ``connlog.core.budgets.BucketStore``). Failures (the database out of
    reach) are raised as they are: callers answer them UNAVAILABLE."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def take(self, scope: str, key: str, budget: Budget, ask: Ask) -> Take:
        row = await self._pool.fetchrow(_TAKE, scope, key, budget.rate, budget.burst, ask.need, ask.least, ask.most)
        assert row is not None  # an upsert returns its row
        return Take(row["taken"], row["tokens"])

    async def sweep(self, limit: int = 10_000) -> int:
        """Delete up to ``limit`` buckets that are full by now; how many."""
        status = await self._pool.execute(_SWEEP, limit)
        return int(status.rsplit(" ", 1)[1])

    async def sweep_forever(self, every_seconds: float, log: FilteringBoundLogger) -> None:
        """Sweep full buckets every ``every_seconds`` (a failed sweep is
        logged and tried again at the next)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                swept = await self.sweep()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning("rate bucket sweep failed", error=type(exc).__name__)
            else:
                if swept:
                    log.debug("rate buckets swept", count=swept)
