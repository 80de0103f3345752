"""Revocation takes effect at once in every process, however long keys are
cached: each process listens for changed keys (PostgreSQL LISTEN/NOTIFY,
migration 0007's trigger), forgets a revoked key and ends its open streams;
while its listener is down it does not use its cache at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import grpc
import pytest

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.auth import KeyAuthenticator
from connlog.core.server import RunningService, start_service
from connlog.store.accounts import AccountStore, KeyChangeListener
from tests.support.factories import simple_event
from tests.support.services import Clients, Tenant

DEADLINE = 30.0  # generous: each wait ends as soon as its condition holds


@pytest.fixture(scope="module")
async def cached(suite) -> AsyncIterator[tuple[list[RunningService], Clients]]:
    """Ingest and query services that cache keys for an hour."""
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query

    settings = suite.settings.model_copy(update={"auth_cache_seconds": 3600.0, "stream_batch_events": 1})
    ingest = await start_service("ingest", settings, register_ingest, port=0)
    query = await start_service("query", settings, register_query, port=0)
    try:
        for service in (ingest, query):
            await wait_until(service.ctx.auth.listener_changed, lambda auth=service.ctx.auth: auth.listening)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ingest.port}") as ingest_channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{query.port}") as query_channel:
            yield [ingest, query], Clients(ingest_service_pb2_grpc.IngestServiceStub(ingest_channel),
                                           query_service_pb2_grpc.QueryServiceStub(query_channel))
    finally:
        await ingest.stop(1)
        await query.stop(1)


async def wait_until(condition: asyncio.Condition, predicate: Callable[[], bool]) -> None:
    async with condition:
        await asyncio.wait_for(condition.wait_for(predicate), DEADLINE)


async def code(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def key_id(token: str) -> str:
    return token.split("_")[1]


async def test_a_revoked_key_is_refused_at_once_by_every_process(cached, tenant: Tenant, pool: asyncpg.Pool):
    services, clients = cached
    md = tenant.md("operator")

    def ingest():
        return clients.ingest.IngestConnectionEvents(
            ipb.IngestConnectionEventsRequest(events=[simple_event("N_revoke")]), metadata=md)

    def query():
        return clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/-"), metadata=md)

    # used once: cached for an hour in both processes
    assert await code(ingest()) == grpc.StatusCode.OK
    assert await code(query()) == grpc.StatusCode.OK
    heard = [service.ctx.auth.next_change(key_id(tenant.keys["operator"])) for service in services]
    assert await AccountStore(pool).revoke_key(key_id(tenant.keys["operator"]))
    await asyncio.wait_for(asyncio.gather(*heard), DEADLINE)
    assert await code(ingest()) == grpc.StatusCode.UNAUTHENTICATED
    assert await code(query()) == grpc.StatusCode.UNAUTHENTICATED
    # another key of the tenant is still served from the cache
    assert await code(clients.query.ListConnectionEvents(
        qpb.ListConnectionEventsRequest(parent="networks/-"), metadata=tenant.md("viewer"))) == grpc.StatusCode.OK


async def test_an_open_stream_of_a_revoked_key_ends_at_once(cached, tenant: Tenant, pool: asyncpg.Pool):
    [ingest, _], clients = cached
    auth = ingest.ctx.auth
    token = tenant.keys["administrator"]
    call = clients.ingest.StreamIngestConnectionEvents(metadata=tenant.md("administrator"))
    await call.write(ipb.StreamIngestConnectionEventsRequest(events=[simple_event("N_stream_revoke")]))
    await wait_until(auth.streams_changed, lambda: auth.live_streams(key_id(token)) == 1)

    assert await AccountStore(pool).revoke_key(key_id(token))
    # the client never ends its stream: only the revocation does
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(call, DEADLINE)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "the API key was revoked"
    await wait_until(auth.streams_changed, lambda: auth.live_streams(key_id(token)) == 0)


async def test_streams_of_other_keys_go_on(cached, tenant: Tenant, pool: asyncpg.Pool):
    [ingest, _], clients = cached
    auth = ingest.ctx.auth
    call = clients.ingest.StreamIngestConnectionEvents(metadata=tenant.md("operator"))
    await call.write(ipb.StreamIngestConnectionEventsRequest(events=[simple_event("N_stream_other")]))
    await wait_until(auth.streams_changed, lambda: auth.live_streams(key_id(tenant.keys["operator"])) == 1)
    heard = auth.next_change(key_id(tenant.keys["super_user"]))
    assert await AccountStore(pool).revoke_key(key_id(tenant.keys["super_user"]))
    await asyncio.wait_for(heard, DEADLINE)
    second = simple_event("N_stream_other", mac="02:00:00:00:00:02")
    await call.write(ipb.StreamIngestConnectionEventsRequest(events=[second]))
    await call.done_writing()
    reply = await asyncio.wait_for(call, DEADLINE)
    assert reply.accepted_count == 2


async def test_without_its_listener_a_process_does_not_trust_its_cache(pool: asyncpg.Pool, settings, make_tenant):
    """The listener's connection is terminated: until it is back, every call
    reads the store (a key revoked meanwhile, unheard, is refused); once back,
    revocations are heard again."""
    tenant = await make_tenant()
    accounts = AccountStore(pool)
    auth = KeyAuthenticator(accounts, 3600.0)
    reconnect = asyncio.Event()
    opened = 0

    async def open_listener(on_changed: Callable[[str], None]) -> KeyChangeListener:
        nonlocal opened
        opened += 1
        if opened > 1:
            await reconnect.wait()  # the test decides when the listener may come back
        return await KeyChangeListener.open(settings.database_url, on_changed)

    watch = asyncio.create_task(auth.watch_key_changes(open_listener, backoff_seconds=0.01))
    try:
        await wait_until(auth.listener_changed, lambda: auth.listening)
        first_pid = auth.listener_pid
        viewer, operator = tenant.keys["viewer"], tenant.keys["operator"]
        assert await auth.authenticate_token(viewer) is not None  # cached
        assert await auth.authenticate_token(operator) is not None  # cached

        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        await wait_until(auth.listener_changed, lambda: not auth.listening)
        assert await auth.authenticate_token(viewer) is not None  # (not cached now)
        assert await accounts.revoke_key(key_id(viewer))  # nobody hears it
        assert await auth.authenticate_token(viewer) is None  # read from the store, not the cache

        reconnect.set()
        await wait_until(auth.listener_changed, lambda: auth.listening)
        assert auth.listener_pid not in (None, first_pid)
        assert await auth.authenticate_token(viewer) is None
        assert await auth.authenticate_token(operator) is not None  # cached again
        heard = auth.next_change(key_id(operator))
        assert await accounts.revoke_key(key_id(operator))
        await asyncio.wait_for(heard, DEADLINE)
        assert await auth.authenticate_token(operator) is None
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def test_every_way_of_ending_a_key_notifies(cached, make_tenant, pool: asyncpg.Pool):
    """The trigger fires on revocation by any path, and when a key goes
    with its tenant."""
    [ingest, _], _clients = cached
    auth = ingest.ctx.auth
    tenant = await make_tenant()
    viewer = key_id(tenant.keys["viewer"])
    heard = auth.next_change(viewer)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", viewer)
    await asyncio.wait_for(heard, DEADLINE)
    operator = key_id(tenant.keys["operator"])
    heard = auth.next_change(operator)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM tenants WHERE tenant_id = $1", tenant.tenant_id)
    await asyncio.wait_for(heard, DEADLINE)
