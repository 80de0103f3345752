"""Meraki sources that follow a whole network: its clients discovered through
the fake Meraki's network clients listing (Link paging), each client's events
stored once, a client listed by id and discovered by MAC polled once, the
organisation's budget share kept, recently active clients first, and the
sweep figures in the status."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter

import grpc
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from tests.support.factories import now
from tests.support.fake_vendors import FakeMeraki, meraki_records
from tests.support.sync_calls import create, run
from tests.test_vendor_sync import stored

SHARE = 0.5  # of Meraki's 10 requests/s: 5/s for connlog
# the vendor-sync replicas of these tests: quick schedules, a listing every sweep
SYNC_SETTINGS = dict(sync_schedule_seconds=0.2, sync_http_timeout_seconds=2.0, sync_backoff_base_seconds=0.05,
                     sync_overlap_seconds=60.0, sync_initial_lookback_seconds=6 * 3600.0,
                     sync_meraki_budget_share=SHARE, sync_discovery_interval_seconds=0.0)


@pytest.fixture(scope="module")
async def sync(suite, pool):
    """vendor-sync with a budget share of 0.5 and a listing every sweep."""
    from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
    from tests.support.services import vendor_sync_service

    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, **SYNC_SETTINGS,
    ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = sgrpc.VendorSyncServiceStub(channel)
        stub.port = service.port
        yield stub


def mac_of(network: str, i: int) -> str:
    tag = sum(network.encode()) % 256
    return f"02:{tag:02x}:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"


def network(fake: FakeMeraki, net: str, n: int, *, events: int = 3,
            last_seen: list[dt.timedelta] | None = None) -> list[dict]:
    """A network of ``n`` clients (ids ``{net}-c{i}``), each with ``events``
    connectivity events in the last hour; its records."""
    out = []
    for i in range(n):
        client_id = f"{net}-c{i}"
        fake.add_client(net, client_id, mac_of(net, i), now() - (last_seen[i] if last_seen else dt.timedelta(0)))
        records = meraki_records(events, now() - dt.timedelta(minutes=50), 7.0, tag=f"{client_id}:")
        fake.add(net, client_id, records)
        out += records
    return out


def discovering(fake: FakeMeraki, net: str, clients: tuple[str, ...] = (), **fields) -> spb.SyncSource:
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{fake.url}/api/v1", credential="meraki-key",
                            network_id=net, clients=list(clients), **fields)
    source.poll_interval.FromSeconds(3600)
    return source


async def test_a_network_is_discovered_through_paged_listings_and_each_event_stored_once(
        sync, clients, tenant, meraki_fake):
    net, n = "N_disc", 60
    records = network(meraki_fake, net, n)
    meraki_fake.listing_page_cap = 25  # three listing pages, by Link rel=next
    source = await create(sync, tenant, discovering(meraki_fake, net, rate_limit_per_second=1000))
    assert list(source.clients) == [] and not source.discover_clients  # (implied: no clients listed)
    status = await run(sync, tenant, source)

    events = await stored(clients, tenant, net)
    assert sorted(json.loads(e.vendor_record.data)["captureId"] for e in events) == sorted(
        r["captureId"] for r in records)  # every client's events, each once
    # both identifiers on every event, the right client's
    assert all(e.client.client_id and e.client.mac_address == mac_of(net, int(e.client.client_id.split("-c")[1]))
               for e in events)
    # Meraki's documented listing: 31 days, pages of 5000 asked for, the rest by the Link header
    first = meraki_fake.listings[0]
    assert (first["perPage"], first["timespan"]) == ("5000", str(31 * 86400))
    assert any("startingAfter" in q for q in meraki_fake.listings)
    # The sweep: 60 clients known and polled, 3 listing pages + 1 events request each, nothing looked up.
    assert meraki_fake.lookups == []
    assert (status.clients_known, status.clients_polled_last_sweep, status.requests_last_sweep) == (n, n, 3 + n)
    assert [c.client for c in status.clients] == [mac_of(net, i) for i in range(n)]
    assert all(c.ingested_count + c.duplicate_count == 3 and c.last_error == "" for c in status.clients)
    assert status.HasField("last_sweep_time") and status.HasField("last_discovery_time")
    assert status.last_sweep_duration.ToTimedelta() > dt.timedelta(0)
    # next: all 60 active clients again, at the last sweep's requests per client, plus a listing (interval 0)
    assert status.budget_per_second == 1000 and status.clients_due_next_sweep == n
    expected = (1 + n * (3 + n) / n) / 1000
    assert status.next_sweep_estimate.ToTimedelta().total_seconds() == pytest.approx(expected, abs=1e-6)

    # Listed again every sweep here: a new client is followed, the others' events are not stored again.
    meraki_fake.add_client(net, f"{net}-new", "02:99:00:00:00:01")
    meraki_fake.add(net, f"{net}-new", meraki_records(4, now() - dt.timedelta(minutes=5), tag="new:"))
    status = await run(sync, tenant, source)
    assert status.clients_known == n + 1
    assert len(await stored(clients, tenant, net)) == len(records) + 4


async def test_a_client_listed_by_id_and_discovered_by_mac_is_polled_once(sync, clients, tenant, meraki_fake):
    net = "N_disc_both"
    network(meraki_fake, net, 5)
    listed = f"{net}-c2"
    source = await create(sync, tenant, discovering(meraki_fake, net, (listed,), discover_clients=True,
                                                    rate_limit_per_second=1000))
    assert source.discover_clients
    status = await run(sync, tenant, source)
    # who the listed id is came with the listing: nothing asked
    assert meraki_fake.lookups == []
    # every client's events asked for once a sweep, under one name (its id), the listed one too
    asked = Counter(meraki_fake.event_requests)
    assert set(asked) == {f"{net}-c{i}" for i in range(5)} and len(set(asked.values())) == 1
    # the listed name first, then the discovered clients not listed under another name
    assert [c.client for c in status.clients] == [listed] + [mac_of(net, i) for i in (0, 1, 3, 4)]
    assert status.clients_known == 5
    mine = await stored(clients, tenant, net, client_id=listed)
    assert len(mine) == 3 and {e.client.mac_address for e in mine} == {mac_of(net, 2)}
    assert len(await stored(clients, tenant, net, client_mac_address=mac_of(net, 2))) == 3
    assert len(await stored(clients, tenant, net)) == 15


async def test_requests_stay_within_the_organisations_budget_share(sync, tenant, meraki_fake):
    for net in ("N_budget_a", "N_budget_b"):
        network(meraki_fake, net, 8, events=2)
    meraki_fake.request_times.clear()  # before creating: a new source may start polling at once
    sources = [await create(sync, tenant, discovering(meraki_fake, net, organization_id="org-disc"))
               for net in ("N_budget_a", "N_budget_b")]
    statuses = await asyncio.gather(*(run(sync, tenant, s) for s in sources))
    assert [s.budget_per_second for s in statuses] == [10 * SHARE] * 2
    assert [s.clients_known for s in statuses] == [8, 8]
    # both sources draw on one budget of 5/s (two budgets, 10/s, would allow
    # 10 at once and twice the rate)
    assert_within_budget(meraki_fake.request_times, least=2 * (1 + 8))


def assert_within_budget(request_times: list[float], least: int) -> None:
    """At least ``least`` requests, and in any span from one request to
    another at most rate x span + burst of them (the budget share's 5/s,
    bursts of 5), plus one for the time between the pacer's grant and the
    fake's clock."""
    times = sorted(request_times)
    n, rate, burst = len(times), 10 * SHARE, 10 * SHARE
    assert n >= least
    for i, start in enumerate(times):
        for j in range(i, n):
            assert j - i + 1 <= rate * (times[j] - start) + burst + 1 + 1e-9, (i, j)


