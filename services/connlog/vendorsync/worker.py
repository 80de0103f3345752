"""Polls sources on their intervals and feeds the ingest service.

For each followed client: fetch from the checkpoint (minus an overlap, to
catch late events) to now, convert, ingest over gRPC, and only then advance
the checkpoint. De-duplication in the store makes overlaps and re-polls after
a crash harmless, so nothing is lost and nothing is stored twice.

Any number of replicas may run: each claims due sources on a lease in the
database (``SyncStore.claim_due``), at most ``sync_claim_batch`` at a time,
renews each lease every third of ``sync_lease_seconds`` while it polls, and
releases it when done. A renewal or a checkpoint write that finds the lease
lost stops that source's poll at once; a replica that dies leaves its leases
to lapse, and another resumes its sources from their last checkpoints.

A poll of a source is a sweep over its clients: those it lists and, for a
source that discovers (Meraki: ``discover_clients``, or no clients listed),
those its network's clients listing reports, listed again once
``sync_discovery_interval_seconds`` old. Each client is followed once
however it is named (``follow``); which are polled, and in which order, is
``connlog.vendorsync.schedule``'s; every request waits on the organisation's
budget (``connlog.vendorsync.pacing``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb
from connlog.core.auth import SYNC_SOURCE_HEADER
from connlog.core.identifiers import normalise_mac
from connlog.core.logging import get_logger
from connlog.core.metrics import ServiceMetrics
from connlog.core.sealing import Sealer
from connlog.core.settings import Settings
from connlog.shapes.records import VendorRecordError
from connlog.shapes.registry import fetcher_of
from connlog.store.sync import Checkpoint, ClientIdentity, DiscoveredClient, SourceRecord, SyncStore
from connlog.vendorsync import schedule
from connlog.vendorsync.credentials import CredentialUnavailable, opened
from connlog.vendorsync.egress import EgressPolicy
from connlog.vendorsync.fetcher import Fetcher
from connlog.vendorsync.identity import FollowedClient, follow
from connlog.vendorsync.pacing import LocalPacer, Pacer, budget_key
from connlog.vendorsync.vendor_http import CredentialRejected, VendorHttp, VendorUnavailable

INGEST_BATCH = 1000


@dataclass
class PollCounts:
    fetched: int = 0
    ingested: int = 0
    duplicate: int = 0
    rejected: int = 0
    malformed: int = 0


class LeaseLost(Exception):
    """This replica no longer holds the lease of the source it was polling."""


def replica_id() -> str:
    """This process's name as a lease holder: host, pid and a random part
    (a restarted process with a reused pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class SyncWorker:
    """Polls the enabled sources of the deployment that this replica holds
    the lease of. It ingests with the service's own key
    (``Settings.sync_service_key``), naming the source of each call; the
    ingest service writes a call's events only into that source's tenant,
    vendor and network."""

    def __init__(self, settings: Settings, store: SyncStore, metrics: ServiceMetrics, sealer: Sealer,
                 pacer: Pacer | None = None) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._sealer = sealer
        key = settings.sync_service_key.get_secret_value() if settings.sync_service_key else ""
        self._authorization = ("authorization", f"Bearer {key}")
        # every vendor request waits on its organisation's budget here (local
        # to this replica for now: see connlog.vendorsync.pacing)
        self._pacer: Pacer = pacer or LocalPacer()
        self._holder = replica_id()
        self._lease = settings.sync_lease_seconds
        self._running: dict[str, asyncio.Task[None]] = {}  # source id -> its poll, under this replica's lease
        self._started = asyncio.Event()  # set (and replaced) whenever a poll starts here
        self._channel = grpc.aio.insecure_channel(
            settings.sync_ingest_address or f"{_loopback(settings.host)}:{settings.ingest_port}",
            options=[("grpc.max_send_message_length", settings.max_message_bytes)],
        )
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)
        self._log = get_logger("vendor-sync")

    @property
    def holder(self) -> str:
        """This replica's name as a lease holder."""
        return self._holder

    async def close(self) -> None:
        """Stop every poll (each releases its lease: its source stays due)."""
        polls = list(self._running.values())
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await self._channel.close()

    async def run_forever(self) -> None:
        """Claim and poll due sources until cancelled; then stop every poll."""
        try:
            while True:
                try:
                    await self.schedule_once()
                except Exception as exc:  # the database may be briefly away; keep going
                    self._log.error("scheduling failed", error=str(exc))
                await asyncio.sleep(self._settings.sync_schedule_seconds)
        finally:
            await self.close()

    async def schedule_once(self) -> None:
        """Claim due sources, as many as this replica has room for, and start
        polling each."""
        room = self._settings.sync_claim_batch - sum(1 for poll in self._running.values() if not poll.done())
        if room <= 0:
            return
        for source in await self._store.claim_due(self._holder, self._lease, room):
            running = self._running.get(source.source_id)
            if running is not None and not running.done():
                # its poll here outlived a lapsed lease, now claimed again: it goes on
                continue
            self._start(source)

    async def run_now(self, source_id: str, wait: bool) -> None:
        """Poll a source now (``wait``: until the poll is done). Polled here
        already: that poll. Its lease free or lapsed: claimed and polled here.
        Held by another replica: that replica's poll is the one; ``wait``
        waits until it ends (its lease released) or its lease lapses (then
        polled here)."""
        running = self._running.get(source_id)
        if running is None or running.done():
            source = await self._store.claim(source_id, self._holder, self._lease)
            if source is None:
                if wait:
                    await self._await_other(source_id)
                return
            running = self._start(source)
        if wait:  # (its end, whatever it was: a poll stopped by a lost lease is no error of the caller's)
            await asyncio.wait({running})

    async def _await_other(self, source_id: str) -> None:
        """Wait until the poll of whoever holds ``source_id``'s lease ends; if
        its lease lapses first (that replica died), poll it here."""
        first = await self._store.lease(source_id)
        if first is not None and first.holder == self._holder:
            # this replica's own scheduler claimed it a moment ago: its poll
            # is about to start here
            own = await self._own_poll(source_id)
            if own is not None:
                await asyncio.wait({own})
            return
        if first is None or first.holder is None:
            return  # gone, paused, not active, or just released
        while True:
            await asyncio.sleep(min(1.0, self._lease / 10))
            lease = await self._store.lease(source_id)
            if lease is None or lease.holder != first.holder:
                return  # that poll ended
            if not lease.live:
                source = await self._store.claim(source_id, self._holder, self._lease)
                if source is not None:
                    await asyncio.wait({self._start(source)})
                return

    async def _own_poll(self, source_id: str) -> asyncio.Task[None] | None:
        """The poll of ``source_id`` this replica holds the lease for, once
        it has started (None if the lease is released first: it ended)."""
        while True:
            running = self._running.get(source_id)
            if running is not None:
                return running
            lease = await self._store.lease(source_id)
            if lease is None or lease.holder != self._holder or not lease.live:
                return None
            started = self._started
            if source_id in self._running:
                continue
            try:  # (woken by the start; the timeout re-checks the lease)
                await asyncio.wait_for(started.wait(), min(1.0, self._lease / 10))
            except TimeoutError:
                pass

    def _start(self, source: SourceRecord) -> asyncio.Task[None]:
        poll = asyncio.create_task(self._leased_poll(source), name=f"poll {source.source_id}")
        self._running[source.source_id] = poll
        self._started.set()
        self._started = asyncio.Event()
        poll.add_done_callback(lambda done: self._forget(source.source_id, done))
        return poll

    def _forget(self, source_id: str, poll: asyncio.Task[None]) -> None:
        if self._running.get(source_id) is poll:
            del self._running[source_id]

    async def _leased_poll(self, source: SourceRecord) -> None:
        """Poll a source this replica holds the lease of, renewing the lease
        meanwhile; release it after (at shutdown: the source stays due)."""
        poll = asyncio.current_task()
        assert poll is not None
        keeper = asyncio.create_task(self._keep_lease(source.source_id, poll))
        polled = False
        try:
            await self.poll_source(source)
            polled = True
        except LeaseLost:
            self._log.warning("lease lost: poll stopped", source=source.source_id)
        except Exception as exc:  # (the database may be away: the next poll after the interval)
            polled = True
            self._log.error("poll failed", source=source.source_id, error=str(exc))
        finally:
            keeper.cancel()
            try:
                await self._store.release(source.source_id, self._holder, polled=polled)
            except Exception as exc:  # it lapses by itself
                self._log.warning("lease release failed", source=source.source_id, error=str(exc))

    async def _keep_lease(self, source_id: str, poll: asyncio.Task[None]) -> None:
        """Renew a lease every third of its time while ``poll`` runs; a
        renewal that finds it lost (another holder, or lapsed) cancels the
        poll at once."""
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                held = await self._store.renew(source_id, self._holder, self._lease)
            except Exception as exc:  # database away: try again (the poll's writes are refused once it lapses)
                self._log.warning("lease renewal failed", source=source_id, error=str(exc))
                continue
            if not held:
                self._log.warning("lease lost: poll stopped", source=source_id)
                poll.cancel()
                return

    async def poll_source(self, source: SourceRecord) -> None:
        """One sweep of a source: discover its network's clients if due, then
        poll each due client, most recently active first; record the sweep."""
        try:
            source = opened(self._sealer, source)
        except CredentialUnavailable as exc:
            # Each client says why (the source stays active: the right key
            # configured and a restart, or a new credential, resumes it).
            self._log.error("credential unavailable", source=source.source_id, error=str(exc))
            for name in source.clients:
                await self._client_error(source, name, str(exc))
            if not source.clients:
                await self._store.set_state(source.source_id, sync_pb.SYNC_SOURCE_STATE_ACTIVE, str(exc),
                                            holder=self._holder)
            self._metrics.polls.labels(_vendor(source), "failed").inc()
            return
        fetcher_type = fetcher_of(source.vendor)
        rate = source.rate_limit_per_s or fetcher_type.default_rate(self._settings)
        http = VendorHttp(self._pacer, budget_key(source), rate, timeout=self._settings.sync_http_timeout_seconds,
                          attempts=self._settings.sync_http_attempts,
                          backoff_base=self._settings.sync_backoff_base_seconds,
                          egress=EgressPolicy.from_settings(self._settings), base_url=source.base_url)
        started = time.monotonic()
        try:
            fetcher = fetcher_type.for_source(http, source)
            checkpoints = await self._store.checkpoints(source.source_id)
            found: dict[str, DiscoveredClient] = {}
            if fetcher.DISCOVERS and source.discovers:
                await self._discover(source, fetcher)
                found = await self._store.discovered(source.source_id)
                await self._adopt(source, found)
            unanswered = await self._identify(source, fetcher)
            clients = follow_source(source, await self._store.identities(source.source_id), found)
            by_name = {client.name: client for client in clients}
            polled = 0
            for due in schedule.plan(sweep_candidates(source, clients, found, checkpoints), dt.datetime.now(dt.UTC)):
                client = by_name[due.name]
                if all(name in unanswered for name in client.names):
                    # Not followed this time: it may be a client followed under another name.
                    await self._client_error(source, client.name, unanswered[client.name])
                    self._metrics.polls.labels(_vendor(source), "failed").inc()
                    continue
                # where the client stands: the furthest of its names' checkpoints
                # (names followed on their own before are the same client)
                marks = [cp.checkpoint_at for n in client.names
                         if (cp := checkpoints.get(n)) is not None and cp.checkpoint_at]
                await self._poll_client(source, fetcher, client, max(marks, default=None))
                polled += 1
            await self._store.sweep_done(source.source_id, holder=self._holder, seconds=time.monotonic() - started,
                                         clients=polled, requests=http.requests)
        except CredentialRejected as exc:
            self._log.warning("credential rejected", source=source.source_id, error=str(exc))
            await self._store.set_state(source.source_id, sync_pb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED,
                                        f"the vendor rejected the credential: {exc}", holder=self._holder)
            self._metrics.polls.labels(_vendor(source), "credential_rejected").inc()
        finally:
            await http.close()

    async def _discover(self, source: SourceRecord, fetcher: Fetcher) -> None:
        """List the network's clients if the last listing is
        ``sync_discovery_interval_seconds`` old (or there is none) and keep
        them. A listing that fails is a source-wide error (the clients known
        from before are polled meanwhile); one that succeeds clears it."""
        last = (await self._store.sweep(source.source_id)).discovered_at
        interval = dt.timedelta(seconds=self._settings.sync_discovery_interval_seconds)
        if last is not None and dt.datetime.now(dt.UTC) - last < interval:
            return
        listed: dict[str, DiscoveredClient] = {}
        try:
            async for page in fetcher.discover():
                for client in page:  # (a client reported twice: its latest report)
                    listed[client.client] = client
        except VendorUnavailable as exc:
            self._log.warning("client discovery failed", source=source.source_id, error=str(exc))
            await self._store.set_state(source.source_id, sync_pb.SYNC_SOURCE_STATE_ACTIVE,
                                        f"discovering the network's clients: {exc}", holder=self._holder)
            return
        if not await self._store.keep_discovered(source.source_id, source.tenant_ref, list(listed.values()),
                                                 holder=self._holder):
            raise LeaseLost(source.source_id)
        self._log.info("clients discovered", source=source.source_id, clients=len(listed))
        if source.last_error:
            await self._store.set_state(source.source_id, sync_pb.SYNC_SOURCE_STATE_ACTIVE, "", holder=self._holder)

    async def _adopt(self, source: SourceRecord, found: Mapping[str, DiscoveredClient]) -> None:
        """Keep, as who a listed name is, the discovered client it names (by
        its id or its MAC): no need to ask the vendor."""
        if not found:
            return
        known = await self._store.identities(source.source_id)
        owners: dict[str, DiscoveredClient] = {}
        for reported in found.values():
            for key in (reported.client_id, reported.mac_address):
                if key:
                    owners[key] = reported
        for name in source.clients:
            owner = owners.get(name) or owners.get(normalise_mac(name) or "")
            if name not in known and owner is not None:
                await self._store.keep_identity(source.source_id, name,
                                                ClientIdentity(owner.client_id, owner.mac_address))

    async def _identify(self, source: SourceRecord, fetcher: Fetcher) -> dict[str, str]:
        """Ask the vendor who each client name not asked about yet is, and keep
        the answers. Returns the names it could not answer for now, with why
        (a name it does not know is not one of them: the name is all there is)."""
        if not fetcher.IDENTIFIES:
            return {}
        known = await self._store.identities(source.source_id)
        unanswered = {}
        for name in source.clients:
            if name in known:
                continue
            try:
                identity = await fetcher.identify(name)
            except VendorUnavailable as exc:
                self._log.warning("client lookup failed", source=source.source_id, client=name, error=str(exc))
                unanswered[name] = f"who the client is: {exc}"
                continue
            if identity is not None:  # else the API does not know it (asked again next poll)
                await self._store.keep_identity(source.source_id, name, identity)
        return unanswered

    async def _poll_client(
        self, source: SourceRecord, fetcher: Fetcher, client: FollowedClient, checkpoint: dt.datetime | None
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        overlap = dt.timedelta(seconds=self._settings.sync_overlap_seconds)
        lookback = dt.timedelta(seconds=self._settings.sync_initial_lookback_seconds)
        since = checkpoint - overlap if checkpoint else now - lookback
        counts = PollCounts()
        try:
            async for page in fetcher.pages(client.vendor_name, since, now):
                events = self._convert(source, fetcher, client, page.records, counts)
                await self._ingest_events(source, events, counts)
                covered = fetcher.covered(page, events)
                await self._advance(source, client.name, checkpoint_at=covered, success=page.last, counts=counts)
                self._count(source, counts)
                counts = PollCounts()
            self._metrics.polls.labels(_vendor(source), "ok").inc()
        except CredentialRejected:
            raise
        except (VendorUnavailable, grpc.aio.AioRpcError) as exc:
            # (an RPC error may carry no details: its code then, never None for a NOT NULL column)
            message = (exc.details() or exc.code().name) if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            self._log.warning("poll failed", source=source.source_id, client=client.name, error=message)
            await self._advance(source, client.name, checkpoint_at=None, counts=counts)
            await self._client_error(source, client.name, message)
            self._metrics.polls.labels(_vendor(source), "failed").inc()

    async def _advance(self, source: SourceRecord, client: str, *, checkpoint_at: dt.datetime | None,
                       counts: PollCounts, success: bool = False) -> None:
        """Write a client's checkpoint and counts under this replica's lease;
        ``LeaseLost`` (nothing written) if it no longer holds it."""
        if not await self._store.advance(source.source_id, client, holder=self._holder, checkpoint_at=checkpoint_at,
                                         success=success, **counts.__dict__):
            raise LeaseLost(source.source_id)

    async def _client_error(self, source: SourceRecord, client: str, error: str) -> None:
        if not await self._store.client_error(source.source_id, client, error, holder=self._holder):
            raise LeaseLost(source.source_id)

    def _convert(
        self,
        source: SourceRecord,
        fetcher: Fetcher,
        client: FollowedClient,
        records: list[tuple[Any, str]],
        counts: PollCounts,
    ) -> list[pb.ConnectionEvent]:
        events: list[pb.ConnectionEvent] = []
        counts.fetched += len(records)
        for record, raw in records:
            try:
                event = fetcher.to_event(record, raw, network_id=source.network_id, client=client)
            except VendorRecordError as exc:
                counts.malformed += 1
                self._log.warning("malformed vendor record skipped", source=source.source_id, client=client.name,
                                  field=exc.field, reason=exc.reason)
                continue
            events.append(event)
        return events

    async def _ingest_events(self, source: SourceRecord, events: list[pb.ConnectionEvent], counts: PollCounts) -> None:
        metadata = (self._authorization, (SYNC_SOURCE_HEADER, source.source_id))
        for start in range(0, len(events), INGEST_BATCH):
            reply = await self._ingest.IngestConnectionEvents(
                ingest_pb.IngestConnectionEventsRequest(events=events[start:start + INGEST_BATCH]),
                metadata=metadata, timeout=120)
            counts.ingested += reply.accepted_count
            counts.duplicate += reply.duplicate_count
            counts.rejected += reply.rejected_count

    def _count(self, source: SourceRecord, counts: PollCounts) -> None:
        for result in ("fetched", "ingested", "duplicate", "rejected", "malformed"):
            value = getattr(counts, result)
            if value:
                self._metrics.sync_events.labels(_vendor(source), result).inc(value)


def _vendor(source: SourceRecord) -> str:
    return pb.Vendor.Name(source.vendor).removeprefix("VENDOR_").lower()


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def follow_source(
    source: SourceRecord, identities: Mapping[str, ClientIdentity], found: Mapping[str, DiscoveredClient]
) -> list[FollowedClient]:
    """The distinct clients a source follows: those it lists, then those
    discovered (``found``, by name), one client however many names it has
    (a discovered client brings its id and MAC: a name listed as either is
    the same client)."""
    names = list(dict.fromkeys([*source.clients, *found]))
    known = dict(identities)
    for name, client in found.items():
        known.setdefault(name, ClientIdentity(client.client_id, client.mac_address))
    return follow(source.vendor, names, known)


def sweep_candidates(
    source: SourceRecord, clients: list[FollowedClient], found: Mapping[str, DiscoveredClient],
    checkpoints: Mapping[str, Checkpoint],
) -> list[schedule.Candidate]:
    """Each followed client as the schedule sees it: listed or only
    discovered, when Meraki last saw it, when its last poll completed."""
    listed = set(source.clients)
    out = []
    for client in clients:
        seen = [d.last_seen for n in client.names if (d := found.get(n)) is not None and d.last_seen is not None]
        polled = [cp.last_success_at for n in client.names
                  if (cp := checkpoints.get(n)) is not None and cp.last_success_at is not None]
        out.append(schedule.Candidate(client.name, any(n in listed for n in client.names), max(seen, default=None),
                                      max(polled, default=None)))
    return out
