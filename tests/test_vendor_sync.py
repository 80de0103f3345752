"""Vendor sync against fake Meraki and Mojo servers (loopback), with faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import grpc
import pytest
from google.protobuf import field_mask_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from tests.support.factories import now
from tests.support.fake_vendors import meraki_records, mojo_logs
from tests.support.sync_calls import create, run


def meraki_source(fake, network="N_sync", clients=("k1",), **fields) -> spb.SyncSource:
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{fake.url}/api/v1", credential="meraki-key",
                            network_id=network, clients=list(clients), **fields)
    source.poll_interval.FromSeconds(3600)
    return source


async def stored(clients, tenant, network, **filters) -> list[pb.ConnectionEvent]:
    events, token = [], ""
    while True:
        page = await clients.query.ListConnectionEvents(
            qpb.ListConnectionEventsRequest(parent=f"networks/{network}", page_size=1000, page_token=token, **filters),
            metadata=tenant.md("viewer"))
        events += page.connection_events
        token = page.next_page_token
        if not token:
            return events


async def test_meraki_source_exactly_once_with_faults(sync, clients, tenant, meraki_fake):
    start = now() - dt.timedelta(hours=2)
    records = meraki_records(2500, start, 2.0)
    records[1234] = dict(records[1234], type="boot")  # malformed: not a Meraki type, skipped
    meraki_fake.per_page_cap = 300
    meraki_fake.add("N_sync", "k1", records)
    meraki_fake.faults = ["429", "500", "timeout", "repeat", "503"]
    source = await create(sync, tenant, meraki_source(meraki_fake))
    assert source.has_credential and not source.credential
    status = await run(sync, tenant, source)
    [client] = status.clients
    assert status.state == spb.SYNC_SOURCE_STATE_ACTIVE and client.last_error == ""
    assert client.malformed_count == 1
    assert client.ingested_count == 2499
    events = await stored(clients, tenant, "N_sync")
    assert sorted(json.loads(e.vendor_record.data)["captureId"] for e in events) == sorted(
        r["captureId"] for i, r in enumerate(records) if i != 1234)
    assert all(e.source.vendor == pb.VENDOR_MERAKI and e.client.client_id == "k1" for e in events)
    assert not meraki_fake.faults  # every fault was met and survived

    # New events plus a re-poll: the overlap brings duplicates, never copies.
    meraki_fake.add("N_sync", "k1", meraki_records(10, now() - dt.timedelta(seconds=30), 1.0, tag="late"))
    status = await run(sync, tenant, source)
    assert status.clients[0].ingested_count == 2509
    assert len(await stored(clients, tenant, "N_sync")) == 2509
    assert status.clients[0].lag.ToTimedelta() < dt.timedelta(minutes=1)
    assert status.clients[0].HasField("last_success_time")

    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{sync.metrics_port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'connlog_sync_events_total{result="ingested",vendor="meraki"}' in metrics
    assert 'connlog_sync_events_total{result="malformed",vendor="meraki"}' in metrics
    assert 'connlog_sync_polls_total{outcome="ok",vendor="meraki"}' in metrics


async def test_rejected_credential_stops_polling_until_updated(sync, tenant, meraki_fake):
    meraki_fake.add("N_cred", "k1", meraki_records(5, now() - dt.timedelta(minutes=10)))
    source = meraki_source(meraki_fake, network="N_cred")
    source.credential = "wrong"
    source.poll_interval.FromSeconds(1)
    created = await create(sync, tenant, source)
    status = await run(sync, tenant, created)
    assert status.state == spb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED and "rejected" in status.last_error
    requests = len(meraki_fake.request_times)
    await asyncio.sleep(2.5)  # several poll intervals: no busy retrying
    assert len(meraki_fake.request_times) == requests
    updated = await sync.UpdateSyncSource(spb.UpdateSyncSourceRequest(
        sync_source=spb.SyncSource(name=created.name, credential="meraki-key"),
        update_mask=field_mask_pb2.FieldMask(paths=["credential"])), metadata=tenant.md("administrator"))
    assert not updated.credential
    status = await run(sync, tenant, created)
    assert status.state == spb.SYNC_SOURCE_STATE_ACTIVE and status.clients[0].ingested_count == 5


async def test_rate_budget_shared_by_an_organisation(sync, tenant, meraki_fake):
    meraki_fake.per_page_cap = 3
    for client in ("r1", "r2"):
        meraki_fake.add("N_rate", client, meraki_records(30, now() - dt.timedelta(minutes=30), tag=client))
    meraki_fake.request_times.clear()  # before creating: a new source may start polling at once
    sources = [await create(sync, tenant, meraki_source(meraki_fake, network="N_rate", clients=(c,),
                                                        rate_limit_per_second=5, organization_id="org-1"))
               for c in ("r1", "r2")]
    statuses = await asyncio.gather(*(run(sync, tenant, s) for s in sources))
    assert [s.clients[0].ingested_count for s in statuses] == [30, 30]
    times = meraki_fake.request_times
    # per client: who it is (the fake does not know them: 404), then 10 pages;
    # the scheduler may poll a new source on its own as well (more requests,
    # never new events), and every request draws on the one budget
    n = len(times)
    assert n >= 22
    # n requests at 5/s with a burst of 5: at least (n - 5) / 5 seconds, never
    # more than 5 + 5 in any second (two budgets of 5/s would allow twice that)
    assert times[-1] - times[0] >= (n - 5) / 5 - 0.1
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 10


def test_names_of_one_client_are_followed_as_one():
    from connlog.store.sync import ClientIdentity
    from connlog.vendorsync.identity import follow

    mac = "f0:d7:aa:df:59:a2"
    known = ClientIdentity("k74272e", mac)
    # as the vendor answered: id and MAC (any spelling) are one client, listed first by its first name
    [one] = follow(pb.VENDOR_MERAKI, ["k74272e", "F0-D7-AA-DF-59-A2"], {"k74272e": known, "F0-D7-AA-DF-59-A2": known})
    assert (one.name, one.names, one.client_id, one.mac, one.vendor_name) == (
        "k74272e", ["k74272e", "F0-D7-AA-DF-59-A2"], "k74272e", mac, "k74272e")
    # one answer is enough to join them; names it did not answer for read as what they look like
    [one, other] = follow(pb.VENDOR_MERAKI, ["F0:D7:AA:DF:59:A2", "k2", "k74272e"], {"k74272e": known})
    assert (one.names, one.client_id, one.mac) == (["F0:D7:AA:DF:59:A2", "k74272e"], "k74272e", mac)
    assert (other.names, other.client_id, other.mac, other.vendor_name) == (["k2"], "k2", "", "k2")
    # nothing answered: an id and a MAC cannot be joined, two spellings of a MAC can
    joined = follow(pb.VENDOR_MERAKI, ["k1", mac, "F0D7AADF59A2"], {})
    assert [c.names for c in joined] == [["k1"], [mac, "F0D7AADF59A2"]]
    # Mojo: clients are MACs
    [mojo] = follow(pb.VENDOR_MOJO, ["F0:D7:AA:DF:59:A2", "f0d7.aadf.59a2"], {})
    assert (mojo.client_id, mojo.mac, mojo.vendor_name) == ("", mac, mac)


# (A new source may start polling at once, before RunSyncSource: these tests
# hold however many polls ran.)


async def test_a_client_named_by_id_and_by_mac_is_followed_once(sync, clients, tenant, meraki_fake):
    mac = "f0:d7:aa:df:59:a2"
    meraki_fake.add_client("N_ident", "k74272e", mac)
    records = meraki_records(40, now() - dt.timedelta(hours=1), 5.0, tag="ident")
    meraki_fake.add("N_ident", "k74272e", records)
    names = ["k74272e", mac.upper()]
    source = await create(sync, tenant, meraki_source(meraki_fake, network="N_ident", clients=names))
    status = await run(sync, tenant, source)
    events = await stored(clients, tenant, "N_ident")
    assert sorted(json.loads(e.vendor_record.data)["captureId"] for e in events) == sorted(
        r["captureId"] for r in records)  # each once
    assert {(e.client.client_id, e.client.mac_address) for e in events} == {("k74272e", mac)}
    # each name shows the one client
    assert [(c.client, c.fetched_count, c.ingested_count, c.duplicate_count) for c in status.clients] == [
        (name, 40, 40, 0) for name in names]
    assert meraki_fake.lookups == names  # who each name is: asked once, and kept
    assert set(meraki_fake.event_requests) == {"k74272e"}  # its events: fetched under one name
    # A later poll asks again for nothing, fetches once, stores nothing twice.
    polls = len(meraki_fake.event_requests)
    meraki_fake.add("N_ident", "k74272e", meraki_records(3, now() - dt.timedelta(seconds=30), 1.0, tag="late"))
    status = await run(sync, tenant, source)
    assert meraki_fake.lookups == names
    assert meraki_fake.event_requests == ["k74272e"] * (polls + 1)
    assert len(await stored(clients, tenant, "N_ident")) == 43
    assert [c.ingested_count for c in status.clients] == [43, 43]
    # either name finds them all
    assert len(await stored(clients, tenant, "N_ident", client_mac_address=mac)) == 43
    assert len(await stored(clients, tenant, "N_ident", client_id="k74272e")) == 43


async def test_sources_naming_one_client_differently_store_its_events_once(sync, clients, tenant, meraki_fake):
    mac = "02:00:00:00:77:01"
    meraki_fake.add_client("N_ident2", "k-two", mac)
    meraki_fake.add("N_ident2", "k-two", meraki_records(25, now() - dt.timedelta(hours=1), 5.0, tag="two"))
    sources = [await create(sync, tenant, meraki_source(meraki_fake, network="N_ident2", clients=(name,)))
               for name in ("k-two", mac)]
    statuses = [await run(sync, tenant, source) for source in sources]
    assert len(await stored(clients, tenant, "N_ident2")) == 25
    assert sum(s.clients[0].ingested_count for s in statuses) == 25
    # Every poll after the first finds all 25 stored: at least the second
    # source's. (The scheduler may also poll a new source once on its own
    # before RunSyncSource does: that poll's events come back as duplicates
    # too, never as new ones.)
    duplicates = sum(s.clients[0].duplicate_count for s in statuses)
    assert duplicates >= 25 and duplicates % 25 == 0


async def test_a_name_the_vendor_cannot_identify_now_is_asked_again(sync, clients, tenant, meraki_fake):
    mac = "02:00:00:00:77:03"
    meraki_fake.add_client("N_ident3", "k-three", mac)
    meraki_fake.add("N_ident3", "k-three", meraki_records(5, now() - dt.timedelta(hours=1), 5.0, tag="three"))
    meraki_fake.unanswerable = {mac}  # who the MAC is: no answer for now
    source = await create(sync, tenant, meraki_source(meraki_fake, network="N_ident3", clients=(mac, "k-three")))
    status = await run(sync, tenant, source)
    # the id was answered: the client is followed once, under both identifiers
    assert set(meraki_fake.event_requests) == {"k-three"}
    events = await stored(clients, tenant, "N_ident3")
    assert len(events) == 5 and {(e.client.client_id, e.client.mac_address) for e in events} == {("k-three", mac)}
    assert [c.ingested_count for c in status.clients] == [5, 5]  # a MAC is a MAC: the same client
    meraki_fake.unanswerable = set()
    asked = meraki_fake.lookups.count(mac)
    status = await run(sync, tenant, source)
    assert meraki_fake.lookups.count(mac) == asked + 1 and "k-three" in meraki_fake.lookups
    assert len(await stored(clients, tenant, "N_ident3")) == 5
    assert [(c.ingested_count, c.last_error) for c in status.clients] == [(5, ""), (5, "")]
    # A name alone that cannot be identified now is not followed this time (it may be a client
    # followed under another name); the next poll asks again.
    meraki_fake.unanswerable = {"k-three"}
    fetched = len(meraki_fake.event_requests)
    alone = await create(sync, tenant, meraki_source(meraki_fake, network="N_ident3", clients=("k-three",)))
    [client] = (await run(sync, tenant, alone)).clients
    assert "who the client is" in client.last_error and client.fetched_count == 0
    assert len(meraki_fake.event_requests) == fetched
    meraki_fake.unanswerable = set()
    [client] = (await run(sync, tenant, alone)).clients
    assert (client.last_error, client.fetched_count, client.duplicate_count) == ("", 5, 5)
    assert len(await stored(clients, tenant, "N_ident3")) == 5


async def test_mojo_client_listed_in_two_spellings_is_fetched_once(sync, clients, tenant, mojo_fake):
    mac = "f0:d7:aa:df:59:b7"
    mojo_fake.add(mac, mojo_logs(20, now() - dt.timedelta(hours=1), mac))
    names = [mac.upper(), "f0d7.aadf.59b7"]
    source = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{mojo_fake.url}/new/webservice",
                            credential="kid:kvalue", network_id="N_mojo_two", clients=names)
    source.poll_interval.FromSeconds(3600)
    status = await run(sync, tenant, await create(sync, tenant, source))
    assert set(mojo_fake.log_requests) == {mac}
    # one client: fetched under one checkpoint, never found again as duplicates under the other spelling
    assert [(c.client, c.fetched_count, c.ingested_count, c.duplicate_count) for c in status.clients] == [
        (n, 20, 20, 0) for n in names]
    assert len(await stored(clients, tenant, "N_mojo_two")) == 20


async def test_mojo_source_with_relogin_and_backward_paging(sync, clients, tenant, mojo_fake):
    mac = "f0:d7:aa:df:59:a2"
    logs = mojo_logs(2300, now() - dt.timedelta(hours=1), mac)
    logs[7] = dict(logs[7], eventType="Maybe")  # malformed
    mojo_fake.add(mac, logs)
    source = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{mojo_fake.url}/new/webservice",
                            credential="kid:kvalue", network_id="N_mojo_sync", clients=[mac.upper()],
                            client_identifier="acme")
    created = await create(sync, tenant, source)
    status = await run(sync, tenant, created)
    assert status.clients[0].ingested_count == 2299 and status.clients[0].malformed_count == 1
    assert mojo_fake.logins == 1
    events = await stored(clients, tenant, "N_mojo_sync")
    assert len(events) == 2299
    assert all(json.loads(e.vendor_record.data)["eventType"] in ("Success", "Failure") for e in events)

    mojo_fake.expire_sessions()
    mojo_fake.add(mac, mojo_logs(3, now() - dt.timedelta(seconds=20), mac))
    status = await run(sync, tenant, created)
    assert mojo_fake.logins == 2
    assert status.clients[0].ingested_count == 2302

    bad = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{mojo_fake.url}/new/webservice", credential="kid:nope",
                         network_id="N_mojo_sync", clients=[mac])
    rejected = await run(sync, tenant, await create(sync, tenant, bad))
    assert rejected.state == spb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED


async def test_source_api(sync, tenant, make_tenant, meraki_fake):
    bad = [
        (dict(vendor=pb.VENDOR_ZEQUENZE), "vendor"),
        (dict(base_url="ftp://x"), "base_url"),
        (dict(credential=""), "credential"),
        (dict(network_id="bad id!"), "network_id"),
        (dict(clients=[""]), "clients"),  # (none at all: the network's clients, discovered)
    ]
    for change, field in bad:
        source = meraki_source(meraki_fake)
        for key, value in change.items():
            if key == "clients":
                source.clients[:] = value
            else:
                setattr(source, key, value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(sync, tenant, source)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sync.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=meraki_source(meraki_fake)),
                                    metadata=tenant.md("operator"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    created = await create(sync, tenant, meraki_source(meraki_fake, display_name="hq"))
    got = await sync.GetSyncSource(spb.GetSyncSourceRequest(name=created.name), metadata=tenant.md("viewer"))
    assert got == created and not got.credential
    listed = await sync.ListSyncSources(spb.ListSyncSourcesRequest(), metadata=tenant.md("viewer"))
    assert created.name in [s.name for s in listed.sync_sources]
    other = await make_tenant()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sync.GetSyncSource(spb.GetSyncSourceRequest(name=created.name), metadata=other.md("viewer"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    paused = await sync.UpdateSyncSource(spb.UpdateSyncSourceRequest(
        sync_source=spb.SyncSource(name=created.name, enabled=False),
        update_mask=field_mask_pb2.FieldMask(paths=["enabled"])), metadata=tenant.md("administrator"))
    assert not paused.enabled
    status = await sync.GetSyncSourceStatus(spb.GetSyncSourceStatusRequest(name=created.name + "/status"),
                                            metadata=tenant.md("viewer"))
    assert status.state == spb.SYNC_SOURCE_STATE_PAUSED
    await sync.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=created.name), metadata=tenant.md("administrator"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sync.GetSyncSource(spb.GetSyncSourceRequest(name=created.name), metadata=tenant.md("viewer"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unreachable_vendor_is_an_error_not_a_crash(sync, tenant):
    from connlog.devtools.ports import free_port

    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"http://127.0.0.1:{free_port()}/api/v1",
                            credential="k", network_id="N_down", clients=["k1"])
    source.poll_interval.FromSeconds(3600)
    created = await create(sync, tenant, source)
    status = await run(sync, tenant, created)
    assert status.state == spb.SYNC_SOURCE_STATE_ACTIVE
    assert "could not connect" in status.clients[0].last_error
    assert not status.clients[0].HasField("checkpoint_time")


async def test_sources_cli(sync, tenant, meraki_fake, settings):
    import subprocess
    import sys

    meraki_fake.add("N_cli", "k1", meraki_records(7, now() - dt.timedelta(minutes=5)))
    base = [sys.executable, "-m", "connlog", "sources", "--address", f"127.0.0.1:{sync.port}",
            "--key", tenant.keys["administrator"]]

    def run_cli(*args):
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)

    async def cli(*args):  # in a thread: the services answer on this test's event loop
        return await asyncio.to_thread(run_cli, *args)

    created = await cli("create", "--vendor", "meraki", "--base-url", f"{meraki_fake.url}/api/v1", "--credential",
                  "meraki-key", "--network", "N_cli", "--client", "k1", "--interval", "3600")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]
    assert "meraki-key" not in created.stdout
    assert name in (await cli("list")).stdout
    ran = await cli("run", name)
    assert ran.returncode == 0 and json.loads(ran.stdout)["status"]["clients"][0]["ingestedCount"] == "7"
    assert json.loads((await cli("pause", name)).stdout).get("enabled") is None  # false is omitted in JSON
    assert json.loads((await cli("status", name)).stdout)["state"] == "SYNC_SOURCE_STATE_PAUSED"
    assert (await cli("delete", name)).returncode == 0
    missing = await cli("get", name)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
