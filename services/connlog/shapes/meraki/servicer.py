"""Meraki's Dashboard API shape: ``connectivityEvents`` with Link
pagination, the network's aggregates (``connectionStats`` of the network,
its devices and its clients, through the connection summary of
``connlog.query.insights``; ``failedConnections``), and the
organisation/network look-ups Meraki's SDK makes."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.api.v1 import meraki_service_pb2, meraki_service_pb2_grpc
from connlog.core.budgets import retry_after
from connlog.core.edge import InvalidArgument
from connlog.core.identifiers import NETWORK_ID
from connlog.core.origin import PublicOrigin
from connlog.core.principal import Permission, Principal
from connlog.core.server import ServiceContext
from connlog.query.insights import Insights
from connlog.query.reader import END, EventReader, Page
from connlog.shapes.meraki import API_KEY_HEADER, aggregates, params, stats_params
from connlog.shapes.meraki.params import LAST, MerakiQuery, encode_position
from connlog.shapes.meraki.projection import meraki_array
from connlog.shapes.meraki.ratelimit import RateLimiter
from connlog.shapes.mojo import SESSION_COOKIE
from connlog.shapes.rest import (
    HttpBody,
    RestAuth,
    RestCall,
    RestError,
    absolute_origin,
    query_string,
    respond,
    rest_call,
)
from connlog.store.accounts import AccountStore
from connlog.store.budgets import SharedBuckets
from connlog.store.events import EventFilter
from connlog.store.insights import Grouping

API_PREFIX = "/api/v1"
# The most failedConnections one answer lists (Meraki's endpoint is not
# paginated): a window holding more is a 400 asking to narrow it.
MAX_FAILED_CONNECTIONS = 10_000


def error_body(status: int, message: str) -> dict[str, object]:
    """Meraki's error body."""
    return {"errors": [message]}


AUTH = RestAuth(
    invalid="Invalid API key",
    forbidden="This API key may not read events",
    permitted=lambda principal: principal.can(Permission.READ_EVENTS),
    key_headers=(API_KEY_HEADER,),
    session_cookie=SESSION_COOKIE,
)


