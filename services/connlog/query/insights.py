"""The insights, free of any transport: connection summaries, time to
connect and client sessions of a tenant's stored events (docs/insights.md).

Counts and failure reasons are aggregated by PostgreSQL
(``connlog.store.insights``); sessions and time to connect are computed here
from the events in order (``connlog.query.sessions``). Every computation is
bounded: at most ``MAX_GROUPS`` groups, at most ``MAX_SCANNED_EVENTS``
events read for one answer; beyond, the caller is told to narrow the
request (``InvalidArgument`` naming the field to narrow).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.core.edge import InvalidArgument
from connlog.query.sessions import (
    Session,
    SessionEvent,
    basis_of,
    connection_samples,
    describe,
    is_boundary,
    ordered,
    percentile,
    split,
    success_rate,
)
from connlog.store.events import EventFilter
from connlog.store.insights import DIMENSIONS, Grouping, InsightStore

# GroupBy value -> the store's dimension name, in GroupBy order (a key's
# dimensions are always in this order, however the request lists them).
DIMENSION_OF: dict[int, str] = {
    ipb.GROUP_BY_NETWORK: "network",
    ipb.GROUP_BY_ACCESS_POINT: "access_point",
    ipb.GROUP_BY_SSID: "ssid",
    ipb.GROUP_BY_BAND: "band",
    ipb.GROUP_BY_CLIENT: "client",
    ipb.GROUP_BY_FAILURE_CATEGORY: "failure_category",
    ipb.GROUP_BY_STEP: "step",
}
# The dimensions a connection's time can be grouped by.
TIME_TO_CONNECT_DIMENSIONS = frozenset({ipb.GROUP_BY_NETWORK, ipb.GROUP_BY_ACCESS_POINT, ipb.GROUP_BY_SSID,
                                        ipb.GROUP_BY_BAND, ipb.GROUP_BY_CLIENT})
MAX_GROUPS = 10_000
# summary rows read at most (per group, step, outcome and failure code)
MAX_CELLS = 50 * MAX_GROUPS
TOP_FAILURE_REASONS = 5
MAX_SCANNED_EVENTS = 100_000
CHUNK = 1000  # events read at once for sessions
PERCENTILES = (50, 90, 99)

Position = tuple[dt.datetime, int]
KeyValues = tuple[Any, ...]


def dimensions_of(group_by: Iterable[int]) -> tuple[str, ...]:
    """The store dimensions of GroupBy values, in GroupBy order."""
    chosen = set(group_by)
    return tuple(name for value, name in DIMENSION_OF.items() if value in chosen)


def group_key(dimensions: Sequence[str], values: KeyValues, bucketed: bool = False) -> ipb.ConnectionGroupKey:
    """The key message of a group: ``values`` are the key columns of
    ``DIMENSIONS`` of each dimension in turn, then the bucket start."""
    key = ipb.ConnectionGroupKey()
    i = 0
    for dimension in dimensions:
        width = len(DIMENSIONS[dimension])
        first, second = values[i], values[i + 1] if width == 2 else None
        i += width
        if dimension == "network":
            key.network_id = first or ""
        elif dimension == "access_point":
            key.access_point.SetInParent()
            key.access_point.serial = first or ""
            key.access_point.name = second or ""
        elif dimension == "ssid":
            key.ssid = first or ""
        elif dimension == "band":
            key.band = first or pb.BAND_UNSPECIFIED
        elif dimension == "client":
            key.client.SetInParent()
            key.client.mac_address = first or ""
            key.client.client_id = second or ""
        elif dimension == "failure_category":
            if first is not None:
                key.failure_code = first
        elif dimension == "step":
            key.step = first or pb.CONNECTION_STEP_UNSPECIFIED
    if bucketed:
        key.bucket_start_time.FromDatetime(values[i])
    return key


def step_counts(step: pb.ConnectionStep, events: int, successes: int, failures: int) -> ipb.StepCounts:
    counts = ipb.StepCounts(step=step, event_count=events, attempt_count=successes + failures,
                            success_count=successes, failure_count=failures)
    rate = success_rate(successes, successes + failures)
    if rate is not None:
        counts.success_rate = rate
    return counts


def top_reasons(reasons: list[ipb.FailureReason], limit: int = TOP_FAILURE_REASONS) -> list[ipb.FailureReason]:
    """The ``limit`` most frequent reasons; ties by step, then code (none
    first)."""
    def order(r: ipb.FailureReason) -> tuple[int, int, int, int]:
        return reason_order(r.count, r.step, r.failure_code if r.HasField("failure_code") else None)

    return sorted(reasons, key=order)[:limit]


def reason_order(count: int, step: int, code: int | None) -> tuple[int, int, int, int]:
    """Most frequent first; ties by step, then no code before codes, then code."""
    return -count, step, int(code is not None), code or 0


def _too_many_groups() -> InvalidArgument:
    return InvalidArgument("group_by", f"makes more than {MAX_GROUPS} groups: group by fewer dimensions, or narrow "
                                       "the filters or the time range")


def _too_many_events() -> InvalidArgument:
    return InvalidArgument("start_time", f"the range holds more than {MAX_SCANNED_EVENTS} events to compute from: "
                                         "narrow it (or filter by client)")


def session_event(row: asyncpg.Record | dict[str, Any]) -> SessionEvent:
    """The ``SessionEvent`` of a timeline row (``connlog.store.insights``)."""
    event = pb.ConnectionEvent.FromString(row["payload"])
    timing = event.timing
    association = network = None
    if timing.HasField("association_time") and timing.HasField("network_time"):
        association = timing.association_time.ToDatetime(tzinfo=dt.UTC)
        network = timing.network_time.ToDatetime(tzinfo=dt.UTC)
    return SessionEvent(
        event_id=row["id"], occurred_at=row["occurred_at"], step=row["step"], outcome=row["outcome"],
        network_id=row["network_id"], ap_serial=row["ap_serial"], ap_name=row["ap_name"], bssid=row["bssid"],
        ssid=row["ssid"], band=row["band"], vendor=row["vendor"], client_mac=row["client_mac"],
        client_id=row["client_id"], subtype=event.subtype,
        failure=event.failure if event.HasField("failure") else None,
        association_time=association, network_time=network,
    )


def _event_key(dimensions: Sequence[str], event: SessionEvent) -> KeyValues:
    """An event's key columns, as the store would group them."""
    values: list[Any] = []
    for dimension in dimensions:
        if dimension == "network":
            values.append(event.network_id)
        elif dimension == "access_point":
            values += [event.ap_serial, None if event.ap_serial else event.ap_name]
        elif dimension == "ssid":
            values.append(event.ssid)
        elif dimension == "band":
            values.append(event.band)
        elif dimension == "client":
            values += [event.client_mac, None if event.client_mac else event.client_id]
    return tuple(values)


