"""SyncWorker's side of the leases, against a store kept in memory (the SQL
of the leases is tested on a real database in tests/test_vendor_sync_leases.py):
a replica holds at most ``sync_claim_batch`` sources, releases each after its
poll, stops a poll whose renewal finds the lease lost, and answers
``run_now`` for a source another replica holds by waiting for that poll (or
taking it over once its lease lapses)."""

from __future__ import annotations

import asyncio
import datetime as dt

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.core.sealing import Sealer
from connlog.core.settings import Settings
from connlog.store.sync import Lease, SourceRecord
from connlog.vendorsync.worker import SyncWorker


def _record(source_id: str) -> SourceRecord:
    when = dt.datetime.now(dt.UTC)
    return SourceRecord(source_id, "t", 1, "", pb.VENDOR_MERAKI, "https://api.meraki.example/api/v1", b"sealed",
                        "N_1", "", ["k1"], 3600.0, 0.0, "", "", True, spb.SYNC_SOURCE_STATE_ACTIVE, "", when, when,
                        True)


class Store:
    """The lease calls of SyncStore, in memory."""

    def __init__(self, due: list[str]) -> None:
        self.due = due
        self.limits: list[int] = []
        self.released: list[tuple[str, bool]] = []
        self.renewals = 0
        self.renew_ok = True
        self.claimable: set[str] = set()
        self.leases: list[Lease] = []  # what ``lease`` answers, one per call (the last one repeated)

    async def claim_due(self, holder: str, lease_seconds: float, limit: int) -> list[SourceRecord]:
        self.limits.append(limit)
        taken, self.due = self.due[:limit], self.due[limit:]
        return [_record(i) for i in taken]

    async def claim(self, source_id: str, holder: str, lease_seconds: float) -> SourceRecord | None:
        return _record(source_id) if source_id in self.claimable else None

    async def renew(self, source_id: str, holder: str, lease_seconds: float) -> bool:
        self.renewals += 1
        return self.renew_ok

    async def release(self, source_id: str, holder: str, *, polled: bool) -> bool:
        self.released.append((source_id, polled))
        return True

    async def lease(self, source_id: str) -> Lease | None:
        return self.leases.pop(0) if len(self.leases) > 1 else self.leases[0]


class Polls:
    """Stands in for ``poll_source``: each poll waits for its gate."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.finished: list[str] = []

    async def __call__(self, source: SourceRecord) -> None:
        self.started.append(source.source_id)
        await self.gates.setdefault(source.source_id, asyncio.Event()).wait()
        self.finished.append(source.source_id)

    def finish(self, source_id: str) -> None:
        self.gates.setdefault(source_id, asyncio.Event()).set()


async def _until(predicate, what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _worker(store: Store, polls: Polls, **settings) -> SyncWorker:
    worker = SyncWorker(Settings(**settings), store, metrics=None, sealer=Sealer([]))  # type: ignore[arg-type]
    worker.poll_source = polls  # type: ignore[method-assign]
    return worker


async def test_a_replica_holds_at_most_its_batch_and_releases_each_after_its_poll():
    store, polls = Store([f"s{i}" for i in range(5)]), Polls()
    worker = _worker(store, polls, sync_claim_batch=3)
    try:
        await worker.schedule_once()
        await _until(lambda: len(polls.started) == 3, "three polls")
        await worker.schedule_once()  # no room: nothing claimed
        assert store.limits == [3] and polls.started == ["s0", "s1", "s2"]
        polls.finish("s1")
        await _until(lambda: store.released == [("s1", True)], "s1 released, polled")
        await worker.schedule_once()
        assert store.limits == [3, 1]
        await _until(lambda: polls.started == ["s0", "s1", "s2", "s3"], "s3 polled")
    finally:
        await worker.close()
    # at shutdown the rest are released unpolled: due at once for another replica
    assert sorted(store.released) == [("s0", False), ("s1", True), ("s2", False), ("s3", False)]


async def test_a_lost_renewal_stops_the_poll_at_once():
    store, polls = Store(["s0"]), Polls()
    store.renew_ok = False
    worker = _worker(store, polls, sync_lease_seconds=1.0)
    try:
        await worker.schedule_once()
        await _until(lambda: ("s0", False) in store.released, "the poll stopped")
        assert store.renewals == 1 and polls.started == ["s0"] and polls.finished == []
    finally:
        await worker.close()


async def test_renewals_keep_a_long_poll_going():
    store, polls = Store(["s0"]), Polls()
    worker = _worker(store, polls, sync_lease_seconds=1.0)
    try:
        await worker.schedule_once()
        await _until(lambda: store.renewals >= 3, "three renewals")
        assert store.released == []
        polls.finish("s0")
        await _until(lambda: store.released == [("s0", True)], "released after the poll")
    finally:
        await worker.close()


async def test_run_now_on_a_source_another_replica_polls_waits_for_that_poll():
    store, polls = Store([]), Polls()
    store.leases = [Lease("other:1:x", True), Lease("other:1:x", True), Lease(None, False)]
    worker = _worker(store, polls, sync_lease_seconds=1.0)
    try:
        await asyncio.wait_for(worker.run_now("s0", wait=True), 60)
        assert polls.started == [] and store.leases == [Lease(None, False)]  # waited until it was released
        store.leases = [Lease("other:1:x", True)]
        await asyncio.wait_for(worker.run_now("s0", wait=False), 60)  # that replica's poll is the one
        assert polls.started == []
    finally:
        await worker.close()


async def test_run_now_takes_over_a_source_whose_holder_lapsed():
    store, polls = Store([]), Polls()
    store.leases = [Lease("other:1:x", True), Lease("other:1:x", False)]
    worker = _worker(store, polls, sync_lease_seconds=1.0)
    try:
        # not claimable at first (held by the other), then lapsed: claimable
        claims = iter([None])
        real_claim = store.claim

        async def claim(source_id, holder, lease_seconds):
            return next(claims, None) or await real_claim(source_id, holder, lease_seconds)

        store.claim = claim  # type: ignore[method-assign]
        store.claimable = {"s0"}
        run = asyncio.create_task(worker.run_now("s0", wait=True))
        await _until(lambda: polls.started == ["s0"], "polled here")
        assert not run.done()  # until that poll is done
        polls.finish("s0")
        await asyncio.wait_for(run, 60)
        assert store.released == [("s0", True)]
    finally:
        await worker.close()


async def test_run_now_on_its_own_poll_waits_for_it_and_claims_nothing():
    store, polls = Store(["s0"]), Polls()
    worker = _worker(store, polls)
    try:
        await worker.schedule_once()
        await _until(lambda: polls.started == ["s0"], "s0 polled")
        run = asyncio.create_task(worker.run_now("s0", wait=True))
        await asyncio.sleep(0)
        assert not run.done()
        polls.finish("s0")
        await asyncio.wait_for(run, 60)
        assert polls.started == ["s0"]
    finally:
        await worker.close()
