"""A real streaming replica of an embedded PostgreSQL for the tests: a
primary of its own (not the session's server: these tests pause, stop and
start its replica) and a hot standby made by ``pg_basebackup -R``
(connlog.core.database.start_embedded_replica), with what the tests do to
it: wait until it streams, until it has replayed everything, pause and
resume replay, stop and start it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from connlog.core.database import (
    DatabaseServer,
    database_url_for,
    restart_embedded_replica,
    start_embedded_replica,
    start_embedded_server,
    stop_embedded_server,
)
from tests.support.waiting import until

DEADLINE = 60.0


@dataclass
class Replica:
    """A primary (``primary.admin_url``) and its streaming replica."""

    primary: DatabaseServer
    pgdata: Path
    admin_url: str  # the replica's own URL (database postgres)

    def url_of(self, primary_url: str) -> str:
        """The replica's URL of the database ``primary_url`` names."""
        return database_url_for(self.admin_url, urlsplit(primary_url).path.lstrip("/"))

    async def _primary(self, query: str, *args: object) -> object:
        conn = await asyncpg.connect(self.primary.admin_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    async def _replica(self, query: str) -> object:
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    async def streaming(self) -> bool:
        """Whether the primary streams WAL to this replica."""
        return bool(await self._primary(
            "SELECT EXISTS (SELECT FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming')",
            self.pgdata.name))

    async def wait_streaming(self) -> None:
        await until(self.streaming, "the replica to stream from its primary", DEADLINE)

    async def wait_replayed(self) -> None:
        """Until the replica has replayed everything the primary has written
        so far."""
        target = await self._primary("SELECT pg_current_wal_lsn()::text")

        async def replayed() -> bool:
            return bool(await self._replica(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"))

        await until(replayed, "the replica to replay the primary's writes", DEADLINE)

    async def pause(self) -> None:
        """Stop replaying (WAL is still received): reads see the data as it
        was, however much the primary writes."""
        await self._replica("SELECT pg_wal_replay_pause()")

        async def paused() -> bool:
            return await self._replica("SELECT pg_get_wal_replay_pause_state()") == "paused"

        await until(paused, "replay to pause", DEADLINE)

    async def resume(self) -> None:
        await self._replica("SELECT pg_wal_replay_resume()")

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        await self.pause()
        try:
            yield
        finally:
            await self.resume()

    def stop(self) -> None:
        stop_embedded_server(self.pgdata, mode="fast", timeout=120)

    async def start(self) -> None:
        self.admin_url = await asyncio.to_thread(restart_embedded_replica, self.pgdata)
        await self.wait_streaming()


@contextlib.asynccontextmanager
async def streaming_replica() -> AsyncIterator[Replica]:
    """An embedded primary in a temporary folder of its own (whatever
    DATABASE_URL says) and a replica streaming from it; both stopped and the
    folder removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="connlog-replica-"))
    os.chmod(folder, 0o755)  # as root the servers' user must traverse it
    primary: DatabaseServer | None = None
    replica_pgdata = folder / "replica"
    try:
        primary = DatabaseServer(await asyncio.to_thread(start_embedded_server, folder / "primary"), folder / "primary")
        url = await asyncio.to_thread(start_embedded_replica, folder / "primary", replica_pgdata)
        replica = Replica(primary, replica_pgdata, url)
        await replica.wait_streaming()
        yield replica
    finally:
        try:
            stop_embedded_server(replica_pgdata, mode="immediate", timeout=120)
        finally:
            if primary is not None:
                primary.stop(mode="immediate")
            shutil.rmtree(folder, ignore_errors=True)
