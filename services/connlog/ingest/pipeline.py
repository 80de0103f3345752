"""The ingest pipeline: normalise a batch, de-duplicate it, store it, and
report what happened to every event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.auth import Principal
from connlog.core.caches import BoundedCache
from connlog.core.identifiers import event_name
from connlog.core.logging import get_logger
from connlog.core.metrics import ServiceMetrics
from connlog.core.settings import Settings
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.workers import NormaliserPool, normalise_events
from connlog.store.accounts import AccountStore
from connlog.store.events import EventStore, NoPartitionError, StoredEvent
from connlog.store.partitions import maintain_partitions

# Batches at least this large go to the worker processes, if any.
WORKER_MIN_EVENTS = 256

# The validation memo (see normalise._check_set_fields): sub-messages that
# passed, by path and serialized content. Small ones only (normalise skips
# larger ones), and at most this many / this many bytes, least recently used
# first out. A typical entry is 30-100 bytes of content plus ~200 of overhead.
MEMO_MAX_ENTRIES = 50_000
MEMO_MAX_BYTES = 16 * 1024 * 1024
NETWORK_REFS_MAX_ENTRIES = 50_000  # (tenant, network id) -> network_ref
ACCESS_POINTS_MAX_ENTRIES = 50_000  # (tenant, AP serial) -> last recorded (network, name, time)
ACCESS_POINTS_MAX_BYTES = 16 * 1024 * 1024
_ENTRY_OVERHEAD = 200  # bytes CPython spends on a small cache entry besides its content


def _memo_size(key: tuple[str, bytes], value: object) -> int:
    return len(key[1]) + _ENTRY_OVERHEAD


def _access_point_size(key: tuple[int, str], value: tuple[int, str, dt.datetime]) -> int:
    return len(key[1]) + 2 * len(value[1]) + _ENTRY_OVERHEAD + 100  # the value tuple and its datetime


def new_validation_memo() -> BoundedCache:
    """The memo ``normalise`` keeps between events (one per pipeline)."""
    return BoundedCache("ingest.validation_memo", MEMO_MAX_ENTRIES, MEMO_MAX_BYTES, _memo_size)

ACCEPTED = ingest_pb.INGEST_STATUS_ACCEPTED
DUPLICATE = ingest_pb.INGEST_STATUS_DUPLICATE
REJECTED = ingest_pb.INGEST_STATUS_REJECTED


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to a batch: counts, and per-event results."""

    results: list[ingest_pb.IngestResult]
    accepted: int
    duplicate: int
    rejected: int


