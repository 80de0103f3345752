"""Retention: the daily partitions of ``connection_events`` kept to the window.

One run creates the partitions up to ``partitions_ahead_days`` ahead and
drops those wholly older than ``retention_days``
(``connlog.store.partitions.maintain_partitions`` does the SQL under an
advisory lock: runs in several places at once are safe). It runs

* in Kubernetes as the CronJob ``deploy/kubernetes/retention-cronjob.yaml``
  (``connlog retention run --once``);
* under ``connlog up`` as a loop of the supervisor (``connlog.suite``), and
  in the foreground as ``connlog retention run``: a run at once, then one
  every ``partition_maintenance_seconds``;
* in ``connlog db migrate``.

The ingest service runs none of it: when it writes a day whose partition
does not exist yet, it creates that day's partition (``connlog.store.events``;
creation only, never a drop), so ingest never depends on this job having run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from dataclasses import dataclass

import asyncpg

from connlog.core.database import resolve_database_url
from connlog.core.logging import get_logger
from connlog.core.settings import Settings
from connlog.store.partitions import Connection, PartitionChanges, maintain_partitions

# After a failed run (the database away), the loop tries again this soon
# (or after its period, if that is shorter).
RETRY_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RetentionPolicy:
    """What retention keeps, and how often its loop runs."""

    retention_days: int
    ahead_days: int
    every_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_days, settings.partitions_ahead_days, settings.partition_maintenance_seconds)


async def apply_retention(
    conn: Connection, policy: RetentionPolicy, *, now: dt.datetime | None = None
) -> PartitionChanges:
    """One run on ``conn``: create the days ahead, drop the expired ones."""
    changes = await maintain_partitions(
        conn, retention_days=policy.retention_days, ahead_days=policy.ahead_days, now=now
    )
    if changes.created or changes.dropped:
        get_logger("retention").info(
            "partitions maintained",
            created=len(changes.created),
            dropped=len(changes.dropped),
            range=[min(changes.created + changes.dropped), max(changes.created + changes.dropped)],
        )
    return changes


async def run_once(
    settings: Settings, database_url: str, *, now: dt.datetime | None = None
) -> PartitionChanges:
    """One run against ``database_url``, on a connection of its own (runs
    are hours apart: nothing is held between them)."""
    conn = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        return await apply_retention(conn, RetentionPolicy.of(settings), now=now)
    finally:
        await conn.close()


async def retention_loop(
    settings: Settings, database_url: str, stop: asyncio.Event, ran: asyncio.Event | None = None
) -> None:
    """Run retention now and then every ``partition_maintenance_seconds``
    until ``stop`` is set. A failed run is logged and tried again after
    ``RETRY_SECONDS``; the loop itself never fails. ``ran`` (optional) is set
    after each run, whatever its outcome."""
    every = RetentionPolicy.of(settings).every_seconds
    log = get_logger("retention")
    while not stop.is_set():
        try:
            await run_once(settings, database_url)
            wait = every
        except Exception as exc:  # the database away, most likely: try again later
            log.error("retention run failed", error=str(exc))
            wait = min(every, RETRY_SECONDS)
        if ran is not None:
            ran.set()
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass


async def retention_command(settings: Settings, *, once: bool) -> int:
    """``connlog retention run [--once]``: one run (printing what changed),
    or the loop until SIGTERM / SIGINT."""
    database_url = resolve_database_url(settings)
    if once:
        changes = await run_once(settings, database_url)
        print(f"partitions created: {len(changes.created)}, dropped: {len(changes.dropped)}")
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await retention_loop(settings, database_url, stop)
    return 0