async def test_recently_active_clients_are_polled_first(sync, tenant, meraki_fake):
    net = "N_disc_order"
    ages = [dt.timedelta(days=3), dt.timedelta(seconds=10), dt.timedelta(days=20), dt.timedelta(hours=3),
            dt.timedelta(minutes=30)]  # idle, active, dormant, recent, active
    network(meraki_fake, net, 5, events=1, last_seen=ages)
    source = await create(sync, tenant, discovering(meraki_fake, net, rate_limit_per_second=1000))
    status = await run(sync, tenant, source)
    ids = [f"{net}-c{i}" for i in (1, 4, 3, 0, 2)]  # most recently seen first
    assert meraki_fake.event_requests[:5] == ids
    # later sweeps (within the hour) poll only the active tier, in that order
    status = await run(sync, tenant, source)
    assert status.clients_polled_last_sweep == 2 and status.clients_known == 5
    assert all(name in ids[:2] for name in meraki_fake.event_requests[5:])
    assert meraki_fake.event_requests[-2:] == ids[:2]


async def test_only_meraki_discovers(sync, tenant, mojo_fake, meraki_fake):
    mojo = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{mojo_fake.url}/new/webservice",
                          credential="kid:kvalue", network_id="N_mojo_disc")
    for change, field in ((dict(), "sync_source.clients"),
                          (dict(clients=["f0:d7:aa:df:59:a2"], discover_clients=True), "sync_source.discover_clients")):
        bad = spb.SyncSource()
        bad.CopyFrom(mojo)
        for key, value in change.items():
            if key == "clients":
                bad.clients.extend(value)
            else:
                setattr(bad, key, value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(sync, tenant, bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()
    # a name that is blank is still refused
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(sync, tenant, discovering(meraki_fake, "N_x", (" ",)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "sync_source.clients" in err.value.details()


async def test_a_listing_is_repeated_only_after_the_discovery_interval(suite, pool, tenant, meraki_fake):
    from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
    from tests.support.services import vendor_sync_service

    net = "N_disc_hourly"
    network(meraki_fake, net, 3, events=1)
    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, sync_schedule_seconds=0.2,
        sync_http_timeout_seconds=2.0, sync_discovery_interval_seconds=3600.0,
    ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        hourly = sgrpc.VendorSyncServiceStub(channel)
        source = await create(hourly, tenant, discovering(meraki_fake, net, rate_limit_per_second=1000))
        first = await run(hourly, tenant, source)
        meraki_fake.add_client(net, f"{net}-late", "02:98:00:00:00:01")
        second = await run(hourly, tenant, source)
    assert len(meraki_fake.listings) == 1  # listed once, not again within the hour
    assert first.clients_known == second.clients_known == 3
    assert second.last_discovery_time == first.last_discovery_time


async def test_cli_adds_a_network_source_without_clients(sync, tenant, meraki_fake):
    import subprocess
    import sys

    network(meraki_fake, "N_disc_cli", 4, events=2)
    base = [sys.executable, "-m", "connlog", "sources", "--address", f"127.0.0.1:{sync.port}",
            "--key", tenant.keys["administrator"]]

    def run_cli(*args):
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)

    added = await asyncio.to_thread(run_cli, "add", "--vendor", "meraki", "--base-url", f"{meraki_fake.url}/api/v1",
                                    "--credential", "meraki-key", "--network", "N_disc_cli", "--interval", "3600",
                                    "--rate", "1000")
    assert added.returncode == 0, added.stderr
    name = json.loads(added.stdout)["name"]
    ran = await asyncio.to_thread(run_cli, "run", name)
    assert ran.returncode == 0, ran.stderr
    status = json.loads((await asyncio.to_thread(run_cli, "status", name)).stdout)
    assert (status["clientsKnown"], status["clientsPolledLastSweep"], status["requestsLastSweep"]) == (4, 4, 5)
    assert "lastSweepDuration" in status and "nextSweepEstimate" in status
    listed = await asyncio.to_thread(run_cli, "list")
    assert "clients 0 + discovered" in listed.stdout


async def test_two_replicas_polling_one_organisation_keep_one_budget(sync, suite, pool, tenant, meraki_fake):
    """The organisation's budget is a bucket in the database: two vendor-sync
    replicas, each polling one source of the organisation at the same time,
    together stay within it (each with a budget of its own, they would send
    twice the rate and two bursts at once)."""
    from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
    from tests.support.services import vendor_sync_service

    nets = ("N_shared_a", "N_shared_b")
    for net in nets:
        network(meraki_fake, net, 8, events=2)
    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, **SYNC_SETTINGS,
    ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        other = sgrpc.VendorSyncServiceStub(channel)
        meraki_fake.request_times.clear()
        # created paused, then enabled but not due, in one statement: no
        # replica's scheduler can claim them, so each is polled by the
        # replica asked to run it (a scheduler claiming the second source
        # first would leave the second replica only waiting for that poll)
        sources = [await create(sync, tenant, discovering(meraki_fake, net, organization_id="org-shared",
                                                          enabled=False))
                   for net in nets]
        enabled = await pool.execute(
            "UPDATE sync_sources SET enabled = true, next_poll_at = now() + interval '1 hour' "
            "WHERE source_id = ANY($1::text[])", [s.name.removeprefix("syncSources/") for s in sources])
        assert enabled == "UPDATE 2"
        await asyncio.gather(run(sync, tenant, sources[0]), run(other, tenant, sources[1]))
        # the second replica did poll (a source's 8 clients at least)
        assert service.ctx.metrics.polls.labels("meraki", "ok")._value.get() >= 8
    assert_within_budget(meraki_fake.request_times, least=2 * (1 + 8))