class IngestPipeline:
    """Turns batches of incoming events into stored rows and per-event results."""

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, metrics: ServiceMetrics, workers: NormaliserPool | None = None
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._events = EventStore(pool)
        self._accounts = AccountStore(pool)
        self._metrics = metrics
        self._network_refs: BoundedCache[tuple[int, str], int] = BoundedCache(
            "ingest.network_refs", NETWORK_REFS_MAX_ENTRIES)
        self._access_points: BoundedCache[tuple[int, str], tuple[int, str, dt.datetime]] = BoundedCache(
            "ingest.access_points", ACCESS_POINTS_MAX_ENTRIES, ACCESS_POINTS_MAX_BYTES, _access_point_size)
        self._passed = new_validation_memo()  # sub-messages that passed validation (see normalise)
        self._workers = workers
        self._log = get_logger("ingest")

    def window(self, now: dt.datetime | None = None) -> IngestWindow:
        now = now or dt.datetime.now(dt.timezone.utc)
        return IngestWindow(
            earliest=now - dt.timedelta(days=self._settings.retention_days),
            latest=now + dt.timedelta(seconds=self._settings.max_future_seconds),
            retention_days=self._settings.retention_days,
        )

    async def maintain_partitions(self) -> None:
        async with self._pool.acquire() as conn:
            changes = await maintain_partitions(
                conn,
                retention_days=self._settings.retention_days,
                ahead_days=self._settings.partitions_ahead_days,
            )
        if changes.created or changes.dropped:
            self._log.info(
                "partitions maintained",
                created=len(changes.created),
                dropped=len(changes.dropped),
                range=[min(changes.created + changes.dropped), max(changes.created + changes.dropped)],
            )

    async def ingest(
        self, principal: Principal, events: Sequence[pb.ConnectionEvent], first_index: int = 0,
        *, every_result: bool = True,
    ) -> BatchOutcome:
        """Ingest one batch. The outcome holds one result per event, in order
        (or, with ``every_result=False``, only the rejected ones, which is all
        a stream reports). The events are normalised in place (callers hand
        over their messages)."""
        window = self.window()
        if not every_result and self._workers is not None and len(events) >= WORKER_MIN_EVENTS:
            normalised, invalid = await self._workers.normalise(events, principal, window)
        else:
            normalised, invalid = normalise_events(events, principal, window, self._passed)
        results: list[ingest_pb.IngestResult | None] = [None] * len(events)
        for position, field_name, reason in invalid:
            results[position] = ingest_pb.IngestResult(
                index=first_index + position, status=REJECTED, field=field_name, reason=reason
            )
        to_store: list[StoredEvent] = []
        positions: list[list[int]] = []  # batch positions sharing each stored event
        seen: dict[tuple[bytes, dt.datetime], int] = {}
        for position, stored in normalised:
            key = (stored.dedup_key, stored.occurred_at)
            if key in seen:  # the same event twice in one batch
                positions[seen[key]].append(position)
                continue
            seen[key] = len(to_store)
            to_store.append(stored)
            positions.append([position])

        rejected = len(events) - sum(len(shared) for shared in positions)
        accepted = 0
        if to_store:
            refs = await self._network_refs_for(principal.tenant_ref, {e.network_id for e in to_store})
            # a stream needs counts only: no ids sent back
            store = self._events.insert if every_result else self._events.insert_counting
            try:
                outcomes = await store(principal.tenant_ref, to_store, refs)
            except NoPartitionError:
                await self.maintain_partitions()
                outcomes = await store(principal.tenant_ref, to_store, refs)
            if not every_result:
                accepted = outcomes
                await self._record_access_points(principal.tenant_ref, to_store, refs)
            else:
                accepted = sum(1 for outcome in outcomes if outcome.new)
                await self._record_access_points(principal.tenant_ref, [
                    stored for stored, outcome in zip(to_store, outcomes) if outcome.new], refs)
                for stored, outcome, shared in zip(to_store, outcomes, positions):
                    for n, position in enumerate(shared):
                        results[position] = ingest_pb.IngestResult(
                            index=first_index + position,
                            status=ACCEPTED if outcome.new and n == 0 else DUPLICATE,
                            name=event_name(stored.network_id, outcome.event_id),
                            event_id=str(outcome.event_id),
                        )
        outcome = BatchOutcome(
            results=[r for r in results if r is not None],
            accepted=accepted,
            duplicate=len(events) - rejected - accepted,
            rejected=rejected,
        )
        self._count(outcome)
        return outcome

    async def _record_access_points(self, tenant_ref, stored, refs) -> None:
        """Keep the access point inventory current from stored events; an AP
        already recorded with the same network and name within the last hour
        is skipped."""
        latest: dict[str, tuple[str, int, str, dt.datetime]] = {}
        for event in stored:
            if event.ap_serial:
                seen = latest.get(event.ap_serial)
                if seen is None or seen[3] < event.occurred_at:
                    latest[event.ap_serial] = (
                        event.ap_serial, refs[event.network_id], event.ap_name or "", event.occurred_at
                    )
        changed = []
        for serial, row in latest.items():
            known = self._access_points.get((tenant_ref, serial))
            if known is None or known[:2] != row[1:3] or row[3] - known[2] > dt.timedelta(hours=1):
                changed.append(row)
        if changed:
            await self._accounts.record_access_points(tenant_ref, sorted(changed))
            for serial, network_ref, name, when in changed:
                known = self._access_points.get((tenant_ref, serial))
                if known is None or known[2] < when:
                    self._access_points[(tenant_ref, serial)] = (network_ref, name, when)

    def _count(self, outcome: BatchOutcome) -> None:
        for label, n in (("accepted", outcome.accepted), ("duplicate", outcome.duplicate),
                         ("rejected", outcome.rejected)):
            if n:
                self._metrics.events.labels(label).inc(n)

    async def _network_refs_for(self, tenant_ref: int, network_ids: set[str]) -> dict[str, int]:
        refs = {}
        for network_id in network_ids:
            ref = self._network_refs.get((tenant_ref, network_id))
            if ref is not None:
                refs[network_id] = ref
        missing = sorted(network_ids - refs.keys())
        if missing:
            created = await self._accounts.ensure_networks(tenant_ref, missing)
            for network_id, ref in created.items():
                self._network_refs[(tenant_ref, network_id)] = ref
            refs.update(created)
        return refs
