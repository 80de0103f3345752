"""Per-key write budgets on every write path (connlog.core.budgets): a
request costs the events it writes (at least 1); over budget, gRPC answers
RESOURCE_EXHAUSTED with ``retry-after`` and Zequenze a 429 in Django REST
framework's words with ``Retry-After``. Each key (and, for the sync service's
key, each tenant) has a budget of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import httpx
import pytest
from pydantic import SecretStr

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.core.auth import SYNC_SOURCE_HEADER, create_service_key
from connlog.core.server import start_service
from connlog.store.accounts import AccountStore
from tests.support.factories import simple_event
from tests.support.gateway import Gateway, envoy_in_front
from tests.support.gateway_calls import ZEQUENZE_SAMPLES
from tests.support.services import Tenant

BURST = 5  # events (or writes) a key may make at once; refilled at 1 per 1000 s: never within a test
DEVICE_BURST = 2


@dataclass
class Budgeted:
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    sync: sgrpc.VendorSyncServiceStub
    gateway: Gateway


@pytest.fixture(scope="module")
async def budgeted(suite, pool, tmp_path_factory) -> AsyncIterator[Budgeted]:
    """Ingest and vendor-sync services (and an Envoy in front) with tiny write budgets."""
    from connlog.ingest.servicer import register as register_ingest
    from connlog.vendorsync.servicer import register as register_sync

    key = await create_service_key(AccountStore(pool), description="tests: budgets")
    settings = suite.settings.model_copy(update={
        "key_write_events_per_second": 0.001, "key_write_burst": BURST,
        "device_write_events_per_second": 0.001, "device_write_burst": DEVICE_BURST,
        "sync_schedule_seconds": 3600.0, "sync_service_key": SecretStr(key.token),
    })
    ingest = await start_service("ingest", settings, register_ingest, port=0)
    settings = settings.model_copy(update={"sync_ingest_address": f"127.0.0.1:{ingest.port}"})
    try:
        sync = await start_service("vendor-sync", settings, register_sync, port=0, pool=pool)
    except BaseException:
        await ingest.stop(1)
        raise
    try:
        async with envoy_in_front(settings, tmp_path_factory.mktemp("envoy-budgets"),
                                  ingest=f"127.0.0.1:{ingest.port}", query=suite.query_address) as gateway, \
                grpc.aio.insecure_channel(f"127.0.0.1:{ingest.port}") as ingest_channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{sync.port}") as sync_channel:
            yield Budgeted(ingest_service_pb2_grpc.IngestServiceStub(ingest_channel),
                           sgrpc.VendorSyncServiceStub(sync_channel), gateway)
    finally:
        await sync.stop(1)
        await ingest.stop(1)


def events(n: int, network: str = "N_budget", **fields) -> list[pb.ConnectionEvent]:
    tag = secrets.token_hex(3)
    return [simple_event(network, client_id=f"c-{tag}-{i}", **fields) for i in range(n)]


async def outcome(call) -> tuple[grpc.StatusCode, str | None]:
    """The call's status code and, when refused, its ``retry-after``."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code(), dict(err.trailing_metadata() or ()).get("retry-after")
    return grpc.StatusCode.OK, None


def unary(budgeted: Budgeted, md, n: int, **fields):
    return budgeted.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events(n, **fields)),
                                                  metadata=md)


async def stream(budgeted: Budgeted, md, sizes: list[int]):
    call = budgeted.ingest.StreamIngestConnectionEvents(metadata=md)
    for n in sizes:
        await call.write(ipb.StreamIngestConnectionEventsRequest(events=events(n)))
    await call.done_writing()
    return await call


OK, EXHAUSTED = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_unary_ingest_costs_its_events(budgeted, tenant: Tenant):
    md = tenant.md("operator")
    assert await outcome(unary(budgeted, md, 3)) == (OK, None)
    assert await outcome(unary(budgeted, md, 2)) == (OK, None)
    code, retry_after = await outcome(unary(budgeted, md, 1))
    assert code is EXHAUSTED and retry_after is not None and int(retry_after) >= 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await unary(budgeted, md, 1)
    assert err.value.details().startswith("write budget of this API key exhausted: retry in ")
    # another key of the same tenant has its own budget
    assert await outcome(unary(budgeted, tenant.md("administrator"), BURST)) == (OK, None)


