"""The QueryService gRPC servicer."""

from __future__ import annotations

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as query_pb
from connlog.api.v1 import query_service_pb2_grpc as query_grpc
from connlog.core import validation
from connlog.core.auth import Permission
from connlog.core.identifiers import normalise_mac, parse_event_name, parse_network_parent
from connlog.core.server import ServiceContext
from connlog.core.validation import InvalidArgument
from connlog.query import page_token
from connlog.query.reader import EventReader
from connlog.shapes import registry
from connlog.store.accounts import AccountStore
from connlog.store.events import EventFilter

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


def build_filter(request: query_pb.ListConnectionEventsRequest) -> EventFilter:
    """The store filter of a list request (network resolved separately);
    raises ``InvalidArgument`` naming the first field it cannot honour."""
    flt = EventFilter(
        client_id=filter_text(request.client_id, "client_id"),
        client_mac=filter_mac(request.client_mac_address, "client_mac_address"),
        start=validation.timestamp(request.start_time, "start_time") if request.HasField("start_time") else None,
        end=validation.timestamp(request.end_time, "end_time") if request.HasField("end_time") else None,
        steps=validation.enum_values(request.steps, pb.ConnectionStep, "steps"),
        outcomes=validation.enum_values(request.outcomes, pb.Outcome, "outcomes"),
        severities=validation.enum_values(request.severities, pb.Severity, "severities"),
        bands=validation.enum_values(request.bands, pb.Band, "bands"),
        ssid=filter_text(request.ssid, "ssid"),
        ssid_number=validation.integer(request.ssid_number, "ssid_number", *SSID_NUMBER_RANGE)
        if request.HasField("ssid_number") else None,
        ap_serial=filter_text(request.access_point_serial, "access_point_serial"),
        ap_name=filter_text(request.access_point_name, "access_point_name"),
        bssid=filter_mac(request.bssid, "bssid"),
        failure_codes=list(request.failure_codes),
        vendor=validation.enum_value(request.vendor, pb.Vendor, "vendor") if request.vendor else None,
    )
    if flt.start and flt.end and flt.start >= flt.end:
        raise InvalidArgument("end_time", "must be after start_time")
    validation.enum_value(request.sort_order, query_pb.SortOrder, "sort_order", allow_unspecified=True)
    return flt


class QueryServicer(query_grpc.QueryServiceServicer):
    """Reads events of the caller's tenant."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._reader = EventReader(ctx.pool)
        self._accounts = AccountStore(ctx.pool)

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
            digest = page_token.request_digest(request)
            after = page_token.decode(request.page_token, digest) if request.page_token else None
        except (InvalidArgument, page_token.BadPageToken) as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        if network != "-":
            flt.network_ref = await self._accounts.network_ref(principal.tenant_ref, network)
            if flt.network_ref is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.parent} not found")
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


async def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """Add the query service, the insights service and the vendor shapes it
    serves to a server."""
    from connlog.query import insights_servicer  # (it imports this module's filter bounds)

    query_grpc.add_QueryServiceServicer_to_server(QueryServicer(ctx), server)
    return [
        query_pb.DESCRIPTOR.services_by_name["QueryService"].full_name,
        *insights_servicer.register(server, ctx),
        *registry.register(server, ctx, registry.QUERY, EventReader(ctx.pool)),
    ]