def _sort_key(values: KeyValues) -> tuple[tuple[int, Any], ...]:
    """Keys ordered as the store orders them: a missing value first, text by
    code point."""
    return tuple((0, 0) if v is None else (1, v) for v in values)


@dataclass(frozen=True)
class SampleFilter:
    """What a time-to-connect sample's starting event must match (applied
    after the sessions are built, so that filtering never changes them)."""

    bands: tuple[int, ...] = ()
    ssid: str | None = None
    ap_serial: str | None = None
    vendor: int | None = None

    def matches(self, event: SessionEvent) -> bool:
        return ((not self.bands or event.band in self.bands) and (self.ssid is None or event.ssid == self.ssid)
                and (self.ap_serial is None or event.ap_serial == self.ap_serial)
                and (self.vendor is None or event.vendor == self.vendor))


@dataclass
class _Reason:
    """The failures of a group at one step with one failure code: how many,
    first and last time, and the most recent one (id, time)."""

    step: pb.ConnectionStep
    code: int | None
    count: int
    first: dt.datetime
    last: dt.datetime
    latest_id: int

    @classmethod
    def of(cls, cell: asyncpg.Record) -> _Reason:
        return cls(cell["step"], cell["failure_code"], cell["events"], cell["first_at"], cell["last_at"],
                   cell["last_id"])

    @property
    def latest(self) -> tuple[int, dt.datetime]:
        return self.latest_id, self.last

    def order(self) -> tuple[int, int, int, int]:
        """``top_reasons``' order: most frequent, then step, then no code
        before codes, then code."""
        return reason_order(self.count, self.step, self.code)

    def message(self, payload: bytes | None) -> ipb.FailureReason:
        """The API message, its reason text from the most recent failure's
        ``payload``."""
        latest = pb.ConnectionEvent.FromString(payload or b"")
        reason = ipb.FailureReason(step=self.step, reason=latest.failure.reason or latest.subtype,
                                   sub_reason=latest.failure.sub_reason, count=self.count)
        if self.code is not None:
            reason.failure_code = self.code
        reason.first_time.FromDatetime(self.first)
        reason.last_time.FromDatetime(self.last)
        return reason


