"""The ingest pipeline: normalise a batch, de-duplicate it, store it, and
report what happened to it. One method per mode:

* ``ingest_batch``: every event's result, in order (the unary RPC, REST
  shapes such as Zequenze's); normalised in-process.
* ``ingest_stream_batch``: counts and the rejected events' results only (a
  stream reports no more); every batch is prepared as COPY rows
  (``connlog.ingest.batches.prepare_events``: by the worker processes for a
  large batch, if there are any, else here) and copied in, and no ids come
  back from the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.identifiers import event_name
from connlog.core.metrics import ServiceMetrics
from connlog.core.principal import Principal
from connlog.core.settings import Settings
from connlog.ingest.batches import Sightings, access_point_sightings, normalise_events, prepare_events
from connlog.ingest.caches import ACCESS_POINTS, NETWORK_REFS
from connlog.ingest.group_commit import GroupCommit
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.workers import NormaliserPool
from connlog.store.accounts import AccountStore
from connlog.store.events import EventStore, StoredEvent
from connlog.store.feed import FeedNotifier

__all__ = ["BatchResults", "IngestCounts", "IngestPipeline", "StreamBatchOutcome"]

# Stream batches at least this large go to the worker processes, if any.
WORKER_MIN_EVENTS = 256

ACCEPTED = ingest_pb.INGEST_STATUS_ACCEPTED
DUPLICATE = ingest_pb.INGEST_STATUS_DUPLICATE
REJECTED = ingest_pb.INGEST_STATUS_REJECTED


@dataclass(frozen=True)
class IngestCounts:
    """How many events of a batch were stored now, were stored already
    (or repeated within the batch), and were refused."""

    accepted: int
    duplicate: int
    rejected: int

    def response_counts(self) -> dict[str, int]:
        """The counts as the ingest responses name them."""
        return {"accepted_count": self.accepted, "duplicate_count": self.duplicate, "rejected_count": self.rejected}


@dataclass(frozen=True)
class BatchResults(IngestCounts):
    """``ingest_batch``: the counts and one result per event, in order."""

    results: list[ingest_pb.IngestResult]


@dataclass(frozen=True)
class StreamBatchOutcome(IngestCounts):
    """``ingest_stream_batch``: the counts and the rejected events' results."""

    rejections: list[ingest_pb.IngestResult]


def _rejections(invalid: list[tuple[int, str, str]], first_index: int) -> list[ingest_pb.IngestResult]:
    return [ingest_pb.IngestResult(index=first_index + position, status=REJECTED, field=field_name, reason=reason)
            for position, field_name, reason in invalid]


