"""Group commit: small ingest calls stored together.

A unary call or a REST shape stores one event, or a few: alone, each is one
statement and one commit (a WAL flush) on one pooled connection, and the
database commits no faster than it flushes. Here the calls' rows, already
validated and normalised (a rejected event never gets here), are queued, and
a *lane* takes everything queued (up to ``group_commit_max_events``) and
stores it as one group: one set-based ``INSERT … ON CONFLICT DO NOTHING``
per tenant in ONE transaction (``EventStore.insert_group``). Every caller of
the group is answered when that transaction has committed, never before.

* **Natural batching.** A lane starts when a call is queued and no lane
  runs, and takes whatever is queued as soon as it is free again: the busier
  the database, the larger the groups; a lone call waits for no one.
* **Lingering only under concurrency.** After a round with several callers
  (the group just written and the calls queued meanwhile), the lane waits
  for as many calls again before taking the next group, at most
  ``group_commit_linger_ms`` (5 ms by default), or until a group's worth of
  events is queued: callers answered a moment ago are about to send their
  next call, and a group taken at once would hold only the few that came
  first (at 64 single-event callers ~5 events a group without lingering;
  with it most of the callers, and a third less CPU per call in the ingest
  process: docs/performance.md). After a round with a single caller it
  does not wait, so a lone caller is never delayed; when nothing comes within the
  linger the lane stops. A further lane (up to
  ``group_commit_lanes``, each on its own connection) starts only while more
  events are queued than one group takes (``group_commit_max_events``): a
  second lane that started whenever one was free would split a moderate load
  into groups of two or three events, and every group costs the ingest
  process a transaction's work (at 64 single-event callers: ~2.5 events a
  group with two eager lanes, ~5 with one; docs/performance.md).
* **Exact results.** Each caller gets one outcome per event it queued. An
  event queued by two callers of one group is stored once: the first caller
  in queue order gets it as new (ACCEPTED), the others as not new
  (DUPLICATE) with the same id; an event stored before is not new.
* **All or nothing.** If the group's transaction fails (the database went
  away mid-flush), nothing of the group is stored and every caller of the
  group gets the error (a transient one is UNAVAILABLE at the edge); later
  groups are unaffected.
* **Cancellation.** A caller cancelled before its group is taken is left
  out of it; one cancelled while its group is written leaves the others'
  results as they are (its events may be stored: it is not told).
* **Bounded.** At most ``group_commit_queue_calls`` calls are queued; more
  callers wait for room (backpressure), nothing is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from connlog.core.settings import Settings
from connlog.store.events import InsertOutcome, StoredEvent, TenantBatch

__all__ = ["GroupCommit", "GroupStore"]

_Key = tuple[bytes, dt.datetime]


class GroupStore(Protocol):
    """What group commit stores through (``EventStore``)."""

    async def insert_group(self, batches: Sequence[TenantBatch]) -> list[dict[_Key, InsertOutcome]]: ...


@dataclass(eq=False)
class _Call:
    """One caller's queued events (distinct keys), and its answer."""

    tenant_ref: int
    events: Sequence[StoredEvent]
    network_refs: dict[str, int]
    answer: asyncio.Future[list[InsertOutcome]]


class ShuttingDown(ConnectionError):
    """The ingest service stopped before a queued call's group was stored
    (a ConnectionError: transient, UNAVAILABLE at the edge)."""


