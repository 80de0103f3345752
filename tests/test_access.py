"""API keys, roles and tenant isolation."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import grpc
import httpx
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.core.auth import SYNC_SOURCE_HEADER, create_key
from connlog.core.principal import Role
from connlog.shapes.meraki import servicer as meraki
from connlog.shapes.mojo import servicer as mojo
from connlog.shapes.zequenze import servicer as zequenze
from connlog.store.accounts import AccountStore
from tests.support.factories import simple_event
from tests.support.gateway_calls import ZEQUENZE_SAMPLES


async def _code(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _list(clients, md, parent="networks/-"):
    return clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent=parent), metadata=md)


def _ingest(clients, md, events):
    return clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events), metadata=md)


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer not-a-key"),),
        (("authorization", "Bearer clk_0000000000000000_nosuchsecret"),),
    ],
    ids=["missing", "basic", "empty", "malformed", "unknown"],
)
async def test_missing_or_wrong_key_is_unauthenticated(clients, metadata):
    assert await _code(_list(clients, metadata)) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(_ingest(clients, metadata, [simple_event()])) == grpc.StatusCode.UNAUTHENTICATED


async def test_wrong_secret_and_revoked_key(clients, tenant, pool):
    key = tenant.keys["viewer"]
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert await _code(_list(clients, (("authorization", f"Bearer {wrong}"),))) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(_list(clients, tenant.md("viewer"))) == grpc.StatusCode.OK
    key_id = key.split("_")[1]
    assert await AccountStore(pool).revoke_key(key_id)
    assert await _code(_list(clients, tenant.md("viewer"))) == grpc.StatusCode.UNAUTHENTICATED
    assert not await AccountStore(pool).revoke_key(key_id)  # already revoked


async def test_roles(clients, tenant):
    event = simple_event("N_roles")
    for role in ("operator", "administrator", "super_user"):
        assert await _code(_ingest(clients, tenant.md(role), [event])) == grpc.StatusCode.OK, role
    for role in ("viewer", "operator", "administrator", "super_user"):
        assert await _code(_list(clients, tenant.md(role))) == grpc.StatusCode.OK, role
    assert await _code(_ingest(clients, tenant.md("viewer"), [event])) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(_list(clients, tenant.md("device"))) == grpc.StatusCode.PERMISSION_DENIED


async def test_device_keys_write_only_through_their_shape(clients, tenant):
    """A device key is refused by IngestService (unary and stream), and its
    events through its shape are its own device's (tests/test_gateway_zequenze,
    tests/unit/test_principal_rules)."""
    event = simple_event("N_dev", client_id="dev-1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _ingest(clients, tenant.md("device"), [event])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == "a device key writes only through its own shape (zequenze), not through IngestService"
    call = clients.ingest.StreamIngestConnectionEvents(metadata=tenant.md("device"))
    await call.write(ipb.StreamIngestConnectionEventsRequest(events=[event]))
    await call.done_writing()
    assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_tenants_never_see_each_other(clients, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    event = simple_event("N_shared_name", client_id="k-a")
    reply_a = await _ingest(clients, a.md(), [event])
    name = reply_a.results[0].name

    # B cannot read A's event, even knowing its name, nor A's network.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=name), metadata=b.md("viewer"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert await _code(_list(clients, b.md("viewer"), "networks/N_shared_name")) == grpc.StatusCode.NOT_FOUND
    assert list((await _list(clients, b.md("viewer"))).connection_events) == []

    # The same event in B's tenant is B's own, not a duplicate of A's.
    reply_b = await _ingest(clients, b.md(), [event])
    assert reply_b.results[0].status == ipb.INGEST_STATUS_ACCEPTED
    assert reply_b.results[0].event_id != reply_a.results[0].event_id
    listed_a = (await _list(clients, a.md("viewer"), "networks/N_shared_name")).connection_events
    listed_b = (await _list(clients, b.md("viewer"), "networks/N_shared_name")).connection_events
    assert [e.event_id for e in listed_a] == [reply_a.results[0].event_id]
    assert [e.event_id for e in listed_b] == [reply_b.results[0].event_id]
    assert listed_b[0].tenant_id == b.tenant_id

    # A tenant id in the event must be the key's own.
    spoof = simple_event("N_x", tenant_id=a.tenant_id)
    reply = await _ingest(clients, b.md(), [spoof])
    assert reply.results[0].status == ipb.INGEST_STATUS_REJECTED and reply.results[0].field == "tenant_id"


# --- the vendor-sync service's own key ----------------------------------------------------------------------------

async def _source(pool, tenant_id: str, *, vendor: int = pb.VENDOR_MERAKI, network: str = "N_src") -> str:
    """A sync source of the tenant (never polled: its host does not resolve)."""
    source_id = secrets.token_hex(8)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO sync_sources (source_id, tenant_ref, vendor, base_url, network_id, clients)
               SELECT $1, tenant_ref, $3, 'https://sync-source.invalid/api/v1', $4, ARRAY['c1']
               FROM tenants WHERE tenant_id = $2""",
            source_id, tenant_id, vendor, network)
    return source_id


