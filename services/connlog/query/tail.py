"""The live tail's fan-out (``WatchConnectionEvents``), free of any transport.

One ``TailHub`` per query process runs one *follower*: a connection of its
own (outside the pool) that ``LISTEN``s on the commit feed's channel
(``connlog.store.feed.CHANNEL``). It starts with the first watch and stops
with the last. On each notification (coalesced: one read at a time, and a
flag for "more came meanwhile") it reads the feed after its position, page by
page until the horizon, and hands each event to the watches of the event's
tenant whose filters match (``connlog.query.event_match``, in memory): one
feed read per process, never a query per watch. A page is read in two
queries: the filterable columns only (``read_facts_after``: no payload, of
the tenants that have watches, and of the events that pass one of the
watches' distinct filters, which PostgreSQL checks: up to
``MAX_SQL_WATCH_FILTERS`` of them, else every event of those tenants),
matched against each distinct filter to know whose they are; then
the whole events that some watch matched (``read_events``, by key), so that
an event no watch wants is never parsed.

Positions (``FeedPosition``): each watch has the position up to which it has
considered every event (``position``) and the position its client can resume
after (``sent``: that of the last message handed out). An event goes to a
watch only if it lies after the watch's position. A watch that starts from a
resume token first reads the feed after it itself (catch-up, its tenant's
events only, backpressured by its own client) and joins the follower's
dispatch once its position is at or past the follower's: nothing is skipped
or sent twice. Every watch joins between two of the follower's pages (a join
while a page is being read waits for the page's end, and the follower admits
it in the step that ends the page): a page is handed only to the watches it
was read and matched for, and whose events it fetched.

Bounds: at most ``watch_max_watchers`` watches (``TooManyWatchers``); each
holds at most ``watch_buffer_events`` undelivered events. A live watch whose
buffer is full is dropped at once (``EndReason.TOO_SLOW``): the follower
never waits for a client, so neither does ingest.

After a notification the follower also asks for the feed's frontier (the
next transaction id) and re-reads, backing off from 20 ms to 250 ms, until
the horizon has passed it: an event whose write overlapped a longer one is
read once that one ends, even though its own notification came earlier. With
no notification for ``watch_poll_seconds`` it reads anyway (events stored by
a path that does not notify). A lost connection is re-opened with backoff
and the feed re-read from the follower's position: no event is lost; the
watches stay open meanwhile and get nothing but heartbeats.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import asyncpg

from connlog.core.logging import get_logger
from connlog.core.settings import Settings
from connlog.query.event_match import matches
from connlog.store.events import EventFilter, ReadEvent
from connlog.store.feed import (
    CHANNEL,
    MAX_SQL_WATCH_FILTERS,
    FeedEvent,
    FeedPosition,
    frontier,
    horizon,
    position_of,
    read_after,
    read_events,
    read_facts_after,
)

# Events in one message at most.
BATCH_EVENTS = 100
# Events a feed read returns at most (the follower's, and a catch-up's).
FOLLOWER_PAGE_EVENTS = 1000
CATCH_UP_PAGE_EVENTS = 500
# Re-reads while the horizon has not passed a notified write.
HELD_BACK_FIRST_RETRY_SECONDS = 0.02
HELD_BACK_MAX_RETRY_SECONDS = 0.25
# Re-opening the follower's connection.
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0

_DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class EndReason(enum.Enum):
    """Why the hub ended a watch (each resumable with the watch's ``sent``)."""

    TOO_SLOW = "its client read too slowly: its buffer of undelivered events filled up"
    UNAVAILABLE = "the database could not be reached"
    SHUTTING_DOWN = "the server is shutting down"
    CLOSED = "the watch was closed"


class WatchEnded(Exception):
    """A watch ended by the hub; ``resume``: the position its client resumes
    after (that of the last message it was handed)."""

    def __init__(self, reason: EndReason, resume: FeedPosition) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.resume = resume


class TooManyWatchers(Exception):
    """The process holds ``watch_max_watchers`` watches already."""


class TailUnavailable(Exception):
    """The feed cannot be followed now (the database is unreachable)."""


@dataclass(frozen=True)
class Batch:
    """One message: events in feed order (possibly none: a heartbeat) and
    the position after which a resumed watch continues."""

    events: list[ReadEvent]
    resume: FeedPosition


class Watcher:
    """One open watch: its tenant and filter, its positions and its bounded
    buffer of events not yet handed out."""

    def __init__(self, tenant_ref: int, flt: EventFilter, start: FeedPosition, buffer_events: int,
                 heartbeat_seconds: float) -> None:
        self.tenant_ref = tenant_ref
        self.filter = flt
        self.position = start  # every event up to here has been considered
        self.sent = start  # the resume position of the last message handed out
        self.live = False
        self.ended: EndReason | None = None
        self._capacity = buffer_events
        self._heartbeat = heartbeat_seconds
        self._buffer: collections.deque[tuple[FeedPosition, ReadEvent]] = collections.deque()
        self._changed = asyncio.Event()  # events buffered, or ended
        self._space = asyncio.Event()  # events handed out, or ended (catch-up waits on it)
        self.catch_up: asyncio.Task[None] | None = None
        # watches with equal filters are matched once per event
        self.filter_key = tuple(tuple(v) if isinstance(v, list) else v for v in dataclasses.astuple(flt))

    def __len__(self) -> int:
        return len(self._buffer)

    def offer(self, event: FeedEvent, matched: bool | None = None) -> bool:
        """Buffer ``event`` if it lies after the position and matches (as
        ``matched`` says, when the caller matched it already); False when
        the buffer is full (the event is not taken)."""
        if event.position <= self.position:
            return True
        if not (matches(self.filter, event.facts) if matched is None else matched):
            return True
        if len(self._buffer) >= self._capacity:
            return False
        self._buffer.append((event.position, event.event))
        self._changed.set()
        return True

    async def put(self, event: FeedEvent) -> None:
        """Buffer ``event`` (catch-up), waiting for room; WatchEnded if the
        watch ends meanwhile."""
        while len(self._buffer) >= self._capacity and self.ended is None:
            self._space.clear()
            await self._space.wait()
        if self.ended is not None:
            raise WatchEnded(self.ended, self.sent)
        self.offer(event)

    def advance(self, position: FeedPosition) -> None:
        """Every event up to ``position`` has been considered."""
        if position > self.position:
            self.position = position

    def end(self, reason: EndReason) -> None:
        """End the watch: undelivered events are dropped; ``next_batch``
        raises WatchEnded."""
        if self.ended is None:
            self.ended = reason
        self._buffer.clear()
        self._changed.set()
        self._space.set()

    async def next_batch(self) -> Batch:
        """The next message: up to ``BATCH_EVENTS`` buffered events, or none
        after ``heartbeat_seconds`` without any; WatchEnded once ended."""
        while True:
            if self.ended is not None:
                raise WatchEnded(self.ended, self.sent)
            if self._buffer:
                count = min(len(self._buffer), BATCH_EVENTS)
                taken = [self._buffer.popleft() for _ in range(count)]
                last = taken[-1][0]
                # with nothing left buffered, every event up to the position is handled
                self.sent = max(last, self.position) if not self._buffer else last
                self._space.set()
                return Batch([read for _, read in taken], self.sent)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), self._heartbeat)
            except TimeoutError:
                if self.ended is None and not self._buffer:
                    self.sent = max(self.sent, self.position)
                    return Batch([], self.sent)


