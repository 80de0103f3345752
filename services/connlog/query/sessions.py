"""Client sessions and connection times from a client's events: pure
functions, no I/O (``connlog.query.insights`` reads the events).

A **session** is a run of one client's events in (occurred_at, event id)
order, split between two consecutive events ``a``, ``b`` exactly when

* ``b`` occurred more than ``SESSION_GAP`` (30 minutes) after ``a``, or
* ``a`` is a disconnect (disassociation or deauthentication) and ``b`` is not
  (the disconnects right after one belong to the session they end).

Whether two events are split depends on those two events alone, so the
sessions are a function of the set of events: an event that arrives late
lands between two others and can only join them (fill a gap), split them (a
disconnect) or extend a session; it never makes a second copy of one. A
session's id is the event id of its first event.

**Time to connect** of a session: from connection-timing facts where an
event of the session reports them (``timing.network_time -
timing.association_time`` of a successful event: one sample per such
event); when no event of the session reports them, from the event sequence:
from the session's first association to the first successful DHCP after it
(one sample, none when it never got an address).

Percentiles are nearest rank (``percentile``); docs/insights.md has every
definition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb

SESSION_GAP = dt.timedelta(minutes=30)
DISCONNECTS = frozenset({pb.CONNECTION_STEP_DISASSOCIATION, pb.CONNECTION_STEP_DEAUTHENTICATION})
# A success of one of these steps means the client got connected.
CONNECTED_STEPS = frozenset({pb.CONNECTION_STEP_DHCP, pb.CONNECTION_STEP_DNS, pb.CONNECTION_STEP_CONNECTION})


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """What sessions are computed from, of one stored event."""

    event_id: int
    occurred_at: dt.datetime
    step: pb.ConnectionStep
    outcome: pb.Outcome = pb.OUTCOME_INFORMATIONAL
    network_id: str = ""
    ap_serial: str | None = None
    ap_name: str | None = None
    bssid: str | None = None
    ssid: str | None = None
    band: pb.Band = pb.BAND_UNSPECIFIED
    vendor: pb.Vendor = pb.VENDOR_UNSPECIFIED
    client_mac: str | None = None
    client_id: str | None = None
    subtype: str = ""
    failure: pb.Failure | None = None  # set for failures and disconnects
    # connection-timing facts, when the event reports both
    association_time: dt.datetime | None = None
    network_time: dt.datetime | None = None

    @property
    def position(self) -> tuple[dt.datetime, int]:
        return self.occurred_at, self.event_id

    @property
    def reason(self) -> str:
        """The failure's reason, else the event's subtype."""
        return (self.failure.reason if self.failure is not None else "") or self.subtype


def is_boundary(a: SessionEvent, b: SessionEvent) -> bool:
    """Whether consecutive events ``a`` then ``b`` belong to different sessions."""
    return b.occurred_at - a.occurred_at > SESSION_GAP or (a.step in DISCONNECTS and b.step not in DISCONNECTS)


def ordered(events: Iterable[SessionEvent]) -> list[SessionEvent]:
    """Events in (occurred_at, id) order, each event once."""
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=lambda e: e.position)


def split(events: Sequence[SessionEvent]) -> list[list[SessionEvent]]:
    """The runs of ``events`` (ordered, distinct) that are sessions."""
    runs: list[list[SessionEvent]] = []
    for event in events:
        if runs and not is_boundary(runs[-1][-1], event):
            runs[-1].append(event)
        else:
            runs.append([event])
    return runs


@dataclass
class Visit:
    """An access point a client was on, from ``start`` to ``end``."""

    serial: str | None
    name: str | None
    bssid: str | None
    ssid: str | None
    start: dt.datetime
    end: dt.datetime

    def same_access_point(self, event: SessionEvent) -> bool:
        """Whether ``event`` is at this access point: same serial when both
        have one, else same name when both have one; unknown counts as same."""
        if self.serial and event.ap_serial:
            return self.serial == event.ap_serial
        if self.name and event.ap_name:
            return self.name == event.ap_name
        return True

    def extend(self, event: SessionEvent) -> None:
        """Add an event at this access point; a serial or name the visit
        lacks is taken from it only when the other one matched."""
        self.end = event.occurred_at
        if self.serial and self.serial == event.ap_serial:
            self.name = self.name or event.ap_name
        elif self.name and self.name == event.ap_name:
            self.serial = self.serial or event.ap_serial


@dataclass
class Session:
    """One session (see the module docstring)."""

    events: list[SessionEvent]
    end: ipb.SessionEnd
    visits: list[Visit] = field(default_factory=list)
    steps_succeeded: list[pb.ConnectionStep] = field(default_factory=list)
    outcome: ipb.SessionOutcome = ipb.SESSION_OUTCOME_UNSPECIFIED
    last_failure: SessionEvent | None = None
    failure_count: int = 0
    disconnect: SessionEvent | None = None

    @property
    def session_id(self) -> int:
        return self.events[0].event_id

    @property
    def start_time(self) -> dt.datetime:
        return self.events[0].occurred_at

    @property
    def end_time(self) -> dt.datetime:
        return self.events[-1].occurred_at

    @property
    def duration(self) -> dt.timedelta:
        return self.end_time - self.start_time

    @property
    def roam_count(self) -> int:
        return max(len(self.visits) - 1, 0)


def describe(events: list[SessionEvent], *, followed: bool) -> Session:
    """The session of ``events`` (one run of ``split``); ``followed``:
    whether a later event of the client exists (it then starts the next
    session)."""
    last = events[-1]
    if last.step in DISCONNECTS:
        end = ipb.SESSION_END_DISCONNECT
    else:
        end = ipb.SESSION_END_INACTIVITY if followed else ipb.SESSION_END_OPEN
    session = Session(events, end)
    succeeded: set[pb.ConnectionStep] = set()
    connected = False
    for event in events:
        if event.ap_serial or event.ap_name:
            visit = session.visits[-1] if session.visits else None
            if visit is not None and visit.same_access_point(event):
                visit.extend(event)
            else:
                session.visits.append(Visit(event.ap_serial, event.ap_name, event.bssid, event.ssid,
                                            event.occurred_at, event.occurred_at))
        if event.outcome == pb.OUTCOME_SUCCESS:
            if event.step not in succeeded:
                succeeded.add(event.step)
                session.steps_succeeded.append(event.step)
            connected = connected or event.step in CONNECTED_STEPS
        elif event.outcome == pb.OUTCOME_FAILURE:
            session.failure_count += 1
            session.last_failure = event
    if end == ipb.SESSION_END_DISCONNECT:
        # the first of the disconnects that end the session
        index = len(events) - 1
        while index > 0 and events[index - 1].step in DISCONNECTS:
            index -= 1
        session.disconnect = events[index]
    if connected:
        session.outcome = ipb.SESSION_OUTCOME_CONNECTED
    elif session.failure_count:
        session.outcome = ipb.SESSION_OUTCOME_FAILED
    else:
        session.outcome = ipb.SESSION_OUTCOME_INCOMPLETE
    return session


def sessions(events: Iterable[SessionEvent], *, followed: bool = False) -> list[Session]:
    """The sessions of a client's events (any order, duplicates allowed);
    ``followed``: whether a later event than all of these exists."""
    runs = split(ordered(events))
    return [describe(run, followed=followed or i < len(runs) - 1) for i, run in enumerate(runs)]


# --- time to connect -----------------------------------------------------------------------------------------

TIMING_FACTS = ipb.TIME_TO_CONNECT_BASIS_TIMING_FACTS
EVENT_SEQUENCE = ipb.TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE
MIXED = ipb.TIME_TO_CONNECT_BASIS_MIXED


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured connection: how long it took, from which basis, and the
    event that starts it (its group)."""

    duration: dt.timedelta
    basis: ipb.TimeToConnectBasis
    event: SessionEvent


