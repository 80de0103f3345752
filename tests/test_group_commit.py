"""Group commit against the real PostgreSQL (connlog.ingest.group_commit):
concurrent single-event calls are stored in groups, and still every caller
is answered exactly, only after its event is committed, and a group the
database drops mid-flush stores nothing and fails every caller of it as
UNAVAILABLE-worthy (transient). No test depends on timing: writes are held
inside their transaction with events the test sets."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

import asyncpg
import grpc
import pytest

from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import query_service_pb2 as query_pb
from connlog.core.database import create_pool
from connlog.core.edge import is_transient
from connlog.core.metrics import ServiceMetrics
from connlog.core.principal import Principal, Role
from connlog.ingest.pipeline import IngestPipeline
from connlog.store.accounts import AccountStore
from connlog.store.events import EventStore
from tests.support.db_proxy import DatabaseProxy
from tests.support.factories import now, simple_event

ACCEPTED, DUPLICATE = ingest_pb.INGEST_STATUS_ACCEPTED, ingest_pb.INGEST_STATUS_DUPLICATE


async def test_concurrent_single_event_calls_get_exact_results_and_are_committed_when_answered(
    clients, tenant, pool
):
    when = now() - dt.timedelta(minutes=5)
    # 120 events: 40 stored before; the other 80 each sent by two callers at once (+ the 40 again): 200 calls
    events = [simple_event("N_gc", client_id=f"gc-{i}", when=when) for i in range(120)]
    before = await clients.ingest.IngestConnectionEvents(
        ingest_pb.IngestConnectionEventsRequest(events=events[:40]), metadata=tenant.md())
    assert before.accepted_count == 40
    stored_before = {r.event_id for r in before.results}
    calls = [*(i for i in range(40, 120) for _ in range(2)), *range(40)]

    async def one(i: int) -> tuple[int, ingest_pb.IngestResult, bool]:
        reply = await clients.ingest.IngestConnectionEvents(
            ingest_pb.IngestConnectionEventsRequest(events=[events[i]]), metadata=tenant.md())
        [result] = reply.results
        # the moment the answer arrives, the event is committed: another connection sees it
        visible = await pool.fetchval("SELECT EXISTS (SELECT 1 FROM connection_events WHERE id = $1)",
                                      int(result.event_id))
        return i, result, visible

    answers = await asyncio.gather(*(one(i) for i in calls))
    assert all(visible for _, _, visible in answers)
    by_event: dict[int, list[ingest_pb.IngestResult]] = {}
    for i, result, _ in answers:
        by_event.setdefault(i, []).append(result)
    for i in range(40):  # stored before: a duplicate, with the stored id
        [result] = by_event[i]
        assert result.status == DUPLICATE and result.event_id in stored_before
    for i in range(40, 120):  # two callers at once: one accepted, one duplicate, one id
        results = by_event[i]
        assert sorted(r.status for r in results) == [ACCEPTED, DUPLICATE]
        assert len({r.event_id for r in results}) == 1
    assert len({by_event[i][0].event_id for i in range(120)}) == 120
    for i in (40, 77, 119):  # each caller's own event, read back by the name it was given
        got = await clients.query.GetConnectionEvent(
            query_pb.GetConnectionEventRequest(name=by_event[i][0].name), metadata=tenant.md("viewer"))
        assert got.client.client_id == f"gc-{i}"
    count = await pool.fetchval(
        "SELECT count(*) FROM connection_events e JOIN tenants t USING (tenant_ref) WHERE t.tenant_id = $1",
        tenant.tenant_id)
    assert count == 120


class HeldInTransaction(EventStore):
    """The real store, each write held (while ``hold``) after its INSERT,
    inside its still-open transaction, until the test sets ``go``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.hold = True
        self.inside = asyncio.Event()
        self.go = asyncio.Event()

    async def _insert_returning(self, conn, tenant_ref, events, network_refs):
        found = await super()._insert_returning(conn, tenant_ref, events, network_refs)
        if self.hold:
            self.inside.set()
            await self.go.wait()
            self.go.clear()
            self.inside.clear()
        return found


async def _settle(condition, rounds: int = 2000) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