class TailHub:
    """The watches of one query process and the one follower that feeds
    them (see the module's docstring)."""

    def __init__(self, settings: Settings, connect: Connect, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._connect = connect
        self._pool = pool
        self._log = get_logger("tail")
        self._watchers: set[Watcher] = set()
        self._live: dict[int, set[Watcher]] = {}
        self._position: FeedPosition | None = None  # the follower's
        self._ready: asyncio.Future[None] | None = None  # done once the follower has its position
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lost = False
        self._closed = False
        self._reading = False  # a follower page is being read: joins wait for its end
        self._joining: list[tuple[Watcher, bool, asyncio.Future[bool]]] = []  # (watch, from now, joined)
        self.subscribed = 0  # watches started (tests)
        self.dropped = 0  # watches dropped for reading too slowly (tests)
        self.reads = 0  # feed reads of the follower (tests)
        self.payload_reads = 0  # reads of the whole events some watch matched (tests)
        self.events_read = 0  # whole events those read (tests)
        self.facts_read = 0  # events whose facts the follower read (tests)
        self.connections = 0  # connections the follower opened (tests)
        self.follower_pid: int | None = None  # the server process of its connection (tests)

    # --- watches ---

    def __len__(self) -> int:
        return len(self._watchers)

    @property
    def position(self) -> FeedPosition | None:
        """The follower's position (None while it is not running)."""
        return self._position

    async def subscribe(self, tenant_ref: int, flt: EventFilter, resume: FeedPosition | None) -> Watcher:
        """A new watch of ``tenant_ref``'s events matching ``flt``: after
        ``resume``, or (None) from now on. TooManyWatchers, TailUnavailable."""
        if self._closed:
            raise TailUnavailable("the server is shutting down")
        if len(self._watchers) >= self._settings.watch_max_watchers:
            raise TooManyWatchers(f"this server holds {self._settings.watch_max_watchers} watches already")
        settings = self._settings
        watcher = Watcher(tenant_ref, flt, resume or FeedPosition(0), settings.watch_buffer_events,
                          settings.watch_heartbeat_seconds)
        self._watchers.add(watcher)
        try:
            await self._follower_ready()
            if resume is None:
                await self._join_between_pages(watcher, from_now=True)
        except BaseException:
            self.unsubscribe(watcher)
            raise
        if resume is not None:
            watcher.catch_up = asyncio.create_task(self._catch_up(watcher), name="tail-catch-up")
        self.subscribed += 1
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        """Forget a watch (its stream has ended)."""
        watcher.end(EndReason.CLOSED)
        self._forget(watcher)

    def _forget(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        live = self._live.get(watcher.tenant_ref)
        if live is not None:
            live.discard(watcher)
            if not live:
                del self._live[watcher.tenant_ref]
        if watcher.catch_up is not None and watcher.catch_up is not asyncio.current_task():
            watcher.catch_up.cancel()
        if not self._watchers:
            self._wake.set()  # the follower stops

    def _join(self, watcher: Watcher) -> None:
        watcher.live = True
        self._live.setdefault(watcher.tenant_ref, set()).add(watcher)

    async def _join_between_pages(self, watcher: Watcher, *, from_now: bool) -> bool:
        """Join ``watcher`` to the follower's dispatch, between two pages
        (now, or at the end of the page being read): from the follower's
        position (``from_now``), or if its position is at or past the
        follower's. Whether it joined (if not: catch up further)."""
        if not self._reading:
            return self._admit(watcher, from_now)
        joined = asyncio.get_running_loop().create_future()
        self._joining.append((watcher, from_now, joined))
        return await joined

    def _admit(self, watcher: Watcher, from_now: bool) -> bool:
        assert self._position is not None
        if watcher.ended is not None:
            return False
        if from_now:
            watcher.position = watcher.sent = self._position
        elif watcher.position < self._position:
            return False
        self._join(watcher)
        return True

    def _admit_joining(self) -> None:
        """Between two pages: admit the watches that asked to join meanwhile."""
        joining, self._joining = self._joining, []
        for watcher, from_now, joined in joining:
            if not joined.done():  # (cancelled: its watch is gone)
                joined.set_result(self._admit(watcher, from_now))

    async def _catch_up(self, watcher: Watcher) -> None:
        """Read the feed after the watch's resume position (its tenant's
        events), then join the follower's dispatch."""
        try:
            async with self._pool.acquire() as pooled:
                conn = cast(asyncpg.Connection, pooled)  # (a pooled connection is one)
                while True:
                    page = await read_after(conn, watcher.position, CATCH_UP_PAGE_EVENTS,
                                            tenant_ref=watcher.tenant_ref)
                    for event in page.events:
                        await watcher.put(event)
                    watcher.advance(page.last(watcher.position))
                    if watcher.ended is not None:
                        return
                    if page.complete and self._position is not None and watcher.position >= self._position \
                            and await self._join_between_pages(watcher, from_now=False):
                        return
        except WatchEnded:
            return
        except _DATABASE_ERRORS as error:
            self._log.warning("watch could not catch up", error=type(error).__name__)
            watcher.end(EndReason.UNAVAILABLE)
            self._forget(watcher)

    async def close(self) -> None:
        """End every watch (``SHUTTING_DOWN``) and the follower; no new
        watches after this."""
        self._closed = True
        for watcher in list(self._watchers):
            watcher.end(EndReason.SHUTTING_DOWN)
            self._forget(watcher)
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- the follower ---

    async def _follower_ready(self) -> None:
        if self._task is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._follow(), name="tail-follower")
        elif self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.get_running_loop().create_future()
        assert self._ready is not None
        await asyncio.shield(self._ready)

    def _stop_following(self) -> None:
        """The follower ends (no watch left): a new watch starts a new one."""
        self._task = None
        self._position = None
        self._ready = None

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    def _connection_lost(self, _conn: object) -> None:
        self._lost = True
        self._wake.set()

    async def _follow(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        try:
            while self._watchers and self._task is asyncio.current_task():
                conn: asyncpg.Connection | None = None
                try:
                    conn = await self._connect()
                    self.connections += 1
                    self.follower_pid = conn.get_server_pid()
                    self._lost = False
                    conn.add_termination_listener(self._connection_lost)
                    await conn.add_listener(CHANNEL, self._notified)
                    if self._position is None:
                        self._position = await horizon(conn)
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(None)
                    delay = RECONNECT_FIRST_SECONDS
                    await self._read_until_idle(conn)
                    return  # no watch left
                except _DATABASE_ERRORS as error:
                    self._log.warning("live tail lost the feed: reconnecting", error=type(error).__name__,
                                      retry_in_seconds=delay)
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_exception(TailUnavailable("the database could not be reached"))
                        self._ready.exception()  # (retrieved: its waiters are told)
                    if self._watchers:
                        await asyncio.sleep(delay)  # backoff before reconnecting
                        delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                finally:
                    if conn is not None:
                        conn.terminate()
        finally:
            if self._task is asyncio.current_task():
                self._stop_following()

    async def _read_until_idle(self, conn: asyncpg.Connection) -> None:
        """Read and dispatch on every wake-up until no watch is left (or the
        connection is lost: ConnectionError)."""
        target: int | None = None  # a frontier the horizon must pass
        retry = HELD_BACK_FIRST_RETRY_SECONDS
        notified = True  # whatever was stored while nobody listened
        while True:
            if not self._watchers:
                self._stop_following()  # in this step: a watch arriving now starts a new follower
                return
            if self._lost:
                raise ConnectionError("the follower's connection was lost")
            if notified:
                reached = await frontier(conn)
                target = reached if target is None else max(target, reached)
            await self._drain(conn)
            assert self._position is not None
            if target is not None and self._position.xid >= target:
                target, retry = None, HELD_BACK_FIRST_RETRY_SECONDS
            timeout = retry if target is not None else self._settings.watch_poll_seconds
            if target is not None:
                retry = min(retry * 2, HELD_BACK_MAX_RETRY_SECONDS)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                notified = True
            except TimeoutError:
                notified = False
            self._wake.clear()

    async def _drain(self, conn: asyncpg.Connection) -> None:
        """Read the feed after the follower's position up to the horizon and
        hand every event to the matching watches."""
        while True:
            assert self._position is not None
            # the page is read for the watches live now: watches that join
            # meanwhile wait for its end (_join_between_pages)
            groups: dict[int, list[list[Watcher]]] = {}  # tenant -> its watches by filter
            for tenant_ref, live in self._live.items():
                by_filter: dict[tuple, list[Watcher]] = {}
                for watcher in live:
                    by_filter.setdefault(watcher.filter_key, []).append(watcher)
                groups[tenant_ref] = list(by_filter.values())
            self._reading = True
            try:
                filters = [(tenant_ref, watchers[0].filter) for tenant_ref, by_filter in groups.items()
                           for watchers in by_filter]
                page = await read_facts_after(conn, self._position, FOLLOWER_PAGE_EVENTS, list(groups),
                                              filters if len(filters) <= MAX_SQL_WATCH_FILTERS else None)
                self.reads += 1
                self.facts_read += len(page.rows)
                wanted: list[tuple[asyncpg.Record, list[list[Watcher]]]] = []  # facts, matching watch groups
                for facts in page.rows:
                    hits = [watchers for watchers in groups.get(facts["tenant_ref"], ())
                            if matches(watchers[0].filter, facts)]
                    if hits:
                        wanted.append((facts, hits))
                events: dict[int, ReadEvent] = {}
                if wanted:
                    events = await read_events(conn, [(f["tenant_ref"], f["id"], f["occurred_at"]) for f, _ in wanted])
                    self.payload_reads += 1
                    self.events_read += len(events)
            except BaseException:
                self._reading = False
                if self._position is not None:
                    self._admit_joining()  # (they join at the position the page is re-read from)
                raise
            # from here to the end of the page: no await (watches join between pages)
            for facts, hits in wanted:
                read = events.get(facts["id"])
                if read is None:  # (gone since: removed by retention)
                    continue
                event = FeedEvent(facts["tenant_ref"], facts["network_ref"], position_of(facts), read, facts)
                for watchers in hits:
                    for watcher in watchers:
                        if watcher.ended is None and not watcher.offer(event, True):
                            self._drop(watcher)
            self._position = page.last(self._position)
            for live in self._live.values():
                for watcher in live:
                    watcher.advance(self._position)
            self._reading = False
            self._admit_joining()
            if page.complete:
                return

    def _drop(self, watcher: Watcher) -> None:
        self._log.info("watch dropped: its client reads too slowly", buffered=len(watcher))
        watcher.end(EndReason.TOO_SLOW)
        self.dropped += 1
        self._forget(watcher)