def connection_samples(run: Sequence[SessionEvent]) -> list[Sample]:
    """The time-to-connect samples of one session (see the module docstring)."""
    facts = [Sample(e.network_time - e.association_time, TIMING_FACTS, e) for e in run
             if e.outcome == pb.OUTCOME_SUCCESS and e.association_time is not None and e.network_time is not None
             and e.network_time >= e.association_time]
    if facts or any(e.association_time is not None and e.network_time is not None for e in run):
        return facts
    for i, event in enumerate(run):
        if event.step == pb.CONNECTION_STEP_ASSOCIATION:
            for later in run[i + 1:]:
                if later.step == pb.CONNECTION_STEP_DHCP and later.outcome == pb.OUTCOME_SUCCESS:
                    return [Sample(later.occurred_at - event.occurred_at, EVENT_SEQUENCE, event)]
            return []
    return []


def percentile(ordered_samples: Sequence[dt.timedelta], p: int) -> dt.timedelta:
    """The nearest-rank ``p``-th percentile (1-100) of ascending samples: the
    smallest sample that at least ``p``% of the samples do not exceed (what
    PostgreSQL's ``percentile_disc(p / 100.0)`` answers)."""
    if not ordered_samples:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError("p must be 1-100")
    rank = -(-p * len(ordered_samples) // 100)  # ceil(p * n / 100), exactly
    return ordered_samples[rank - 1]


def basis_of(samples: Iterable[Sample]) -> ipb.TimeToConnectBasis:
    """TIMING_FACTS, EVENT_SEQUENCE or MIXED."""
    kinds = {s.basis for s in samples}
    return kinds.pop() if len(kinds) == 1 else MIXED


def success_rate(successes: int, attempts: int) -> float | None:
    """successes / attempts, None without attempts."""
    return successes / attempts if attempts else None