class MerakiServicer(meraki_service_pb2_grpc.MerakiServiceServicer):
    """Answers Meraki-shaped requests from the canonical store."""

    def __init__(self, ctx: ServiceContext, reader: EventReader) -> None:
        self._ctx = ctx
        self._reader = reader
        self._insights = Insights(ctx.read_pool, ctx.read_gate)  # the read replica's, as ``reader``'s
        self._accounts = AccountStore(ctx.pool)
        # shared by every query process (the primary: a take is a write)
        self._limiter = RateLimiter(SharedBuckets(ctx.pool), ctx.settings.meraki_rate_limit_per_second,
                                    ctx.settings.meraki_rate_limit_burst)
        settings = ctx.settings
        # where absolute URLs (Link headers, "url" fields) point: never a client-sent Host
        self._public = PublicOrigin.of_settings(settings.public_base_url, settings.trusted_proxies, settings.host,
                                                settings.gateway_port)

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        principal = await AUTH.authenticate(self._ctx.auth, context)
        wait = await self._limiter.try_acquire(principal.tenant_id)
        if wait > 0:
            raise RestError(429, "API rate limit exceeded for organization",
                            headers=(("retry-after", str(retry_after(wait))),))
        return AUTH.authorize(principal)

    # --- connectivityEvents -------------------------------------------------

    async def GetNetworkWirelessClientConnectivityEvents(
        self, request: meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest,
        context: grpc.aio.ServicerContext,
    ) -> HttpBody:
        principal = await self._principal(context)
        call = rest_call(context, request, params.KNOWN)
        query = params.parse(call, dt.datetime.now(dt.UTC))
        network_ref = await self._network_ref(principal, request.network_id)
        client = params.client_filter(request.client_id)
        flt = EventFilter(
            network_ref=network_ref,
            start=query.t0,
            end=query.t1 + dt.timedelta(microseconds=1),
            steps=query.steps,
            bands=query.bands,
            severities=query.severities,
            ssid_number=query.ssid_number,
            ap_serial=query.device_serial,
            client_id=client.client_id,
            client_mac=client.client_mac,
        )
        before = query.ending_before
        page = await self._reader.page(
            principal.tenant_ref, flt, size=query.per_page, descending=query.descending,
            after=query.starting_after, before=END if isinstance(before, str) else before, with_previous=True)
        # a page with events proves the client exists; only an empty one needs asking
        if not page.events and not await self._reader.client_exists(
                principal.tenant_ref, network_ref, client_id=client.client_id, client_mac=client.client_mac):
            raise RestError(404, "Client not found")
        link = self._links(call, absolute_origin(self._public, context, call), request, query, page)
        return await respond(context, 200, None, raw=meraki_array(page.events), headers=(("link", link),))

    # --- aggregates: connectionStats and failedConnections ------------------

    async def _stats_request(
        self,
        request: meraki_service_pb2.GetNetworkWirelessConnectionStatsRequest
        | meraki_service_pb2.GetNetworkWirelessDevicesConnectionStatsRequest
        | meraki_service_pb2.GetNetworkWirelessClientsConnectionStatsRequest
        | meraki_service_pb2.GetNetworkWirelessFailedConnectionsRequest,
        context: grpc.aio.ServicerContext,
        known: frozenset[str],
    ) -> tuple[Principal, EventFilter]:
        """The caller, and the filter of the request's network, window and
        filters (401/403/429, then 400, then 404 as connectivityEvents)."""
        principal = await self._principal(context)
        call = rest_call(context, request, known)
        query = stats_params.parse(call, dt.datetime.now(dt.UTC), known)
        network_ref = await self._network_ref(principal, request.network_id)
        return principal, EventFilter(
            network_ref=network_ref,
            start=query.t0,
            end=query.t1 + dt.timedelta(microseconds=1),  # t1 inclusive, as connectivityEvents
            bands=list(query.bands),
            ssid_number=query.ssid_number,
            ap_serial=query.serial,
            client_mac=query.client_mac,
            client_id=query.client_id,
        )

    async def _summary(
        self, principal: Principal, flt: EventFilter, dimensions: tuple[str, ...]
    ) -> list[ipb.ConnectionGroup]:
        try:
            return await self._insights.summarize(principal.tenant_ref, flt, Grouping(dimensions))
        except InvalidArgument:  # too many groups: Meraki's caller narrows the window
            raise RestError(400, "The timespan holds too many clients or devices to answer: narrow it with "
                                 "'t0'/'t1' or 'timespan', or filter by 'band' or 'ssid'") from None

    async def GetNetworkWirelessConnectionStats(
        self, request: meraki_service_pb2.GetNetworkWirelessConnectionStatsRequest,
        context: grpc.aio.ServicerContext,
    ) -> HttpBody:
        principal, flt = await self._stats_request(request, context, stats_params.STATS_KNOWN)
        groups = await self._summary(principal, flt, ())
        return await respond(context, 200, aggregates.network_stats(groups))

    async def GetNetworkWirelessDevicesConnectionStats(
        self, request: meraki_service_pb2.GetNetworkWirelessDevicesConnectionStatsRequest,
        context: grpc.aio.ServicerContext,
    ) -> HttpBody:
        principal, flt = await self._stats_request(request, context, stats_params.STATS_KNOWN)
        groups = await self._summary(principal, flt, ("access_point",))
        return await respond(context, 200, aggregates.device_stats(groups))

    async def GetNetworkWirelessClientsConnectionStats(
        self, request: meraki_service_pb2.GetNetworkWirelessClientsConnectionStatsRequest,
        context: grpc.aio.ServicerContext,
    ) -> HttpBody:
        principal, flt = await self._stats_request(request, context, stats_params.STATS_KNOWN)
        groups = await self._summary(principal, flt, ("client",))
        return await respond(context, 200, aggregates.client_stats(groups))

    async def GetNetworkWirelessFailedConnections(
        self, request: meraki_service_pb2.GetNetworkWirelessFailedConnectionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> HttpBody:
        principal, flt = await self._stats_request(request, context, stats_params.FAILED_KNOWN)
        flt.steps = list(aggregates.FAILURE_STEPS)
        flt.outcomes = [pb.OUTCOME_FAILURE]
        page = await self._reader.page(principal.tenant_ref, flt, size=MAX_FAILED_CONNECTIONS)
        if page.has_next:
            raise RestError(400, f"The timespan holds more than {MAX_FAILED_CONNECTIONS} failed connections: "
                                 "narrow it with 't0'/'t1' or 'timespan', or filter by 'serial' or 'clientId'")
        return await respond(context, 200, None, raw=aggregates.failed_connections(page.events))

    async def _network_ref(self, principal: Principal, network_id: str) -> int:
        """The stored network of the caller's tenant; 404 when there is none
        (an id that could never have been stored is not looked up)."""
        network_ref = None
        if NETWORK_ID.fullmatch(network_id):
            network_ref = await self._accounts.network_ref(principal.tenant_ref, network_id)
        if network_ref is None:
            raise RestError(404, "Network not found")
        return network_ref

    def _links(
        self, call: RestCall, origin: str,
        request: meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest, query: MerakiQuery, page: Page,
    ) -> str:
        path = call.path or (
            f"{API_PREFIX}/networks/{quote(request.network_id, safe='')}/wireless/clients/"
            f"{quote(request.client_id, safe='')}/connectivityEvents"
        )
        kept = [(k, v) for k, v in call.params if k not in ("startingAfter", "endingBefore", "t0", "t1", "timespan")]
        window = [("t0", _epoch_text(query.t0)), ("t1", _epoch_text(query.t1))]
        base = f"{origin}{path}?{query_string(kept + window, params.ARRAYS)}"

        def url(extra: tuple[str, str] | None = None) -> str:
            return f"<{base}&{query_string([extra])}>" if extra else f"<{base}>"

        links = [f"{url()}; rel=first"]
        events = page.events
        if page.has_previous and events:
            links.append(f"{url(('endingBefore', encode_position(*events[0].position)))}; rel=prev")
        if page.has_next and events:
            links.append(f"{url(('startingAfter', encode_position(*events[-1].position)))}; rel=next")
        links.append(f"{url(('endingBefore', LAST))}; rel=last")
        return ", ".join(links)

    # --- organisations and networks -----------------------------------------

    def _network_json(self, origin: str, tenant_id: str, network_id: str, name: str) -> dict[str, object]:
        return {
            "id": network_id,
            "organizationId": tenant_id,
            "name": name or network_id,
            "productTypes": ["wireless"],
            "timeZone": "Etc/UTC",
            "tags": [],
            "enrollmentString": None,
            "url": f"{origin}/networks/{network_id}",
            "notes": "",
            "isBoundToConfigTemplate": False,
        }

    async def GetNetwork(
        self, request: meraki_service_pb2.GetNetworkRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal = await self._principal(context)
        call = rest_call(context)
        found = NETWORK_ID.fullmatch(request.network_id) and await self._accounts.networks(
            principal.tenant_ref, request.network_id)
        if not found:
            raise RestError(404, "Network not found")
        origin = absolute_origin(self._public, context, call)
        return await respond(context, 200, self._network_json(origin, principal.tenant_id, *found[0]))

    async def GetOrganizations(
        self, request: meraki_service_pb2.GetOrganizationsRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal = await self._principal(context)
        call = rest_call(context)
        tenant_id, name = await self._accounts.tenant(principal.tenant_ref)
        return await respond(context, 200, [{
            "id": tenant_id,
            "name": name or tenant_id,
            "url": f"{absolute_origin(self._public, context, call)}/organizations/{tenant_id}",
            "api": {"enabled": True},
            "licensing": {"model": "co-term"},
            "cloud": {"region": {"name": "connlog"}},
            "management": {"details": []},
        }])

    async def _organization(
        self,
        request: meraki_service_pb2.GetOrganizationNetworksRequest
        | meraki_service_pb2.GetOrganizationInventoryDevicesRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuple[Principal, RestCall]:
        principal = await self._principal(context)
        if request.organization_id != principal.tenant_id:
            raise RestError(404, "Organization not found")
        return principal, rest_call(context)

    async def GetOrganizationNetworks(
        self, request: meraki_service_pb2.GetOrganizationNetworksRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal, call = await self._organization(request, context)
        networks = await self._accounts.networks(principal.tenant_ref)
        origin = absolute_origin(self._public, context, call)
        return await respond(context, 200,
                             [self._network_json(origin, principal.tenant_id, n, name) for n, name in networks])

    async def GetOrganizationInventoryDevices(
        self, request: meraki_service_pb2.GetOrganizationInventoryDevicesRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal, _call = await self._organization(request, context)
        devices = [
            {
                "mac": None,
                "serial": ap["serial"],
                "name": ap["name"] or None,
                "model": None,
                "networkId": ap["network_id"],
                "orderNumber": None,
                "claimedAt": None,
                "licenseExpirationDate": None,
                "tags": [],
                "productType": "wireless",
                "countryCode": None,
                "details": [],
            }
            for ap in await self._accounts.access_points(principal.tenant_ref)
        ]
        return await respond(context, 200, devices)


def _epoch_text(when: dt.datetime) -> str:
    micros = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
