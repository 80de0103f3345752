"""The QueryService gRPC servicer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias, cast

import asyncpg
import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as query_pb
from connlog.api.v1 import query_service_pb2_grpc as query_grpc
from connlog.core import validation
from connlog.core.database import resolve_database_url
from connlog.core.identifiers import normalise_mac, parse_event_name, parse_network_parent
from connlog.core.principal import Permission
from connlog.core.server import ServiceContext
from connlog.core.validation import InvalidArgument
from connlog.query import page_token
from connlog.query.directory import Directory, check_clients_request
from connlog.query.reader import EventReader
from connlog.query.tail import Batch, EndReason, TailHub, TailUnavailable, TooManyWatchers, WatchEnded, Watcher
from connlog.shapes import registry
from connlog.store.accounts import AccountStore
from connlog.store.events import EventFilter
from connlog.store.feed import FeedPosition, frontier

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# The longest text a filter can match (what ingest stores is shorter).
MAX_FILTER_TEXT = 1024
SSID_NUMBER_RANGE = (0, 255)  # as ingest accepts (wlan.ssid_number)


def filter_mac(value: str, field: str) -> str | None:
    """A MAC address filter field, normalised (None when not given)."""
    if not value:
        return None
    mac = normalise_mac(value)
    if mac is None:
        raise InvalidArgument(field, f"{value[:64]!r} is not a MAC address")
    return mac


def filter_text(value: str, field: str) -> str | None:
    """A text filter field (None when not given)."""
    return validation.text(value, field, max_length=MAX_FILTER_TEXT) or None


# The requests with the event filters of ListConnectionEventsRequest (the
# same field names, numbers and meaning; tests/unit/test_tail_contract.py).
FilterRequest: TypeAlias = query_pb.ListConnectionEventsRequest | query_pb.WatchConnectionEventsRequest

# Trailing metadata of a watch that ended resumably: the resume token of the
# last message the server sent.
RESUME_TOKEN_TRAILER = "connlog-resume-token"

_WATCH_END_CODES = {
    EndReason.TOO_SLOW: grpc.StatusCode.RESOURCE_EXHAUSTED,
    EndReason.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    EndReason.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    EndReason.CLOSED: grpc.StatusCode.CANCELLED,
}


def shared_filter_fields(request: Any) -> dict[str, Any]:
    """The ``EventFilter`` fields every request that filters events names
    alike (list, watch, the insights): the same request fields, the same
    checks; raises ``InvalidArgument`` naming the first it cannot honour."""
    return dict(
        client_id=filter_text(request.client_id, "client_id"),
        client_mac=filter_mac(request.client_mac_address, "client_mac_address"),
        steps=validation.enum_values(request.steps, pb.ConnectionStep, "steps"),
        bands=validation.enum_values(request.bands, pb.Band, "bands"),
        ssid=filter_text(request.ssid, "ssid"),
        ssid_number=validation.integer(request.ssid_number, "ssid_number", *SSID_NUMBER_RANGE)
        if request.HasField("ssid_number") else None,
        ap_serial=filter_text(request.access_point_serial, "access_point_serial"),
        ap_name=filter_text(request.access_point_name, "access_point_name"),
        bssid=filter_mac(request.bssid, "bssid"),
        vendor=validation.enum_value(request.vendor, pb.Vendor, "vendor") if request.vendor else None,
    )


def build_filter(request: FilterRequest) -> EventFilter:
    """The store filter of a list or watch request (network resolved
    separately); raises ``InvalidArgument`` naming the first field it cannot
    honour."""
    flt = EventFilter(
        start=validation.timestamp(request.start_time, "start_time") if request.HasField("start_time") else None,
        end=validation.timestamp(request.end_time, "end_time") if request.HasField("end_time") else None,
        outcomes=validation.enum_values(request.outcomes, pb.Outcome, "outcomes"),
        severities=validation.enum_values(request.severities, pb.Severity, "severities"),
        failure_codes=list(request.failure_codes),
        **shared_filter_fields(request),
    )
    if flt.start and flt.end and flt.start >= flt.end:
        raise InvalidArgument("end_time", "must be after start_time")
    return flt


def parse_resume_token(token: str) -> FeedPosition | None:
    """The feed position a watch resumes after (None: from now on);
    ``InvalidArgument`` naming ``resume_token`` if it names none."""
    if not token:
        return None
    try:
        return FeedPosition.from_token(token)
    except ValueError:
        raise InvalidArgument("resume_token", "is not a resume token of WatchConnectionEvents") from None


class QueryServicer(query_grpc.QueryServiceServicer):
    """Reads events of the caller's tenant."""

    def __init__(self, ctx: ServiceContext, tail: TailHub | None = None) -> None:
        self._ctx = ctx
        self._reader = event_reader(ctx)
        self._accounts = AccountStore(ctx.pool)  # network names: on the primary (never "not found" for a
        # network an acknowledged ingest created, whatever the replica's lag)
        self._tail = tail if tail is not None else tail_hub(ctx)
        self._directory = Directory(ctx.read_pool, ctx.read_gate)  # the read replica's, as the reader's

    async def _resolve_network(self, flt: EventFilter, parent: str, network: str, tenant_ref: int,
                               context: grpc.aio.ServicerContext) -> None:
        """Limit ``flt`` to the network ``parent`` names (``network``: its
        id, "-" for all) in the caller's tenant; aborts with NOT_FOUND."""
        if network != "-":
            flt.network_ref = await self._accounts.network_ref(tenant_ref, network)
            if flt.network_ref is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{parent} not found")

    async def GetConnectionEvent(
        self, request: query_pb.GetConnectionEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConnectionEvent:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        parsed = parse_event_name(request.name)
        if parsed is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "name: must be networks/{network}/connectionEvents/{event_id}"
            )
        read = await self._reader.get(principal.tenant_ref, *parsed)
        if read is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        return read.api_event(principal.tenant_id)

    async def ListConnectionEvents(
        self, request: query_pb.ListConnectionEventsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb.ListConnectionEventsResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        network = parse_network_parent(request.parent)
        if network is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "parent: must be networks/{network} or networks/-")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size: must be 0-{MAX_PAGE_SIZE}")
        try:
            flt = build_filter(request)
            validation.enum_value(request.sort_order, query_pb.SortOrder, "sort_order", allow_unspecified=True)
            digest = page_token.request_digest(request)
            after = page_token.decode(request.page_token, digest) if request.page_token else None
        except (InvalidArgument, page_token.BadPageToken) as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        await self._resolve_network(flt, request.parent, network, principal.tenant_ref, context)
        page = await self._reader.page(
            principal.tenant_ref,
            flt,
            size=request.page_size or DEFAULT_PAGE_SIZE,
            descending=request.sort_order == query_pb.SORT_ORDER_DESCENDING,
            after=after,
        )
        response = query_pb.ListConnectionEventsResponse(
            connection_events=[read.api_event(principal.tenant_id) for read in page.events]
        )
        if page.has_next:
            response.next_page_token = page_token.encode(*page.events[-1].position, digest)
        return response

    async def WatchConnectionEvents(
        self, request: query_pb.WatchConnectionEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[query_pb.WatchConnectionEventsResponse]:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        network = parse_network_parent(request.parent)
        if network is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "parent: must be networks/{network} or networks/-")
        try:
            flt = build_filter(request)
            resume = parse_resume_token(request.resume_token)
        except InvalidArgument as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        await self._resolve_network(flt, request.parent, network, principal.tenant_ref, context)
        if resume is not None:
            async with self._ctx.pool.acquire() as conn:
                if resume.xid > await frontier(cast(asyncpg.Connection, conn)):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                        "resume_token: is not a position of this server's events")
        async with self._ctx.auth.live(context, principal) as stream:
            try:
                watcher = await self._tail.subscribe(principal.tenant_ref, flt, resume)
            except TooManyWatchers as err:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{err}: retry later",
                                    trailing_metadata=(("retry-after", str(self._ctx.settings.retry_after_seconds)),))
            except TailUnavailable as err:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{err}: retry later")
            try:
                # at once: the response starts (REST headers too), and the client has its start position
                yield query_pb.WatchConnectionEventsResponse(resume_token=watcher.sent.token())
                async for batch in stream.messages(_batches(watcher)):
                    if isinstance(batch, WatchEnded):
                        await context.abort(
                            _WATCH_END_CODES[batch.reason],
                            f"{batch.reason.value}: resume with the resume_token of the last message received",
                            trailing_metadata=((RESUME_TOKEN_TRAILER, batch.resume.token()),))
                    yield query_pb.WatchConnectionEventsResponse(
                        connection_events=[read.api_event(principal.tenant_id) for read in batch.events],
                        resume_token=batch.resume.token())
            finally:
                self._tail.unsubscribe(watcher)


    async def ListNetworks(
        self, request: query_pb.ListNetworksRequest, context: grpc.aio.ServicerContext
    ) -> query_pb.ListNetworksResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        return await self._directory.list_networks(principal.tenant_ref, request)

    async def ListClients(
        self, request: query_pb.ListClientsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb.ListClientsResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        query = check_clients_request(request)
        network_ref = await self._accounts.network_ref(principal.tenant_ref, query.network_id)
        if network_ref is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.parent} not found")
        return await self._directory.list_clients(principal.tenant_ref, network_ref, query)