def _merge(reasons: list[_Reason]) -> list[_Reason]:
    """One reason per (step, code) of a group's failure cells."""
    merged: dict[tuple[pb.ConnectionStep, int | None], _Reason] = {}
    for r in reasons:
        into = merged.get((r.step, r.code))
        if into is None:
            merged[(r.step, r.code)] = dataclasses.replace(r)
            continue
        into.count += r.count
        into.first = min(into.first, r.first)
        if (r.last, r.latest_id) > (into.last, into.latest_id):
            into.last, into.latest_id = r.last, r.latest_id
    return list(merged.values())


def _top(reasons: list[_Reason], limit: int = TOP_FAILURE_REASONS) -> list[_Reason]:
    return sorted(reasons, key=_Reason.order)[:limit]


class Insights:
    """The insights of one store (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, before_read: Callable[[], None] | None = None) -> None:
        # the query service's read pool and staleness gate (as EventReader's)
        self._store = InsightStore(pool)
        self._before_read = before_read or (lambda: None)

    async def summarize(
        self, tenant_ref: int, flt: EventFilter, grouping: Grouping, *, use_rollups: bool = True
    ) -> list[ipb.ConnectionGroup]:
        """Every group of the events matching ``flt`` (a time range), in key
        order, with its per-step counts and top failure reasons. The same
        answer whether or not the rollups are used, or caught up
        (``use_rollups`` False: every event read raw; docs/insights.md)."""
        self._before_read()
        width = grouping.width()
        async with self._store.summary() as reader:
            cells = await reader.cells(tenant_ref, flt, grouping, MAX_CELLS + 1, use_rollups=use_rollups)
            if len(cells) > MAX_CELLS:
                raise _too_many_groups()
            groups: dict[KeyValues, ipb.ConnectionGroup] = {}
            steps: dict[KeyValues, dict[pb.ConnectionStep, list[int]]] = {}
            failures: dict[KeyValues, list[_Reason]] = {}
            for cell in cells:
                values = tuple(cell[:width])
                per_step = steps.get(values)
                if per_step is None:
                    if len(groups) == MAX_GROUPS:
                        raise _too_many_groups()
                    groups[values] = ipb.ConnectionGroup(
                        key=group_key(grouping.dimensions, values, grouping.bucket is not None))
                    per_step = steps[values] = {}
                total = per_step.setdefault(cell["step"], [0, 0, 0])
                total[0] += cell["events"]
                if cell["outcome"] == pb.OUTCOME_SUCCESS:
                    total[1] += cell["events"]
                elif cell["outcome"] == pb.OUTCOME_FAILURE:
                    total[2] += cell["events"]
                    failures.setdefault(values, []).append(_Reason.of(cell))
            top = {values: _top(_merge(found)) for values, found in failures.items()}
            payloads = await reader.payloads(tenant_ref, [r.latest for found in top.values() for r in found])
        for values, group in groups.items():
            group.steps.extend(step_counts(step, *total) for step, total in steps[values].items())
            group.totals.CopyFrom(step_counts(pb.CONNECTION_STEP_UNSPECIFIED,
                                              *(sum(t[i] for t in steps[values].values()) for i in range(3))))
            for found in top.get(values, ()):
                group.top_failure_reasons.append(found.message(payloads.get(found.latest[0])))
        return list(groups.values())

    async def time_to_connect(
        self, tenant_ref: int, flt: EventFilter, samples_of: SampleFilter, group_by: Iterable[int]
    ) -> list[ipb.TimeToConnectGroup]:
        """Every group with samples, in key order: the sessions of each
        client of the events matching ``flt`` (a time range, a network, a
        client), their samples that match ``samples_of``, grouped by the
        dimensions of the event that starts each."""
        self._before_read()
        dimensions = dimensions_of(group_by)
        rows = await self._store.timeline(tenant_ref, flt, by_client=True, limit=MAX_SCANNED_EVENTS + 1)
        if len(rows) > MAX_SCANNED_EVENTS:
            raise _too_many_events()
        by_group: dict[KeyValues, list] = {}
        for client_events in _per_client(session_event(row) for row in rows):
            for run in split(ordered(client_events)):
                for sample in connection_samples(run):
                    if samples_of.matches(sample.event):
                        by_group.setdefault(_event_key(dimensions, sample.event), []).append(sample)
        groups = []
        for values in sorted(by_group, key=_sort_key):
            samples = by_group[values]
            durations = sorted(s.duration for s in samples)
            group = ipb.TimeToConnectGroup(
                key=group_key(dimensions, values), basis=basis_of(samples), sample_count=len(samples),
                timing_fact_sample_count=sum(s.basis == ipb.TIME_TO_CONNECT_BASIS_TIMING_FACTS for s in samples),
                event_sequence_sample_count=sum(s.basis == ipb.TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE for s in samples))
            for p, target in zip(PERCENTILES, (group.p50, group.p90, group.p99), strict=True):
                target.FromTimedelta(percentile(durations, p))
            groups.append(group)
        return groups

    async def client_sessions(
        self,
        tenant_ref: int,
        flt: EventFilter,
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        size: int,
        after: Position | None = None,
    ) -> tuple[list[Session], Position | None]:
        """Up to ``size`` sessions of the client ``flt`` names (and its
        network), oldest first: those with events at or after ``start`` and
        beginning before ``end``, each whole; the first page (``after``
        None) or the page after the session that ended at ``after``. Also
        the position to continue after (None: no more sessions)."""
        self._before_read()
        base = dataclasses.replace(flt, start=None, end=None)
        scanned = 0
        if after is None and start is not None:
            after, scanned = await self._session_start(tenant_ref, base, start)
            if after is _NOTHING:
                return [], None
        done: list[Session] = []
        run: list[SessionEvent] = []
        while True:
            rows = await self._store.timeline(tenant_ref, base, after=after, limit=CHUNK)
            scanned += len(rows)
            if scanned > MAX_SCANNED_EVENTS:
                raise _too_many_events()
            for row in rows:
                event = session_event(row)
                if run and not is_boundary(run[-1], event):
                    run.append(event)
                    continue
                if run:  # ``event`` starts the next session: ``run`` is whole
                    done.append(describe(run, followed=True))
                begins_in_range = end is None or event.occurred_at < end
                if len(done) == size or not begins_in_range:
                    return done, (done[-1].events[-1].position if done and begins_in_range else None)
                run = [event]
            if len(rows) < CHUNK:
                break
            after = (rows[-1]["occurred_at"], rows[-1]["id"])
        if run:
            done.append(describe(run, followed=False))
        return done, None

    async def _session_start(
        self, tenant_ref: int, base: EventFilter, start: dt.datetime
    ) -> tuple[Any, int]:
        """Where to read a client's sessions from for ``start``: after the
        event before the session that holds the first event at or after
        ``start`` (None: from the client's first event; ``_NOTHING``: no
        event at or after ``start``), and how many events that took."""
        first = await self._store.timeline(tenant_ref, dataclasses.replace(base, start=start), limit=1)
        if not first:
            return _NOTHING, 1
        later = session_event(first[0])
        before = dataclasses.replace(base, end=start)
        scanned, position = 1, None
        while True:
            rows = await self._store.timeline(tenant_ref, before, after=position, descending=True, limit=CHUNK)
            scanned += len(rows)
            if scanned > MAX_SCANNED_EVENTS:
                raise _too_many_events()
            for row in rows:
                earlier = session_event(row)
                if is_boundary(earlier, later):
                    return earlier.position, scanned
                later = earlier
            if len(rows) < CHUNK:
                return None, scanned
            position = (rows[-1]["occurred_at"], rows[-1]["id"])


_NOTHING = object()


def _per_client(events: Iterable[SessionEvent]) -> Iterable[list[SessionEvent]]:
    """Consecutive events of the same client (MAC, else id) together."""
    current: list[SessionEvent] = []
    identity: object = None
    for event in events:
        client = event.client_mac or event.client_id
        if current and client != identity:
            yield current
            current = []
        identity = client
        current.append(event)
    if current:
        yield current
