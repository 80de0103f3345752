"""Migrations and partitions on a real, empty database."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from connlog.store.migrate import available_migrations, current_version, migrate
from connlog.store.partitions import existing_partitions, maintain_partitions, partition_name


@pytest.fixture
async def empty_db(pg_server):
    url = await pg_server.create_database()
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


async def test_migrations_from_empty_and_rerun(empty_db):
    assert await current_version(empty_db) == 0
    applied = await migrate(empty_db)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    assert await current_version(empty_db) == available_migrations()[-1].version
    tables = {r["tablename"] for r in await empty_db.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"tenants", "networks", "api_keys", "connection_events", "schema_migrations"} <= tables
    assert await migrate(empty_db) == []  # idempotent
    assert await empty_db.fetchval("SELECT count(*) FROM schema_migrations") == len(available_migrations())


async def test_changed_migration_is_refused(empty_db):
    await migrate(empty_db)
    await empty_db.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        await migrate(empty_db)


async def test_partitions_created_ahead_and_dropped_behind(empty_db):
    await migrate(empty_db)
    day0 = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)
    changes = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=day0)
    assert len(changes.created) == 31 + 1 + 7 and changes.dropped == []
    names = await existing_partitions(empty_db)
    assert partition_name(dt.date(2026, 2, 7)) in names  # cutoff day (10 Mar minus 31 days)
    assert partition_name(dt.date(2026, 3, 17)) in names  # 7 days ahead

    # Rows land in their day's partition; a row older than retention is gone
    # once its partition is dropped.
    await empty_db.execute("INSERT INTO tenants (tenant_id) VALUES ('t')")
    await empty_db.execute(
        """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome, severity,
                                          band, vendor, payload)
           VALUES (1, 1, $1, '\\x01', 1, 0, 0, 0, 1, ''), (1, 1, $2, '\\x02', 1, 0, 0, 0, 1, '')""",
        dt.datetime(2026, 2, 8, 1, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 3, 9, 1, tzinfo=dt.timezone.utc),
    )
    later = day0 + dt.timedelta(days=3)
    changes = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=later)
    assert changes.dropped == [partition_name(dt.date(2026, 2, d)) for d in (7, 8, 9)]
    assert changes.created == [partition_name(dt.date(2026, 3, d)) for d in (18, 19, 20)]
    assert await empty_db.fetchval("SELECT count(*) FROM connection_events") == 1
    again = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=later)
    assert again.created == [] and again.dropped == []
