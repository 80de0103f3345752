"""The InsightsService gRPC servicer: checks each request (every refused
field is INVALID_ARGUMENT naming it), resolves the network, and turns what
``connlog.query.insights`` computes into responses and page tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import asyncpg
import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.api.v1 import insights_service_pb2_grpc as igrpc
from connlog.core import validation
from connlog.core.database import resolve_database_url
from connlog.core.identifiers import NETWORK_ID, normalise_mac, parse_network_parent
from connlog.core.principal import Permission
from connlog.core.server import ServiceContext
from connlog.core.validation import InvalidArgument
from connlog.query import page_token
from connlog.query.insights import (
    MAX_GROUPS,
    TIME_TO_CONNECT_DIMENSIONS,
    Insights,
    SampleFilter,
    dimensions_of,
)
from connlog.query.rollups import RollupCollector, RollupMaintainer
from connlog.query.servicer import MAX_FILTER_TEXT, filter_mac, filter_text, shared_filter_fields
from connlog.query.sessions import Session
from connlog.store.accounts import AccountStore
from connlog.store.events import EventFilter
from connlog.store.insights import Grouping

DEFAULT_GROUPS, MAX_PAGE_GROUPS = 100, 1000
DEFAULT_SESSIONS, MAX_PAGE_SESSIONS = 50, 500
MIN_BUCKET = dt.timedelta(minutes=1)
MAX_BUCKETS = 1000
_CLIENT_PARENT = re.compile(r"^networks/([^/]+)/clients/([^/]+)\Z")
CONNECT_TIMEOUT_SECONDS = 30.0  # the rollup maintainer's own connection
CLIENT_PARENT_REASON = "must be networks/{network}/clients/{client} ({network} may be -)"


_Ranged = ipb.SummarizeConnectionsRequest | ipb.SummarizeTimeToConnectRequest | ipb.ListClientSessionsRequest


def _range(request: _Ranged, *, required: bool) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The request's [start_time, end_time), checked."""
    bounds: list[dt.datetime | None] = []
    for name in ("start_time", "end_time"):
        if request.HasField(name):
            bounds.append(validation.timestamp(getattr(request, name), name))
        elif required:
            raise InvalidArgument(name, "is required")
        else:
            bounds.append(None)
    start, end = bounds
    if start is not None and end is not None and start >= end:
        raise InvalidArgument("end_time", "must be after start_time")
    return start, end


def _group_by(values: list[int], allowed: frozenset[int] | None = None) -> list[int]:
    checked = validation.enum_values(values, ipb.GroupBy, "group_by")
    if len(set(checked)) != len(checked):
        raise InvalidArgument("group_by", "names a dimension more than once")
    for value in checked:
        if allowed is not None and value not in allowed:
            raise InvalidArgument("group_by", f"{ipb.GroupBy.Name(value)} is not a dimension of this insight")
    return checked


def _offset(token: str, digest: str) -> int:
    """The offset a groups page token holds (0 without one)."""
    if not token:
        return 0
    try:
        return page_token.decode_offset(token, digest, MAX_GROUPS)
    except page_token.BadPageToken as err:
        raise InvalidArgument("page_token", str(err).removeprefix("page_token: ")) from None


def _position(token: str, digest: str) -> tuple[dt.datetime, int] | None:
    """The position a sessions page token holds (None without one)."""
    if not token:
        return None
    try:
        return page_token.decode(token, digest)
    except page_token.BadPageToken as err:
        raise InvalidArgument("page_token", str(err).removeprefix("page_token: ")) from None


def _page_size(value: int, default: int, maximum: int) -> int:
    if not 0 <= value <= maximum:
        raise InvalidArgument("page_size", f"must be 0-{maximum}")
    return value or default