class IngestPipeline:
    """Turns batches of incoming events into stored rows and results."""

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, metrics: ServiceMetrics, workers: NormaliserPool | None = None,
        *, events: EventStore | None = None, accounts: AccountStore | None = None,
    ) -> None:
        self._settings = settings
        # wakes the commit feed's readers (live tail, rollups) after writes
        self._feed_notifier = FeedNotifier(pool, settings.feed_notify_interval_ms / 1000)
        self._events = EventStore(pool, on_stored=self._feed_notifier.stored) if events is None else events
        self._accounts = AccountStore(pool) if accounts is None else accounts
        self._metrics = metrics
        # the events counter's children, looked up once (``labels`` locks and builds a key per call)
        self._counters = tuple(metrics.events.labels(label) for label in ("accepted", "duplicate", "rejected"))
        self._copy_refusals = metrics.copy_refusals
        # bounded, named (connlog.ingest.caches)
        self._network_refs = NETWORK_REFS.create()
        self._access_points = ACCESS_POINTS.create()
        self._workers = workers
        # small calls (unary RPC, REST shapes) are stored in groups
        self._group = GroupCommit(self._events, settings) if settings.group_commit_lanes else None
        self._group_call_events = settings.group_commit_call_events

    def close(self) -> None:
        """Stop group commit: calls still queued are answered UNAVAILABLE."""
        if self._group is not None:
            self._group.close()
        self._feed_notifier.close()

    def window(self, now: dt.datetime | None = None) -> IngestWindow:
        now = now or dt.datetime.now(dt.UTC)
        return IngestWindow(
            earliest=now - dt.timedelta(days=self._settings.retention_days),
            latest=now + dt.timedelta(seconds=self._settings.max_future_seconds),
            retention_days=self._settings.retention_days,
        )

    async def ingest_batch(self, principal: Principal, events: Sequence[pb.ConnectionEvent]) -> BatchResults:
        """Ingest one batch; one result per event, in order (its ``index``
        the event's position). The events are normalised in place (callers
        hand over their messages)."""
        normalised, invalid = normalise_events(events, principal, self.window())
        results: list[ingest_pb.IngestResult | None] = [None] * len(events)
        for result in _rejections(invalid, 0):
            results[result.index] = result
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
        accepted = 0
        if to_store:
            tenant_ref = principal.tenant_ref
            refs = await self._network_refs_for(tenant_ref, {e.network_id for e in to_store})
            if self._group is not None and len(to_store) <= self._group_call_events:
                outcomes = await self._group.insert(tenant_ref, to_store, refs)  # answered after the commit
            else:
                outcomes = await self._events.insert(tenant_ref, to_store, refs)
            new = [stored for stored, outcome in zip(to_store, outcomes, strict=True) if outcome.new]
            accepted = len(new)
            await self._record_access_points(tenant_ref, access_point_sightings(new), refs)
            for stored, outcome, shared in zip(to_store, outcomes, positions, strict=True):
                for n, position in enumerate(shared):
                    results[position] = ingest_pb.IngestResult(
                        index=position,
                        status=ACCEPTED if outcome.new and n == 0 else DUPLICATE,
                        name=event_name(stored.network_id, outcome.event_id),
                        event_id=str(outcome.event_id),
                    )
        rejected = len(invalid)
        batch = BatchResults(
            accepted=accepted,
            duplicate=len(events) - rejected - accepted,
            rejected=rejected,
            results=[r for r in results if r is not None],
        )
        self._count(batch)
        return batch

    async def ingest_stream_batch(
        self, principal: Principal, events: Sequence[pb.ConnectionEvent], first_index: int = 0,
        *, copy_first: bool = True,
    ) -> StreamBatchOutcome:
        """Ingest one batch of a stream whose first event is the stream's
        ``first_index``-th: the counts and the rejected events' results
        (indexed in the stream). The batch is prepared as binary COPY rows
        (normalised, de-duplicated, encoded: by the worker processes when it
        is large and there are any, else here, normalising the events in
        place); this process fills in the network refs and copies the rows
        on, straight into the table with ``copy_first``
        (``EventStore.insert_copied``; a stream that has just met duplicates
        leaves it out)."""
        window = self.window()
        tenant_ref = principal.tenant_ref
        if self._workers is not None and len(events) >= WORKER_MIN_EVENTS:
            prepared = await self._workers.prepare(events, principal, window)
        else:
            prepared = prepare_events(events, principal, window)
        accepted = 0
        if prepared.rows.row_count:
            refs = await self._network_refs_for(tenant_ref, set(prepared.rows.networks))
            copied = await self._events.insert_copied(prepared.rows, tenant_ref, refs, copy_first=copy_first)
            accepted = copied.new  # no ids sent back
            if copied.copy_refused:
                self._copy_refusals.inc()
            await self._record_access_points(tenant_ref, prepared.access_points, refs)
        rejected = len(prepared.rejected)
        outcome = StreamBatchOutcome(
            accepted=accepted,
            duplicate=len(events) - rejected - accepted,
            rejected=rejected,
            rejections=_rejections(prepared.rejected, first_index),
        )
        self._count(outcome)
        return outcome

    async def _record_access_points(self, tenant_ref: int, sightings: Sightings, refs: dict[str, int]) -> None:
        """Keep the access point inventory current from the latest sighting
        of each AP among stored events; an AP already recorded with the same
        network and name within the last hour is skipped."""
        changed = []
        for serial, (network_id, name, when) in sightings.items():
            row = (serial, refs[network_id], name, when)
            known = self._access_points.get((tenant_ref, serial))
            if known is None or known[:2] != row[1:3] or when - known[2] > dt.timedelta(hours=1):
                changed.append(row)
        if changed:
            await self._accounts.record_access_points(tenant_ref, sorted(changed))
            for serial, network_ref, name, when in changed:
                known = self._access_points.get((tenant_ref, serial))
                if known is None or known[2] < when:
                    self._access_points[(tenant_ref, serial)] = (network_ref, name, when)

    def _count(self, outcome: IngestCounts) -> None:
        accepted, duplicate, rejected = self._counters
        if outcome.accepted:
            accepted.inc(outcome.accepted)
        if outcome.duplicate:
            duplicate.inc(outcome.duplicate)
        if outcome.rejected:
            rejected.inc(outcome.rejected)

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
