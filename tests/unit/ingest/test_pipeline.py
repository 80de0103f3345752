"""connlog.ingest.pipeline without a database: one method per mode, each
with one kind of answer. ``ingest_batch`` answers every event (unary RPC,
REST shapes); ``ingest_stream_batch`` answers counts and rejections only,
stores without asking for ids, and alone hands large batches to the worker
processes. The stores are in-memory fakes."""

from __future__ import annotations

import datetime as dt
import struct
from typing import NamedTuple

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.core.caches import BoundedCache
from connlog.core.metrics import ServiceMetrics
from connlog.core.principal import Principal, Role
from connlog.core.settings import Settings
from connlog.ingest import caches
from connlog.ingest.batches import prepare_events
from connlog.ingest.pipeline import WORKER_MIN_EVENTS, BatchResults, IngestPipeline, StreamBatchOutcome
from connlog.store.events import CopiedRows, InsertOutcome
from tests.support.copy_format import copy_fields, timestamptz
from tests.support.factories import now, simple_event

ACCEPTED, DUPLICATE, REJECTED = ipb.INGEST_STATUS_ACCEPTED, ipb.INGEST_STATUS_DUPLICATE, ipb.INGEST_STATUS_REJECTED
PRINCIPAL = Principal("key", "t", 5, Role.OPERATOR, None)


class FakeEvents:
    """EventStore in memory: ids by (dedup_key, occurred_at)."""

    def __init__(self) -> None:
        self.ids: dict[tuple[bytes, dt.datetime], int] = {}
        self.calls: list[tuple[str, int]] = []  # (method, events)
        self.copy_first: list[bool] = []  # insert_copied's, call by call

    def _put(self, events) -> list[InsertOutcome]:
        outcomes = []
        for event in events:
            key = (event.dedup_key, event.occurred_at)
            new = key not in self.ids
            if new:
                self.ids[key] = len(self.ids) + 1
            outcomes.append(InsertOutcome(self.ids[key], new))
        return outcomes

    async def insert(self, tenant_ref, events, network_refs):
        assert tenant_ref == PRINCIPAL.tenant_ref and {e.network_id for e in events} <= network_refs.keys()
        self.calls.append(("insert", len(events)))
        return self._put(events)

    async def insert_group(self, batches):  # group commit (small calls): ids come back, as from insert
        found = []
        for tenant_ref, events, network_refs in batches:
            assert tenant_ref == PRINCIPAL.tenant_ref and {e.network_id for e in events} <= network_refs.keys()
            self.calls.append(("insert", len(events)))
            found.append({(e.dedup_key, e.occurred_at): o for e, o in zip(events, self._put(events), strict=True)})
        return found

    async def insert_copied(self, rows, tenant_ref, network_refs, *, copy_first=True):  # streams
        assert tenant_ref == PRINCIPAL.tenant_ref and rows.networks.keys() <= network_refs.keys()
        self.calls.append(("insert_copied", rows.row_count))
        self.copy_first.append(copy_first)
        fields = copy_fields(rows.bound(network_refs))  # tenant, network ref, time, dedup key, ...
        assert {struct.unpack(">ii", f[0] + f[1]) for f in fields} <= {(tenant_ref, r) for r in network_refs.values()}
        keys = [(f[3], timestamptz(f[2])) for f in fields]
        assert len(keys) == rows.row_count
        outcomes = self._put(_Keyed(*key) for key in keys)
        return CopiedRows(sum(outcome.new for outcome in outcomes), copy_first and not all(o.new for o in outcomes))


class _Keyed(NamedTuple):
    dedup_key: bytes
    occurred_at: dt.datetime


class FakeAccounts:
    def __init__(self) -> None:
        self.networks: dict[str, int] = {}
        self.access_points: list[tuple] = []

    async def ensure_networks(self, tenant_ref, network_ids):
        return {n: self.networks.setdefault(n, 100 + len(self.networks)) for n in network_ids}

    async def record_access_points(self, tenant_ref, rows):
        self.access_points += rows