async def test_a_group_cut_off_mid_flush_stores_nothing_fails_every_caller_and_the_next_group_succeeds(
    settings, database_url, pool
):
    proxy = DatabaseProxy(database_url)
    await proxy.start()
    tenant_id = f"t-{secrets.token_hex(4)}"
    tenant_ref = await AccountStore(pool).ensure_tenant(tenant_id)
    principal = Principal("gc-test", tenant_id, tenant_ref, Role.OPERATOR, None)
    held_pool = await create_pool(settings, proxy.url, min_size=1, max_size=4)
    store = HeldInTransaction(held_pool)
    pipeline = IngestPipeline(settings.model_copy(update={"group_commit_lanes": 1}), held_pool,
                              ServiceMetrics("ingest"), events=store)
    assert pipeline._group is not None
    when = now() - dt.timedelta(minutes=5)

    def ingest(client_id: str) -> asyncio.Task:
        return asyncio.ensure_future(pipeline.ingest_batch(
            principal, [simple_event("N_cut", client_id=client_id, when=when)]))

    async def stored(*client_ids: str) -> int:  # read directly, not through the proxy
        return await pool.fetchval(
            "SELECT count(*) FROM connection_events WHERE tenant_ref = $1 AND client_id = ANY($2::text[])",
            tenant_ref, list(client_ids))

    try:
        first = ingest("first")
        await store.inside.wait()  # the first group: inserted, not committed
        assert not first.done() and await stored("first") == 0
        group = [ingest(f"b{i}") for i in range(30)]
        await _settle(lambda: pipeline._group.queued == 30)  # the next group, queued behind the first
        store.go.set()
        assert (await first).accepted == 1 and await stored("first") == 1  # answered once committed
        await store.inside.wait()  # the thirty: one group, inserted, not committed
        assert not any(task.done() for task in group)
        assert await stored(*(f"b{i}" for i in range(30))) == 0

        await proxy.cut()  # the database goes away mid-flush
        store.go.set()
        errors = await asyncio.gather(*group, return_exceptions=True)
        assert all(isinstance(e, Exception) and is_transient(e) for e in errors), errors  # UNAVAILABLE, each
        assert await stored(*(f"b{i}" for i in range(30))) == 0  # nothing of the group

        await proxy.start()
        store.hold = False
        again = await asyncio.gather(*(ingest(f"b{i}") for i in range(30)), ingest("later"))
        assert [a.accepted for a in again] == [1] * 31  # the next groups: stored, every event new
        assert await stored(*(f"b{i}" for i in range(30)), "later") == 31
    finally:
        pipeline.close()
        await held_pool.close()
        await proxy.stop()


async def test_a_database_failure_reaches_unary_callers_as_unavailable(pg_server, database_url, suite, make_tenant):
    """Through the gRPC edge: a group the database cannot store answers its
    callers UNAVAILABLE (not INTERNAL), and after the outage the same calls
    are accepted."""
    from connlog.api.v1 import ingest_service_pb2_grpc
    from connlog.core.server import start_service
    from connlog.ingest.servicer import register as register_ingest

    tenant = await make_tenant()
    proxy = DatabaseProxy(database_url)
    await proxy.start()
    settings = suite.settings.model_copy(update={
        "database_url": proxy.url, "ingest_workers": 0, "migrate_on_start": False, "database_check_seconds": 0.2})
    ingest = await start_service("ingest", settings, register_ingest, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ingest.port}") as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            when = now() - dt.timedelta(minutes=5)

            async def call(i: int):
                return await stub.IngestConnectionEvents(ingest_pb.IngestConnectionEventsRequest(
                    events=[simple_event("N_down", client_id=f"d{i}", when=when)]), metadata=tenant.md())

            await call(-1)  # the key and the network known: the outage hits the events' write
            await proxy.cut()
            results = await asyncio.gather(*(call(i) for i in range(20)), return_exceptions=True)
            assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
            assert {r.code() for r in results} == {grpc.StatusCode.UNAVAILABLE}
            await proxy.start()
            replies = await asyncio.gather(*(call(i) for i in range(20)))
            assert [r.accepted_count for r in replies] == [1] * 20
    finally:
        await ingest.stop(0)
        await proxy.stop()


@pytest.mark.parametrize("lanes", [0, 2])
async def test_unary_results_are_the_same_with_and_without_group_commit(settings, pool, lanes):
    tenant_id = f"t-{secrets.token_hex(4)}"
    tenant_ref = await AccountStore(pool).ensure_tenant(tenant_id)
    principal = Principal("gc-test", tenant_id, tenant_ref, Role.OPERATOR, None)
    pipeline = IngestPipeline(settings.model_copy(update={"group_commit_lanes": lanes}), pool,
                              ServiceMetrics("ingest"))
    when = now() - dt.timedelta(minutes=5)
    letters = [batch.split() for batch in ("a", "a b", "b b c", "", "c d")]
    batches = [[simple_event("N_same", client_id=c, when=when) for c in batch] for batch in letters]
    outcomes = await asyncio.gather(*(pipeline.ingest_batch(principal, batch) for batch in batches))
    assert sum(o.accepted for o in outcomes) == 4
    assert sum(o.duplicate for o in outcomes) == 4
    ids = {}
    for batch, outcome in zip(letters, outcomes, strict=True):
        for letter, result in zip(batch, outcome.results, strict=True):
            ids.setdefault(letter, set()).add(result.event_id)
    assert all(len(same) == 1 for same in ids.values()), (ids, outcomes)
    pipeline.close()