def _sync_md(tenant, source_id: str | None):
    md = tenant.md("sync_service")
    return md + ((SYNC_SOURCE_HEADER, source_id),) if source_id is not None else md


async def _stream(clients, md, events):
    call = clients.ingest.StreamIngestConnectionEvents(metadata=md)
    await call.write(ipb.StreamIngestConnectionEventsRequest(events=events))
    await call.done_writing()
    return await call


async def test_the_sync_key_writes_only_for_the_source_it_names(clients, make_tenant, pool):
    a, b = await make_tenant(), await make_tenant()
    source = await _source(pool, a.tenant_id)
    good = simple_event("N_src", client_id="c1", source=pb.Source(vendor=pb.VENDOR_MERAKI))
    try:
        for send in (_ingest, _stream):
            # no source named, an unknown one: refused whole
            for md in (_sync_md(a, None), _sync_md(a, "nosuchsource"), _sync_md(a, "x" * 5000)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await send(clients, md, [good])
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, send
                assert SYNC_SOURCE_HEADER in err.value.details()

            # each event held to the source's network, vendor and tenant
            other_network = simple_event("N_other", client_id="c1", source=pb.Source(vendor=pb.VENDOR_MERAKI))
            other_vendor = simple_event("N_src", client_id="c2", source=pb.Source(vendor=pb.VENDOR_MOJO))
            other_tenant = simple_event("N_src", client_id="c3", source=pb.Source(vendor=pb.VENDOR_MERAKI),
                                        tenant_id=b.tenant_id)
            reply = await send(clients, _sync_md(a, source), [good, other_network, other_vendor, other_tenant])
            assert reply.accepted_count + reply.duplicate_count == 1 and reply.rejected_count == 3
            assert [r.field for r in reply.results if r.status == ipb.INGEST_STATUS_REJECTED] == [
                "network_id", "source.vendor", "tenant_id"]

        # stored in the source's tenant, nowhere else
        listed = (await _list(clients, a.md("viewer"), "networks/N_src")).connection_events
        assert [e.client.client_id for e in listed] == ["c1"]
        assert list((await _list(clients, b.md("viewer"))).connection_events) == []

        # a disabled source writes nothing
        async with pool.acquire() as conn:
            await conn.execute("UPDATE sync_sources SET enabled = false WHERE source_id = $1", source)
        assert await _code(_ingest(clients, _sync_md(a, source), [good])) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sync_sources WHERE source_id = $1", source)


async def test_the_sync_key_may_do_nothing_else(clients, tenant, pool, gateway, sync):
    md = _sync_md(tenant, None)
    # read RPCs
    assert await _code(_list(clients, md)) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(clients.query.GetConnectionEvent(
        qpb.GetConnectionEventRequest(name="networks/N/connectionEvents/1"), metadata=md)) == \
        grpc.StatusCode.PERMISSION_DENIED
    # source management, even naming a source of the tenant
    source = await _source(pool, tenant.tenant_id)
    try:
        named = _sync_md(tenant, source)
        name = f"syncSources/{source}"
        for call in (sync.ListSyncSources(spb.ListSyncSourcesRequest(), metadata=named),
                     sync.GetSyncSource(spb.GetSyncSourceRequest(name=name), metadata=named),
                     sync.GetSyncSourceStatus(spb.GetSyncSourceStatusRequest(name=f"{name}/status"), metadata=named),
                     sync.CreateSyncSource(spb.CreateSyncSourceRequest(), metadata=named),
                     sync.UpdateSyncSource(spb.UpdateSyncSourceRequest(), metadata=named),
                     sync.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=name), metadata=named),
                     sync.RunSyncSource(spb.RunSyncSourceRequest(name=name), metadata=named)):
            assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sync_sources WHERE source_id = $1", source)
    # every REST shape: a 403 in the vendor's own body
    headers = {"Authorization": f"Bearer {tenant.keys['sync_service']}"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answers = [
            (await http.get("/api/v1/networks/N/wireless/clients/c1/connectivityEvents", headers=headers),
             meraki.error_body(403, meraki.AUTH.forbidden)),
            (await http.get("/V5/devices/clients/connectionlogs", params={"clientmacaddress": "f0:d7:aa:df:59:a2"},
                            headers=headers), mojo.error_body(403, mojo.AUTH.forbidden)),
            (await http.post("/api/v1/device_app_connection_log/", json=ZEQUENZE_SAMPLES["wifi"], headers=headers),
             zequenze.error_body(403, zequenze.AUTH.forbidden)),
        ]
    for response, body in answers:
        assert (response.status_code, response.json()) == (403, body), response.request.url


async def test_a_device_key_of_another_shape_may_not_use_zequenzes(pool, gateway):
    tenant_id = f"t-{secrets.token_hex(4)}"
    key = await create_key(AccountStore(pool), tenant_id=tenant_id, role=Role.DEVICE, device_id="dev-9",
                           shape="another-shape")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/api/v1/device_app_connection_log/", json=ZEQUENZE_SAMPLES["wifi"],
                                   headers={"Authorization": f"Bearer {key.token}"})
    assert (response.status_code, response.json()) == (403, {"detail": zequenze.AUTH.forbidden})