def summary_filter(request: ipb.SummarizeConnectionsRequest) -> tuple[EventFilter, Grouping]:
    """The store filter and grouping of a summary request (network resolved
    separately); raises ``InvalidArgument`` naming the first field it cannot
    honour."""
    start, end = _range(request, required=True)
    assert start is not None and end is not None
    group_by = _group_by(list(request.group_by))
    bucket = None
    if request.HasField("bucket_duration"):
        bucket = validation.duration(request.bucket_duration, "bucket_duration", minimum=MIN_BUCKET)
        buckets = -(-(end - start) // bucket)
        if buckets > MAX_BUCKETS:
            raise InvalidArgument("bucket_duration", f"makes {buckets} buckets of the time range; at most "
                                                     f"{MAX_BUCKETS}")
    flt = EventFilter(start=start, end=end, **shared_filter_fields(request))
    return flt, Grouping(dimensions_of(group_by), bucket, start if bucket else None)


def time_to_connect_filter(request: ipb.SummarizeTimeToConnectRequest) -> tuple[EventFilter, SampleFilter, list[int]]:
    """The store filter (range, client), the filter of samples and the
    dimensions of a time-to-connect request."""
    start, end = _range(request, required=True)
    group_by = _group_by(list(request.group_by), TIME_TO_CONNECT_DIMENSIONS)
    flt = EventFilter(start=start, end=end, client_id=filter_text(request.client_id, "client_id"),
                      client_mac=filter_mac(request.client_mac_address, "client_mac_address"))
    samples = SampleFilter(
        bands=tuple(validation.enum_values(request.bands, pb.Band, "bands")),
        ssid=filter_text(request.ssid, "ssid"),
        ap_serial=filter_text(request.access_point_serial, "access_point_serial"),
        vendor=validation.enum_value(request.vendor, pb.Vendor, "vendor") if request.vendor else None,
    )
    return flt, samples, group_by


def parse_client_parent(parent: str) -> tuple[str, str | None, str | None]:
    """(network id or ``-``, client MAC, client id) of a client's name."""
    match = _CLIENT_PARENT.match(parent)
    if not match:
        raise InvalidArgument("parent", CLIENT_PARENT_REASON)
    network, client = match.groups()
    if network != "-" and not NETWORK_ID.match(network):
        raise InvalidArgument("parent", CLIENT_PARENT_REASON)
    mac = normalise_mac(client)
    if mac is not None:
        return network, mac, None
    return network, None, validation.text(client, "parent", max_length=MAX_FILTER_TEXT)


def session_message(session: Session) -> ipb.ClientSession:
    """The API message of a session."""
    first = session.events[0]
    message = ipb.ClientSession(
        session_id=str(session.session_id), network_id=first.network_id, roam_count=session.roam_count,
        steps_succeeded=session.steps_succeeded, outcome=session.outcome, failure_count=session.failure_count,
        end=session.end, event_count=len(session.events),
    )
    message.start_time.FromDatetime(session.start_time)
    message.end_time.FromDatetime(session.end_time)
    message.duration.FromTimedelta(session.duration)
    for visit in session.visits:
        added = message.access_points.add(access_point=pb.AccessPoint(serial=visit.serial or "", name=visit.name or ""),
                                          bssid=visit.bssid or "", ssid=visit.ssid or "")
        added.start_time.FromDatetime(visit.start)
        added.end_time.FromDatetime(visit.end)
    failure = session.last_failure
    if failure is not None:
        message.failed_step = failure.step
        if failure.failure is not None:
            message.failure.CopyFrom(failure.failure)
        message.failure.SetInParent()
        message.failure.reason = failure.reason
    if session.disconnect is not None:
        message.disconnect_step = session.disconnect.step
        message.disconnect_reason = session.disconnect.reason
    return message


class InsightsServicer(igrpc.InsightsServiceServicer):
    """Insights of the caller's tenant's events."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._insights = Insights(ctx.read_pool, ctx.read_gate)  # the read replica's (query.servicer.event_reader)
        self._accounts = AccountStore(ctx.pool)  # network names: on the primary (as QueryServicer's)

    async def _network_ref(self, tenant_ref: int, network: str, context: grpc.aio.ServicerContext) -> int | None:
        """The network's ref (None for ``-``); NOT_FOUND when the tenant has
        no such network."""
        if network == "-":
            return None
        ref = await self._accounts.network_ref(tenant_ref, network)
        if ref is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"networks/{network} not found")
        return ref

    @staticmethod
    def _network(parent: str) -> str:
        network = parse_network_parent(parent)
        if network is None:
            raise InvalidArgument("parent", "must be networks/{network} or networks/-")
        return network

    async def SummarizeConnections(
        self, request: ipb.SummarizeConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> ipb.SummarizeConnectionsResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        network = self._network(request.parent)
        size = _page_size(request.page_size, DEFAULT_GROUPS, MAX_PAGE_GROUPS)
        flt, grouping = summary_filter(request)
        digest = page_token.request_digest(request)
        offset = _offset(request.page_token, digest)
        flt.network_ref = await self._network_ref(principal.tenant_ref, network, context)
        groups = await self._insights.summarize(principal.tenant_ref, flt, grouping)
        response = ipb.SummarizeConnectionsResponse(groups=groups[offset:offset + size], total_size=len(groups))
        if offset + size < len(groups):
            response.next_page_token = page_token.encode_offset(offset + size, digest)
        return response

    async def SummarizeTimeToConnect(
        self, request: ipb.SummarizeTimeToConnectRequest, context: grpc.aio.ServicerContext
    ) -> ipb.SummarizeTimeToConnectResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        network = self._network(request.parent)
        size = _page_size(request.page_size, DEFAULT_GROUPS, MAX_PAGE_GROUPS)
        flt, samples, group_by = time_to_connect_filter(request)
        digest = page_token.request_digest(request)
        offset = _offset(request.page_token, digest)
        flt.network_ref = await self._network_ref(principal.tenant_ref, network, context)
        groups = await self._insights.time_to_connect(principal.tenant_ref, flt, samples, group_by)
        if len(groups) > MAX_GROUPS:
            raise InvalidArgument("group_by", f"makes more than {MAX_GROUPS} groups: group by fewer dimensions, "
                                              "or narrow the filters or the time range")
        response = ipb.SummarizeTimeToConnectResponse(groups=groups[offset:offset + size], total_size=len(groups))
        if offset + size < len(groups):
            response.next_page_token = page_token.encode_offset(offset + size, digest)
        return response

    async def ListClientSessions(
        self, request: ipb.ListClientSessionsRequest, context: grpc.aio.ServicerContext
    ) -> ipb.ListClientSessionsResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        network, mac, client_id = parse_client_parent(request.parent)
        start, end = _range(request, required=False)
        size = _page_size(request.page_size, DEFAULT_SESSIONS, MAX_PAGE_SESSIONS)
        digest = page_token.request_digest(request)
        after = _position(request.page_token, digest)
        flt = EventFilter(client_mac=mac, client_id=client_id)
        flt.network_ref = await self._network_ref(principal.tenant_ref, network, context)
        sessions, following = await self._insights.client_sessions(
            principal.tenant_ref, flt, start=start, end=end, size=size, after=after)
        response = ipb.ListClientSessionsResponse(client_sessions=[session_message(s) for s in sessions])
        if following is not None:
            response.next_page_token = page_token.encode(*following, digest)
        return response


def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """Add the insights service to a server, and start its rollup
    maintainer (``connlog.query.rollups``; unless ``rollup_maintainer`` is
    off); returns its full name."""
    igrpc.add_InsightsServiceServicer_to_server(InsightsServicer(ctx), server)
    if ctx.settings.rollup_maintainer:
        url = resolve_database_url(ctx.settings)
        maintainer = RollupMaintainer(ctx.settings, lambda: asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS))
        ctx.metrics.registry.register(RollupCollector(maintainer))
        ctx.background.append(asyncio.create_task(maintainer.run(), name="rollup-maintainer"))
    return [ipb.DESCRIPTOR.services_by_name["InsightsService"].full_name]