class FakeWorkers:
    def __init__(self) -> None:
        self.batches: list[int] = []

    async def prepare(self, events, principal, window):
        self.batches.append(len(events))
        return prepare_events(events, principal, window)


def _pipeline(workers=None) -> tuple[IngestPipeline, FakeEvents, FakeAccounts, ServiceMetrics]:
    events, accounts, metrics = FakeEvents(), FakeAccounts(), ServiceMetrics("ingest")
    pipeline = IngestPipeline(Settings(retention_days=31, max_future_seconds=86400), None, metrics, workers,
                              events=events, accounts=accounts)
    return pipeline, events, accounts, metrics


T0 = now() - dt.timedelta(hours=1)
# Events by letter: the same letter is the same event; "bad" is refused (no step).
SPECS = {
    "a": lambda: simple_event("N_1", client_id="a", when=T0, access_point=pb.AccessPoint(serial="Q2-A", name="one")),
    "b": lambda: simple_event("N_2", client_id="b", when=T0),
    "c": lambda: simple_event("N_1", client_id="c", when=T0 + dt.timedelta(seconds=1)),
    "bad": lambda: simple_event("N_1", client_id="x", when=T0, step=0),
}


def _events(letters: str) -> list[pb.ConnectionEvent]:
    return [SPECS[letter]() for letter in letters.split()]


# (stored before, batch, statuses in order, (accepted, duplicate, rejected))
BATCH_CASES = [
    ("", "a", [ACCEPTED], (1, 0, 0)),
    ("", "a a", [ACCEPTED, DUPLICATE], (1, 1, 0)),
    ("", "a bad b", [ACCEPTED, REJECTED, ACCEPTED], (2, 0, 1)),
    ("a", "a c", [DUPLICATE, ACCEPTED], (1, 1, 0)),
    ("", "bad bad", [REJECTED, REJECTED], (0, 0, 2)),
]


@pytest.mark.parametrize(("before", "batch", "statuses", "counts"), BATCH_CASES)
async def test_ingest_batch_answers_every_event_in_order(before, batch, statuses, counts):
    pipeline, events, accounts, metrics = _pipeline(FakeWorkers())
    if before:
        await pipeline.ingest_batch(PRINCIPAL, _events(before))
        events.calls.clear()
    outcome = await pipeline.ingest_batch(PRINCIPAL, _events(batch))
    assert type(outcome) is BatchResults
    assert [r.status for r in outcome.results] == statuses
    assert [r.index for r in outcome.results] == list(range(len(statuses)))
    assert (outcome.accepted, outcome.duplicate, outcome.rejected) == counts
    names = ("accepted_count", "duplicate_count", "rejected_count")
    assert outcome.response_counts() == dict(zip(names, counts, strict=True))
    for result in outcome.results:
        if result.status == REJECTED:
            assert result.field == "step" and not result.event_id
        else:
            assert result.event_id and result.name.endswith(f"/connectionEvents/{result.event_id}")
    # the same event twice: one id
    ids: dict[str, set[str]] = {}
    for letter, result in zip(batch.split(), outcome.results, strict=True):
        if letter != "bad":
            ids.setdefault(letter, set()).add(result.event_id)
    assert all(len(same) == 1 for same in ids.values())
    stored = sum(1 for s in statuses if s != REJECTED)
    assert all(method == "insert" for method, _ in events.calls)  # every id comes back
    assert len(events.calls) == (1 if stored else 0)
    assert pipeline._workers.batches == []  # never the workers


# (stream index of the batch, batch, rejected stream indexes, (accepted, duplicate, rejected))
STREAM_CASES = [
    (0, "a", [], (1, 0, 0)),
    (2000, "a bad a b", [2001], (2, 1, 1)),
    (10, "bad c bad", [10, 12], (1, 0, 2)),
    (0, "bad", [0], (0, 0, 1)),
]