def event_reader(ctx: ServiceContext) -> EventReader:
    """The query service's event reader: on its read replica, gated by its
    lag bound, when it has one (``database_read_url``), else on the primary.
    What stays on the primary: keys and revocation (ctx.auth), network
    names, the live tail (LISTEN and the feed: a hot standby cannot LISTEN,
    and resume tokens are the primary's positions) and the rollup
    maintainer (it writes). docs/operations.md, "Reads off the primary"."""
    return EventReader(ctx.read_pool, ctx.read_gate)


def tail_hub(ctx: ServiceContext) -> TailHub:
    """The live tail's hub of a query process: its follower connects (on the
    first watch) to the service's database, outside the pool."""

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(resolve_database_url(ctx.settings), timeout=10)

    return TailHub(ctx.settings, connect, ctx.pool)


async def _batches(watcher: Watcher) -> AsyncIterator[Batch | WatchEnded]:
    """A watch's messages, then why it ended (as an item, not raised: a read
    left pending by a revoked or cancelled call must not fail unseen)."""
    while True:
        try:
            batch = await watcher.next_batch()
        except WatchEnded as ended:
            yield ended
            return
        yield batch


async def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """Add the query service, the insights service and the vendor shapes it
    serves to a server."""
    from connlog.query import insights_servicer  # (it imports this module's filter bounds)

    tail = tail_hub(ctx)
    ctx.on_stopping.append(tail.close)  # watches end (resumably) before the server waits for its calls
    query_grpc.add_QueryServiceServicer_to_server(QueryServicer(ctx, tail), server)
    return [
        query_pb.DESCRIPTOR.services_by_name["QueryService"].full_name,
        *insights_servicer.register(server, ctx),
        *registry.register(server, ctx, registry.QUERY, event_reader(ctx)),
    ]
