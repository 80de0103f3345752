"""The event reader: every read of connection events, free of any transport.

``QueryService`` and every vendor read shape (Meraki, Mojo) read through
one ``EventReader``: get one event, or one keyset page of a filter, forward
from a position or backward from one (or from the end), with whether events
lie before and after the page. The callers turn positions into their own
tokens and the events into their own shapes.

The pool is the query service's read pool (``ServiceContext.read_pool``: a
read replica when ``database_read_url`` is set) and ``before_read`` its
staleness gate (``ReadReplica.ensure_current``), run before every read. A
keyset position names a place in the order, not a server's state: a page
token issued by a read on one server and used on another that is behind
gives the events that server has after that position (fewer, never earlier
ones, never an error).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from connlog.store.events import EventFilter, EventStore, ReadEvent

Position = tuple[dt.datetime, int]  # (occurred_at, event id): a keyset position


def _no_gate() -> None:
    """Reads on the primary: always current."""


class _End:
    """The position after the last event (``before=END``: the final page)."""

    def __repr__(self) -> str:
        return "END"


END = _End()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events in the order asked for, and whether the filter
    matches events before its first and after its last. ``has_previous`` is
    only looked up when the page was asked for ``with_previous``."""

    events: list[ReadEvent]
    has_previous: bool
    has_next: bool


class EventReader:
    """Reads events of one store (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, before_read: Callable[[], None] | None = None) -> None:
        self._store = EventStore(pool)
        self._before_read = before_read or _no_gate

    async def get(self, tenant_ref: int, network_id: str, event_id: int) -> ReadEvent | None:
        """One event, or None when the tenant has no such event in that network."""
        self._before_read()
        return await self._store.get(tenant_ref, network_id, event_id)

    async def page(
        self,
        tenant_ref: int,
        flt: EventFilter,
        *,
        size: int,
        descending: bool = False,
        after: Position | None = None,
        before: Position | _End | None = None,
        with_previous: bool = False,
    ) -> Page:
        """Up to ``size`` events matching ``flt`` in (occurred_at, id) order
        (``descending``: newest first): the first page, the page strictly
        after ``after``, or the page strictly before ``before`` (``END``: the
        last page). ``with_previous`` also looks up whether events precede
        the page (one more query), as Link headers need."""
        if after is not None and before is not None:
            raise ValueError("a page is after a position or before one, not both")
        self._before_read()
        if before is not None:
            return await self._page_before(tenant_ref, flt, size, descending, before)
        events = await self._store.list(tenant_ref, flt, after=after, descending=descending, limit=size + 1)
        has_next = len(events) > size
        events = events[:size]
        has_previous = (with_previous and after is not None and bool(events)
                        and await self._store.any(tenant_ref, flt, after=events[0].position,
                                                  descending=not descending))
        return Page(events, has_previous, has_next)

    async def _page_before(
        self, tenant_ref: int, flt: EventFilter, size: int, descending: bool, before: Position | _End
    ) -> Page:
        position = None if isinstance(before, _End) else before
        events = await self._store.list(tenant_ref, flt, after=position, descending=not descending, limit=size + 1)
        has_previous = len(events) > size
        events = events[:size][::-1]
        if events:
            has_next = await self._store.any(tenant_ref, flt, after=events[-1].position, descending=descending)
        else:
            has_next = position is not None and await self._store.any(
                tenant_ref, flt, after=position, descending=descending)
        return Page(events, has_previous, has_next)

    async def client_exists(
        self, tenant_ref: int, network_ref: int | None, *, client_id: str | None = None, client_mac: str | None = None
    ) -> bool:
        """Whether any stored event is about this client (in this network)."""
        self._before_read()
        return await self._store.client_exists(tenant_ref, network_ref, client_id=client_id, client_mac=client_mac)