@pytest.mark.parametrize(("first_index", "batch", "rejected_at", "counts"), STREAM_CASES)
async def test_ingest_stream_batch_answers_counts_and_rejections_only(first_index, batch, rejected_at, counts):
    pipeline, events, _, metrics = _pipeline()
    outcome = await pipeline.ingest_stream_batch(PRINCIPAL, _events(batch), first_index)
    assert type(outcome) is StreamBatchOutcome
    assert [r.index for r in outcome.rejections] == rejected_at
    assert all(r.status == REJECTED and r.field == "step" for r in outcome.rejections)
    assert (outcome.accepted, outcome.duplicate, outcome.rejected) == counts
    unique = len({letter for letter in batch.split() if letter != "bad"})
    assert events.calls == ([("insert_copied", unique)] if unique else [])  # no ids asked for
    for label, n in zip(("accepted", "duplicate", "rejected"), counts, strict=True):
        assert metrics.events.labels(label)._value.get() == n


async def test_a_stream_batch_of_stored_events_counts_duplicates():
    pipeline, *_ = _pipeline()
    await pipeline.ingest_stream_batch(PRINCIPAL, _events("a b"))
    outcome = await pipeline.ingest_stream_batch(PRINCIPAL, _events("a b c"), 2)
    assert (outcome.accepted, outcome.duplicate, outcome.rejected, outcome.rejections) == (1, 2, 0, [])


def _many(n: int) -> list[pb.ConnectionEvent]:
    return [simple_event("N_1", client_id=f"k{i}", when=T0) for i in range(n)]


@pytest.mark.parametrize(("size", "to_workers"), [(WORKER_MIN_EVENTS - 1, False), (WORKER_MIN_EVENTS, True)])
async def test_only_large_stream_batches_go_to_the_workers(size, to_workers):
    pipeline, *_ = _pipeline(FakeWorkers())
    outcome = await pipeline.ingest_stream_batch(PRINCIPAL, _many(size))
    assert outcome.accepted == size
    assert pipeline._workers.batches == ([size] if to_workers else [])
    results = await pipeline.ingest_batch(PRINCIPAL, _many(WORKER_MIN_EVENTS))  # a unary batch: never
    assert len(results.results) == WORKER_MIN_EVENTS
    assert pipeline._workers.batches == ([size] if to_workers else [])


@pytest.mark.parametrize("mode", ["batch", "stream"])
async def test_access_points_are_recorded_once_per_hour(mode):
    pipeline, _, accounts, _ = _pipeline()

    async def ingest(letters):
        if mode == "batch":
            return await pipeline.ingest_batch(PRINCIPAL, _events(letters))
        return await pipeline.ingest_stream_batch(PRINCIPAL, _events(letters))

    await ingest("a b")
    await ingest("a")  # recorded already, same network and name
    assert [r[0] for r in accounts.access_points] == ["Q2-A"]


def test_the_pipeline_creates_its_own_declared_caches():
    first, second = _pipeline()[0], _pipeline()[0]
    held = {name: value for name, value in vars(first).items() if isinstance(value, BoundedCache)}
    assert sorted(c.name for c in held.values()) == sorted(spec.name for spec in caches.INGEST_CACHES)
    for cache in held.values():
        spec = next(s for s in caches.INGEST_CACHES if s.name == cache.name)
        assert (cache.max_entries, cache.max_bytes) == (spec.max_entries, spec.max_bytes)
    assert all(value is not vars(second)[name] for name, value in held.items())  # not shared


@pytest.mark.parametrize("spec", caches.INGEST_CACHES, ids=lambda spec: spec.name)
def test_each_declared_cache_is_bounded(spec):
    cache = spec.create()
    assert cache.name.startswith("ingest.") and cache.max_entries >= 1
    assert (spec.max_bytes is None) == (spec.sizeof is None)
    assert cache is not spec.create()