async def test_a_revoked_keys_login_sessions_end_at_once(gateway, tenant, pool):
    key_id, secret = tenant.keys["viewer"].split("_", 2)[1:]
    url = "/V5/devices/clients/connectionlogs"
    params = {"clientmacaddress": "f0:d7:aa:df:59:a2"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/new/webservice/login/key/acme-client/30",
                                   content=json.dumps({"type": "apikeycredentials", "keyId": key_id,
                                                       "keyValue": secret}),
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        assert (await http.get(url, params=params)).status_code == 200
        assert await AccountStore(pool).revoke_key(key_id)
        assert (await http.get(url, params=params)).status_code == 401


def _keys_cli(database_url: str, data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.update(DATABASE_URL=database_url, CONNLOG_DATA_DIR=str(data_dir), CONNLOG_LOG_FORMAT="console")
    return subprocess.run([sys.executable, "-m", "connlog", "keys", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def test_keys_create_the_sync_service_key_and_device_keys_of_a_shape(database_url, tmp_path, pool):
    created = _keys_cli(database_url, tmp_path, "create", "--role", "sync_service", "--description", "vendor-sync")
    assert created.returncode == 0, created.stderr
    record = await AccountStore(pool).find_key(created.stdout.strip().split("_")[1])
    assert record is not None and (record.role, record.tenant_ref, record.shape) == ("sync_service", None, None)
    device = _keys_cli(database_url, tmp_path, "create", "--tenant", "cli-shapes", "--role", "device",
                       "--device-id", "D1", "--shape", "zequenze")
    assert device.returncode == 0, device.stderr
    record = await AccountStore(pool).find_key(device.stdout.strip().split("_")[1])
    assert record is not None and (record.role, record.device_id, record.shape) == ("device", "D1", "zequenze")
    for args, said in [
        (("--role", "sync_service", "--tenant", "t"), "no tenant"),
        (("--role", "viewer"), "needs --tenant"),
        (("--role", "device", "--tenant", "t", "--device-id", "D", "--shape", "meraki"), "--shape"),
        (("--role", "viewer", "--tenant", "t", "--shape", "zequenze"), "only device keys have a shape"),
    ]:
        refused = _keys_cli(database_url, tmp_path, "create", *args)
        assert refused.returncode == 2 and said in refused.stderr, (args, refused.stderr)
