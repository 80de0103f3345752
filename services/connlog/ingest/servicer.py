"""The IngestService gRPC servicer."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import ingest_service_pb2_grpc as ingest_grpc
from connlog.core.auth import SYNC_SOURCE_HEADER
from connlog.core.principal import Permission, Principal, Role
from connlog.core.server import ServiceContext
from connlog.ingest.pipeline import IngestCounts, IngestPipeline, StreamBatchOutcome
from connlog.ingest.workers import NormaliserPool, worker_count
from connlog.shapes import registry
from connlog.store.sync import SyncStore

_SOURCE_ID_MAX = 256  # longer: no source's id (not looked up)


def _counts(outcome: IngestCounts) -> dict[str, int]:
    return outcome.response_counts()


class IngestServicer(ingest_grpc.IngestServiceServicer):
    """Validates, normalises, de-duplicates and stores events."""

    def __init__(self, ctx: ServiceContext, pipeline: IngestPipeline, workers: int = 0) -> None:
        self._ctx = ctx
        self._pipeline = pipeline
        self._sources = SyncStore(ctx.pool)
        # enough batches in flight to keep every worker and the database busy
        self._depth = max(ctx.settings.stream_pipeline_depth, workers + 1)

    async def _check_size(self, n: int, context: grpc.aio.ServicerContext) -> None:
        limit = self._ctx.settings.max_batch_events
        if n > limit:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"events: at most {limit} events per batch, got {n}")

    async def _writer(self, context: grpc.aio.ServicerContext) -> Principal:
        """Who writes: a key that may write events, or the sync service's
        key acting for the sync source the call names (that source's tenant,
        vendor and network only: connlog.ingest.normalise holds events to
        it). Device keys write through their own shape only."""
        principal = await self._ctx.auth.caller(context)
        if principal.role is Role.DEVICE:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"a device key writes only through its own shape ({principal.shape}), "
                                "not through IngestService")
        if principal.role is Role.SYNC_SERVICE:
            source_id = next((str(value) for key, value in context.invocation_metadata() or ()
                              if key.lower() == SYNC_SOURCE_HEADER), "")
            if not source_id:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"the sync service's key must name its sync source in '{SYNC_SOURCE_HEADER}'")
            scope = await self._sources.scope(source_id) if len(source_id) <= _SOURCE_ID_MAX else None
            if scope is None or not scope.enabled:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"{SYNC_SOURCE_HEADER}: no enabled sync source with that id")
            return principal.for_source(scope)
        if not principal.can(Permission.WRITE_EVENTS):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"a {principal.role.value} key may not write events")
        return principal

    async def IngestConnectionEvents(
        self, request: ingest_pb.IngestConnectionEventsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb.IngestConnectionEventsResponse:
        principal = await self._writer(context)
        await self._check_size(len(request.events), context)
        await self._ctx.auth.charge(context, principal, len(request.events))
        outcome = await self._pipeline.ingest_batch(principal, request.events)
        return ingest_pb.IngestConnectionEventsResponse(results=outcome.results, **_counts(outcome))

    async def StreamIngestConnectionEvents(
        self,
        request_iterator: AsyncIterator[ingest_pb.StreamIngestConnectionEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_pb.StreamIngestConnectionEventsResponse:
        principal = await self._writer(context)
        async with self._ctx.auth.live(context, principal) as stream:
            return await self._stream(principal, stream.messages(request_iterator), context)

    async def _stream(
        self,
        principal: Principal,
        messages: AsyncIterator[ingest_pb.StreamIngestConnectionEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_pb.StreamIngestConnectionEventsResponse:
        settings = self._ctx.settings
        totals = {"accepted_count": 0, "duplicate_count": 0, "rejected_count": 0}
        rejected: list[ingest_pb.IngestResult] = []
        in_flight: collections.deque[asyncio.Task[StreamBatchOutcome]] = collections.deque()
        index = 0
        buffer: list[pb.ConnectionEvent] = []
        # A batch is copied straight into the table unless the stream's last
        # batch met duplicates (a stream sent again): those would make the
        # COPY fail and be done again (connlog.store.events.insert_copied).
        copy_first = True

        async def collect_oldest() -> None:
            nonlocal copy_first
            outcome = await in_flight.popleft()
            for key, value in _counts(outcome).items():
                totals[key] += value
            rejected.extend(outcome.rejections)
            copy_first = not outcome.duplicate

        def flush(batch: list[pb.ConnectionEvent]) -> None:
            # Batches are pipelined: the next one is validated while the
            # previous one's INSERT runs in the database.
            nonlocal index
            in_flight.append(asyncio.ensure_future(
                self._pipeline.ingest_stream_batch(principal, batch, first_index=index, copy_first=copy_first)))
            index += len(batch)

        try:
            async for message in messages:
                await self._check_size(len(message.events), context)
                await self._ctx.auth.charge(context, principal, len(message.events))
                buffer.extend(message.events)
                size = settings.stream_batch_events
                while len(buffer) >= size:
                    flush(buffer[:size])
                    buffer = buffer[size:]
                    while len(in_flight) >= self._depth:
                        await collect_oldest()
            if buffer:
                flush(buffer)
            while in_flight:
                await collect_oldest()
        finally:
            for task in in_flight:
                task.cancel()
        return ingest_pb.StreamIngestConnectionEventsResponse(results=rejected, **totals)


async def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """Add the ingest service to a server (partitions are retention's to
    keep: connlog.store.retention; ingest creates only the days it writes)."""
    workers = None
    count = worker_count(ctx.settings.ingest_workers, ctx.settings.ingest_processes)
    if count:
        workers = NormaliserPool(count)
        ctx.on_stop.append(workers.close)
        await workers.start()
    pipeline = IngestPipeline(ctx.settings, ctx.pool, ctx.metrics, workers)
    ctx.on_stop.append(pipeline.close)
    ingest_grpc.add_IngestServiceServicer_to_server(IngestServicer(ctx, pipeline, count), server)
    return [
        ingest_pb.DESCRIPTOR.services_by_name["IngestService"].full_name,
        *registry.register(server, ctx, registry.INGEST, pipeline),
    ]