def _for_caller(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for one caller (each raises its own: a shared
    exception would collect every caller's traceback)."""
    try:
        own = copy.copy(exc)
    except Exception:  # an exception that cannot be copied is shared
        return exc
    return own.with_traceback(None) if type(own) is type(exc) else exc


class GroupCommit:
    """Queues small calls' rows and stores them in groups (module doc)."""

    def __init__(self, store: GroupStore, settings: Settings) -> None:
        self._store = store
        self._lanes = settings.group_commit_lanes
        self._max_events = settings.group_commit_max_events
        self._linger = settings.group_commit_linger_ms / 1000
        self._queued: collections.deque[_Call] = collections.deque()
        self._queued_events = 0  # events of the queued calls
        self._room = asyncio.Semaphore(settings.group_commit_queue_calls)
        self._active = 0  # lanes running (or about to)
        # a lingering lane's wake-up, and how many queued calls end its linger
        self._gathered: asyncio.Future[None] | None = None
        self._gather_calls = 0
        self._running: set[asyncio.Task[None]] = set()  # their tasks (held: a task only weakly referenced may vanish)
        self._closed = False

    @property
    def queued(self) -> int:
        """Calls waiting for a group."""
        return len(self._queued)

    async def insert(
        self, tenant_ref: int, events: Sequence[StoredEvent], network_refs: dict[str, int]
    ) -> list[InsertOutcome]:
        """Store ``events`` (distinct keys, networks in ``network_refs``) with
        the next group; one outcome per event, in order, once committed."""
        if not events:
            return []
        await self._room.acquire()  # backpressure: wait while the queue is full
        if self._closed:
            self._room.release()
            raise ShuttingDown("the ingest service is stopping")
        loop = asyncio.get_running_loop()
        call = _Call(tenant_ref, events, network_refs, loop.create_future())
        self._queued.append(call)
        self._queued_events += len(events)
        gathered = self._gathered
        if gathered is not None and not gathered.done() and (
                len(self._queued) >= self._gather_calls or self._queued_events >= self._max_events):
            gathered.set_result(None)  # a lingering lane has what it waits for
        # a lane when none runs; a further one only while more is queued than a group takes
        if self._active == 0 or (self._active < self._lanes and self._queued_events > self._max_events):
            self._active += 1
            lane = loop.create_task(self._lane())
            self._running.add(lane)
            lane.add_done_callback(self._running.discard)
        return await call.answer

    def close(self) -> None:
        """Stop: queued calls and groups being written get ``ShuttingDown``."""
        self._closed = True
        for lane in list(self._running):
            lane.cancel()
        self._fail(self._take_all(), ShuttingDown("the ingest service is stopping"))

    async def _lane(self) -> None:
        """Store groups until nothing is queued (a lane that finds the queue
        empty, after lingering if its last group had several calls, stops at
        once, in the same step: a call queued after that starts a lane of
        its own)."""
        try:
            calls = 0  # callers of the last round: its group's, and those queued while it was written
            while True:
                if calls > 1 and self._linger:
                    await self._gather(calls)
                if not self._queued:
                    break
                group = self._take()
                if group:
                    await self._store_group(group)
                    calls = len(group) + len(self._queued)
        finally:
            self._active -= 1

    async def _gather(self, calls: int) -> None:
        """Wait until ``calls`` calls or a group's worth of events are
        queued, at most the linger (woken once, by the call that completes
        it: ``insert``)."""
        if len(self._queued) >= calls or self._queued_events >= self._max_events:
            return
        if self._gathered is not None:
            return  # another lane lingers for the same calls: this one takes what is queued
        gathered = self._gathered = asyncio.get_running_loop().create_future()
        self._gather_calls = calls
        try:
            await asyncio.wait_for(gathered, self._linger)
        except TimeoutError:
            pass  # fewer came: the lane takes what there is
        finally:
            if self._gathered is gathered:
                self._gathered = None

    def _take(self) -> list[_Call]:
        """The next group: queued calls in order, up to the event limit (at
        least one call), without those cancelled meanwhile."""
        group: list[_Call] = []
        events = 0
        while self._queued:
            call = self._queued[0]
            if group and events + len(call.events) > self._max_events:
                break
            self._queued.popleft()
            self._queued_events -= len(call.events)
            self._room.release()
            if not call.answer.done():  # else cancelled while queued: left out
                group.append(call)
                events += len(call.events)
        return group

    def _take_all(self) -> list[_Call]:
        calls = list(self._queued)
        self._queued.clear()
        self._queued_events = 0
        for _ in calls:
            self._room.release()
        return calls

    @staticmethod
    def _fail(calls: Sequence[_Call], exc: BaseException) -> None:
        for call in calls:
            if not call.answer.done():
                call.answer.set_exception(_for_caller(exc))

    async def _store_group(self, group: list[_Call]) -> None:
        """One transaction for the whole group, then every caller's answer."""
        merged: dict[int, dict[_Key, StoredEvent]] = {}
        refs: dict[int, dict[str, int]] = {}
        for call in group:
            rows = merged.setdefault(call.tenant_ref, {})
            for event in call.events:
                rows.setdefault((event.dedup_key, event.occurred_at), event)
            refs.setdefault(call.tenant_ref, {}).update(call.network_refs)
        tenants = list(merged)
        try:
            stored = await self._store.insert_group(
                [TenantBatch(tenant, list(merged[tenant].values()), refs[tenant]) for tenant in tenants])
        except asyncio.CancelledError:
            self._fail(group, ShuttingDown("the ingest service is stopping"))
            raise
        except Exception as exc:  # every caller of the group gets it
            self._fail(group, exc)
            return
        outcomes = dict(zip(tenants, stored, strict=True))
        claimed: set[tuple[int, _Key]] = set()  # new events already answered as new to a caller
        for call in group:
            mine = outcomes[call.tenant_ref]
            answer = []
            for event in call.events:
                key = (event.dedup_key, event.occurred_at)
                outcome = mine[key]
                if outcome.new:
                    if (call.tenant_ref, key) in claimed:  # another caller of the group stored it
                        outcome = InsertOutcome(outcome.event_id, False)
                    else:
                        claimed.add((call.tenant_ref, key))
                answer.append(outcome)
            if not call.answer.done():
                call.answer.set_result(answer)
