"""API keys, roles and tenant isolation."""

from __future__ import annotations

import grpc
import pytest

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.store.accounts import AccountStore
from tests.support.factories import simple_event


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


async def test_device_keys_push_only_their_own_device(clients, tenant):
    own = simple_event("N_dev", client_id="phone-1")
    other = simple_event("N_dev", client_id="phone-1", mac="02:00:00:00:00:09")
    other.client.reporting_device_id = "someone-else"
    reply = await _ingest(clients, tenant.md("device"), [own, other])
    assert reply.results[0].status == ipb.INGEST_STATUS_ACCEPTED
    assert reply.results[1].status == ipb.INGEST_STATUS_REJECTED
    assert reply.results[1].field == "client.reporting_device_id"
    stored = await clients.query.GetConnectionEvent(
        qpb.GetConnectionEventRequest(name=reply.results[0].name), metadata=tenant.md("viewer")
    )
    assert stored.client.reporting_device_id == "dev-1"


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