async def test_a_stream_is_charged_per_message(budgeted, tenant: Tenant):
    md = tenant.md("operator")
    reply = await stream(budgeted, md, [2, 2, 1])
    assert reply.accepted_count == BURST
    code, retry_after = await outcome(stream(budgeted, md, [1]))
    assert code is EXHAUSTED and int(retry_after or 0) >= 1
    # an empty request still costs one
    assert await outcome(unary(budgeted, tenant.md("super_user"), 0)) == (OK, None)
    assert await outcome(stream(budgeted, tenant.md("super_user"), [2, 2])) == (OK, None)
    code, _ = await outcome(stream(budgeted, tenant.md("super_user"), [1]))
    assert code is EXHAUSTED


async def test_source_management_writes_are_charged(budgeted, tenant: Tenant):
    """Each write of VendorSyncService costs one (a budget of the key in
    the vendor-sync process: each process keeps its own)."""
    md = tenant.md("administrator")
    name = "syncSources/0123456789abcdef"
    for _ in range(BURST):
        code, _ = await outcome(budgeted.sync.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=name), metadata=md))
        assert code is grpc.StatusCode.NOT_FOUND
    for call in (budgeted.sync.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=name), metadata=md),
                 budgeted.sync.RunSyncSource(spb.RunSyncSourceRequest(name=name), metadata=md),
                 budgeted.sync.CreateSyncSource(spb.CreateSyncSourceRequest(), metadata=md),
                 budgeted.sync.UpdateSyncSource(spb.UpdateSyncSourceRequest(), metadata=md)):
        code, retry_after = await outcome(call)
        assert code is EXHAUSTED and int(retry_after or 0) >= 1
    # reads are not writes
    assert (await outcome(budgeted.sync.ListSyncSources(spb.ListSyncSourcesRequest(), metadata=md)))[0] is OK


async def test_a_device_posting_to_zequenze_is_throttled_in_its_words(budgeted, make_tenant):
    first, second = await make_tenant(), await make_tenant()
    url = "/api/v1/device_app_connection_log/"
    async with httpx.AsyncClient(base_url=budgeted.gateway.url) as http:
        def post(tenant: Tenant):
            return http.post(url, json=ZEQUENZE_SAMPLES["wifi"],
                             headers={"Authorization": f"Bearer {tenant.keys['device']}"})

        for _ in range(DEVICE_BURST):
            assert (await post(first)).status_code == 201
        refused = await post(first)
        assert (await post(second)).status_code == 201  # a budget per key
    wait = int(refused.headers["retry-after"])
    assert wait >= 1
    assert (refused.status_code, refused.json()) == (
        429, {"detail": f"Request was throttled. Expected available in {wait} seconds."})


async def test_the_sync_key_has_a_budget_per_tenant(budgeted, make_tenant, pool: asyncpg.Pool):
    a, b = await make_tenant(), await make_tenant()
    sources = []
    async with pool.acquire() as conn:
        for tenant in (a, b):
            source_id = secrets.token_hex(8)
            await conn.execute(
                """INSERT INTO sync_sources (source_id, tenant_ref, vendor, base_url, network_id, clients, enabled)
                   SELECT $1, tenant_ref, $3, 'https://sync-source.invalid/api/v1', 'N_budget', ARRAY['c1'], true
                   FROM tenants WHERE tenant_id = $2""",
                source_id, tenant.tenant_id, pb.VENDOR_MERAKI)
            sources.append(source_id)
    try:
        service = a.keys["sync_service"]
        md_a = (("authorization", f"Bearer {service}"), (SYNC_SOURCE_HEADER, sources[0]))
        md_b = (("authorization", f"Bearer {service}"), (SYNC_SOURCE_HEADER, sources[1]))
        meraki = {"source": pb.Source(vendor=pb.VENDOR_MERAKI)}
        assert await outcome(unary(budgeted, md_a, BURST, **meraki)) == (OK, None)
        assert (await outcome(unary(budgeted, md_a, 1, **meraki)))[0] is EXHAUSTED
        assert await outcome(unary(budgeted, md_b, BURST, **meraki)) == (OK, None)
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sync_sources WHERE source_id = ANY($1::text[])", sources)


async def test_the_rest_ingest_answers_429_with_retry_after(budgeted, tenant: Tenant):
    from google.protobuf import json_format

    body = {"events": [json_format.MessageToDict(e) for e in events(BURST)]}
    headers = {"Authorization": f"Bearer {tenant.keys['operator']}"}
    async with httpx.AsyncClient(base_url=budgeted.gateway.url) as http:
        assert (await http.post("/v1/connectionEvents:ingest", json=body, headers=headers)).status_code == 200
        refused = await http.post("/v1/connectionEvents:ingest", json={"events": body["events"][:1]}, headers=headers)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
