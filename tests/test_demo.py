"""``connlog demo`` against the running services."""

from __future__ import annotations

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.demo import TENANTS, run_demo


async def test_demo_loads_every_kind_of_event(suite, pool, capsys):
    assert await run_demo(suite.settings, address=suite.ingest_address, days=3, seed=11) == 0
    out = capsys.readouterr().out
    for tenant_id in TENANTS:
        assert tenant_id in out
    assert "rejected 0" in out and "operator key: clk_" in out
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT t.tenant_id, count(*) AS n, count(DISTINCT e.step) AS steps,
                      count(DISTINCT e.failure_code) AS failure_kinds, count(DISTINCT e.network_ref) AS networks,
                      count(DISTINCT e.client_mac) AS clients, count(DISTINCT e.ap_serial) AS aps,
                      min(e.occurred_at) AS first, max(e.occurred_at) AS last,
                      count(*) FILTER (WHERE e.vendor = $1) AS mojo_records
               FROM connection_events e JOIN tenants t USING (tenant_ref)
               WHERE t.tenant_id = ANY($2::text[]) GROUP BY t.tenant_id""",
            pb.VENDOR_MOJO,
            list(TENANTS),
        )
    assert len(rows) == len(TENANTS)
    for row in rows:
        assert row["n"] > 500
        assert row["steps"] == len(pb.ConnectionStep.values()) - 1  # every step
        assert row["failure_kinds"] >= 6
        assert row["networks"] == len(TENANTS[row["tenant_id"]][1])
        assert row["clients"] >= 20 and row["aps"] >= 4
        assert (row["last"] - row["first"]).days >= 2

    # Loading again stores the documentation samples once (same day, same records).
    assert await run_demo(suite.settings, address=suite.ingest_address, days=3, seed=11) == 0
    out = capsys.readouterr().out
    assert "duplicate     5" in out


async def test_demo_without_services(settings, capsys):
    assert await run_demo(settings, address="127.0.0.1:1", days=1, seed=1) == 1
    assert "not reachable" in capsys.readouterr().out
