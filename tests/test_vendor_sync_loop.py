"""The full loop: a sync source in one tenant reads another tenant's events
through connlog's own gateway (Meraki and Mojo shapes); and a vendor-sync
process killed mid-poll resumes exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys

import grpc
import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.core.auth import create_service_key
from connlog.devtools.ports import free_port
from connlog.store.accounts import AccountStore
from tests.support.factories import now, simple_event
from tests.support.fake_vendors import FakeMeraki, meraki_records
from tests.support.gateway_calls import MERAKI_PATH as PATH
from tests.support.gateway_calls import ingest, meraki_event
from tests.support.sync_calls import create, run

MAC = "02:00:00:00:88:01"


async def _meraki_all(http, url, key):
    out, next_url = [], url
    while next_url:
        response = await http.get(next_url, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        out += response.json()
        next_url = response.links.get("next", {}).get("url")
    return out


async def test_tenant_b_mirrors_tenant_a_through_the_gateway(gateway, clients, sync, make_tenant):
    a, b, c = await make_tenant(), await make_tenant(), await make_tenant()
    start = now() - dt.timedelta(hours=3)
    events = [meraki_event("N_A", "k-loop", start + dt.timedelta(seconds=7 * i), i, captureId=f"a{i}")
              for i in range(1200)]
    for e in events:
        e.client.mac_address = MAC
    native = [simple_event("N_A", mac=MAC, client_id="k-loop", when=start + dt.timedelta(seconds=7 * i + 3),
                           step=pb.CONNECTION_STEP_DHCP, outcome=pb.OUTCOME_FAILURE, severity=pb.SEVERITY_BAD,
                           failure=pb.Failure(code=10, reason="DHCP Failure")) for i in range(300)]
    await ingest(clients, a, events[:1000])
    await ingest(clients, a, events[1000:] + native)

    viewer = a.keys["viewer"]
    key_id, secret = viewer.split("_", 2)[1:]
    meraki_source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{gateway.url}/api/v1", credential=viewer,
                                   network_id="N_B", vendor_network_id="N_A", clients=["k-loop"])
    mojo_source = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{gateway.url}/new/webservice",
                                 credential=f"{key_id}:{secret}", network_id="N_C", clients=[MAC],
                                 client_identifier="mirror")
    for tenant, source in ((b, meraki_source), (c, mojo_source)):
        source.poll_interval.FromSeconds(3600)
        status = await run(sync, tenant, await create(sync, tenant, source))
        assert status.clients[0].ingested_count == 1500, status
        assert status.clients[0].last_error == ""

    window = "?perPage=1000&timespan=86400"
    async with httpx.AsyncClient() as http:
        from_a = await _meraki_all(http, gateway.url + PATH.format(net="N_A", client="k-loop") + window, viewer)
        from_b = await _meraki_all(http, gateway.url + PATH.format(net="N_B", client="k-loop") + window,
                                   b.keys["viewer"])
        assert len(from_a) == 1500 and from_b == from_a  # field for field, in order
        mojo_a = await http.get(f"{gateway.url}/V5/devices/clients/connectionlogs",
                                params={"clientmacaddress": MAC, "limit": 5000},
                                headers={"Authorization": f"Bearer {viewer}"})
        mojo_c = await http.get(f"{gateway.url}/V5/devices/clients/connectionlogs",
                                params={"clientmacaddress": MAC, "limit": 5000},
                                headers={"Authorization": f"Bearer {c.keys['viewer']}"})
        assert len(mojo_a.json()["failureLogs"]) + len(mojo_a.json()["successLogs"]) == 1500
        assert mojo_c.json() == mojo_a.json()

    # Polling again adds nothing.
    status = await run(sync, b, (await sync.ListSyncSources(spb.ListSyncSourcesRequest(),
                                                            metadata=b.md("viewer"))).sync_sources[0])
    assert status.clients[0].ingested_count == 1500


async def test_killed_sync_process_resumes_exactly_once(suite, pool, make_tenant, tmp_path):
    tenant = await make_tenant()
    fake = FakeMeraki("meraki-key", per_page_cap=100)
    fake.delay = 0.15
    records = meraki_records(3000, now() - dt.timedelta(hours=2), 2.0, tag="x")
    fake.add("N_kill", "k1", records)
    await fake.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.update(DATABASE_URL=suite.settings.database_url, CONNLOG_VENDOR_SYNC_PORT=str(port),
               CONNLOG_VENDOR_SYNC_METRICS_PORT=str(free_port()), CONNLOG_SYNC_INGEST_ADDRESS=suite.ingest_address,
               CONNLOG_SYNC_SCHEDULE_SECONDS="0.2", CONNLOG_SYNC_INITIAL_LOOKBACK_SECONDS="21600",
               CONNLOG_LOG_FORMAT="console", CONNLOG_DATA_DIR=str(tmp_path),
               # a killed process's leases lapse soon, so its restart takes its sources back quickly
               CONNLOG_SYNC_LEASE_SECONDS="3")
    # the fake vendor is a loopback server over http: allowed by name
    env.update(CONNLOG_SYNC_ALLOW_HTTP="true", CONNLOG_SYNC_ALLOWED_DESTINATIONS="127.0.0.1/32,::1/128")
    # its service identity and the session's sealing keys, as a deployment's Secrets give them
    service_key = await create_service_key(AccountStore(pool), description="tests: killed vendor-sync")
    env.update(CONNLOG_SYNC_SERVICE_KEY=service_key.token,
               CONNLOG_SECRET_KEYS=suite.settings.secret_keys.get_secret_value())

    def start():
        return subprocess.Popen([sys.executable, "-m", "connlog", "serve", "vendor-sync"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def stored_count() -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval(
                """SELECT count(*) FROM connection_events e JOIN networks n USING (network_ref)
                   JOIN tenants t ON t.tenant_ref = e.tenant_ref WHERE t.tenant_id = $1 AND n.network_id = 'N_kill'""",
                tenant.tenant_id)

    proc = start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = sgrpc.VendorSyncServiceStub(channel)
            await asyncio.wait_for(channel.channel_ready(), 30)
            source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{fake.url}/api/v1", credential="meraki-key",
                                    network_id="N_kill", clients=["k1"])
            source.poll_interval.FromSeconds(1)
            await create(stub, tenant, source)
            for _ in range(300):
                if await stored_count() >= 900:
                    break
                await asyncio.sleep(0.1)
        before = await stored_count()
        assert 900 <= before < 3000, before
        proc.send_signal(signal.SIGKILL)  # no goodbye: mid-poll, between pages
        proc.wait(10)

        proc = start()
        for _ in range(600):
            if await stored_count() >= 3000:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a further poll or two must add nothing
        assert await stored_count() == 3000
        async with pool.acquire() as conn:
            payloads = await conn.fetch(
                """SELECT e.payload FROM connection_events e JOIN networks n USING (network_ref)
                   JOIN tenants t ON t.tenant_ref = e.tenant_ref WHERE t.tenant_id = $1 AND n.network_id = 'N_kill'""",
                tenant.tenant_id)
        captures = [json.loads(pb.ConnectionEvent.FromString(r["payload"]).vendor_record.data)["captureId"]
                    for r in payloads]
        assert sorted(captures) == sorted(r["captureId"] for r in records)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        await fake.stop()
        await AccountStore(pool).revoke_key(service_key.key_id)
