"""Polls sources on their intervals and feeds the ingest service.

For each followed client: fetch from the checkpoint (minus an overlap, to
catch late events) to now, convert, ingest over gRPC, and only then advance
the checkpoint. De-duplication in the store makes overlaps and re-polls after
a crash harmless, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb
from connlog.core.auth import SYNC_SOURCE_HEADER
from connlog.core.logging import get_logger
from connlog.core.metrics import ServiceMetrics
from connlog.core.sealing import Sealer
from connlog.core.settings import Settings
from connlog.shapes.records import VendorRecordError
from connlog.shapes.registry import fetcher_of
from connlog.store.sync import SourceRecord, SyncStore
from connlog.vendorsync.credentials import CredentialUnavailable, opened
from connlog.vendorsync.egress import EgressPolicy
from connlog.vendorsync.fetcher import Fetcher
from connlog.vendorsync.identity import FollowedClient, follow
from connlog.vendorsync.vendor_http import AsyncRateLimiter, CredentialRejected, VendorHttp, VendorUnavailable

INGEST_BATCH = 1000
_SOURCES_PAGE = 1000


@dataclass
class PollCounts:
    fetched: int = 0
    ingested: int = 0
    duplicate: int = 0
    rejected: int = 0
    malformed: int = 0


@dataclass
class _Running:
    task: asyncio.Task | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_run: float = 0.0


class SyncWorker:
    """Runs every enabled source of the deployment. It ingests with the
    service's own key (``Settings.sync_service_key``), naming the source of
    each call; the ingest service writes a call's events only into that
    source's tenant, vendor and network."""

    def __init__(self, settings: Settings, store: SyncStore, metrics: ServiceMetrics, sealer: Sealer) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._sealer = sealer
        key = settings.sync_service_key.get_secret_value() if settings.sync_service_key else ""
        self._authorization = ("authorization", f"Bearer {key}")
        self._limiter = AsyncRateLimiter()
        self._running: dict[str, _Running] = {}
        self._channel = grpc.aio.insecure_channel(
            settings.sync_ingest_address or f"{_loopback(settings.host)}:{settings.ingest_port}",
            options=[("grpc.max_send_message_length", settings.max_message_bytes)],
        )
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)
        self._log = get_logger("vendor-sync")

    async def close(self) -> None:
        for running in self._running.values():
            if running.task:
                running.task.cancel()
        await asyncio.gather(*(r.task for r in self._running.values() if r.task), return_exceptions=True)
        await self._channel.close()

    async def run_forever(self) -> None:
        """Schedule polls until cancelled; then stop every poll."""
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
        sources: dict[str, SourceRecord] = {}
        while True:  # every source, a page at a time
            page = await self._store.list(None, after=max(sources, default=""), limit=_SOURCES_PAGE)
            sources.update((s.source_id, s) for s in page)
            if len(page) < _SOURCES_PAGE:
                break
        gone = [i for i, r in self._running.items() if i not in sources and not (r.task and not r.task.done())]
        for source_id in gone:
            del self._running[source_id]  # deleted sources: nothing to keep
        now = time.monotonic()
        for source in sources.values():
            running = self._running.setdefault(source.source_id, _Running())
            if running.task and not running.task.done():
                continue
            due = running.wake.is_set() or now >= running.next_run
            if due and source.enabled and source.state == sync_pb.SYNC_SOURCE_STATE_ACTIVE:
                running.wake.clear()
                running.next_run = now + max(1.0, source.poll_interval_s)
                running.task = asyncio.create_task(self.poll_source(source))
            elif due:
                running.wake.clear()

    async def run_now(self, source_id: str, wait: bool) -> None:
        """Poll a source now (``wait``: until the poll is done)."""
        running = self._running.setdefault(source_id, _Running())
        if running.task and not running.task.done():
            if wait:
                await asyncio.shield(running.task)
            return
        source = await self._store.get(source_id)
        if source is None:
            return
        running.next_run = time.monotonic() + max(1.0, source.poll_interval_s)
        running.task = asyncio.create_task(self.poll_source(source))
        if wait:
            await asyncio.shield(running.task)

    async def poll_source(self, source: SourceRecord) -> None:
        try:
            source = opened(self._sealer, source)
        except CredentialUnavailable as exc:
            # Each client says why (the source stays active: the right key
            # configured and a restart, or a new credential, resumes it).
            self._log.error("credential unavailable", source=source.source_id, error=str(exc))
            for name in source.clients:
                await self._store.client_error(source.source_id, name, str(exc))
            self._metrics.polls.labels(_vendor(source), "failed").inc()
            return
        fetcher_type = fetcher_of(source.vendor)
        rate = source.rate_limit_per_s or fetcher_type.DEFAULT_RATE
        budget = f"{source.vendor}|{source.base_url}|{source.organization_id or source.source_id}"
        http = VendorHttp(self._limiter, budget, rate, timeout=self._settings.sync_http_timeout_seconds,
                          attempts=self._settings.sync_http_attempts,
                          backoff_base=self._settings.sync_backoff_base_seconds,
                          egress=EgressPolicy.from_settings(self._settings), base_url=source.base_url)
        try:
            fetcher = fetcher_type.for_source(http, source)
            checkpoints = await self._store.checkpoints(source.source_id)
            unanswered = await self._identify(source, fetcher)
            for client in follow(source.vendor, source.clients, await self._store.identities(source.source_id)):
                if all(name in unanswered for name in client.names):
                    # Not followed this time: it may be a client followed under another name.
                    await self._store.client_error(source.source_id, client.name, unanswered[client.name])
                    self._metrics.polls.labels(_vendor(source), "failed").inc()
                    continue
                # where the client stands: the furthest of its names' checkpoints
                # (names followed on their own before are the same client)
                marks = [cp.checkpoint_at for n in client.names
                         if (cp := checkpoints.get(n)) is not None and cp.checkpoint_at]
                await self._poll_client(source, fetcher, client, max(marks, default=None))
        except CredentialRejected as exc:
            self._log.warning("credential rejected", source=source.source_id, error=str(exc))
            await self._store.set_state(source.source_id, sync_pb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED,
                                        f"the vendor rejected the credential: {exc}")
            self._metrics.polls.labels(_vendor(source), "credential_rejected").inc()
        finally:
            await http.close()

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
                await self._store.advance(source.source_id, client.name, checkpoint_at=covered, success=page.last,
                                          **counts.__dict__)
                self._count(source, counts)
                counts = PollCounts()
            self._metrics.polls.labels(_vendor(source), "ok").inc()
        except CredentialRejected:
            raise
        except (VendorUnavailable, grpc.aio.AioRpcError) as exc:
            # (an RPC error may carry no details: its code then, never None for a NOT NULL column)
            message = (exc.details() or exc.code().name) if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            self._log.warning("poll failed", source=source.source_id, client=client.name, error=message)
            await self._store.advance(source.source_id, client.name, checkpoint_at=None, **counts.__dict__)
            await self._store.client_error(source.source_id, client.name, message)
            self._metrics.polls.labels(_vendor(source), "failed").inc()

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
