"""Tenant isolation and least privilege, cell by cell: every caller role ×
every RPC and REST shape × its own tenant's resources or another tenant's.

Two tenants (``own``, ``other``) each hold one event, one network and one
sync source. A cell calls one operation with the ``own`` tenant's key of one
role (the sync-service key names an ``own`` source) on the resource of
``own`` or of ``other``, classifies the answer, and compares it with what the
roles grant (``expected``). A read that answers must show only the caller's
own data; a write aimed at the other tenant must be refused and leave it
untouched. Each cell is its own test, so a failure names its cell.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2, json_format

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import insights_service_pb2 as inspb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as spb_grpc
from connlog.core.auth import SYNC_SOURCE_HEADER, create_service_key
from connlog.store.accounts import AccountStore
from tests.support.factories import now
from tests.support.gateway import envoy_in_front
from tests.support.gateway_calls import MERAKI_PATH, ZEQUENZE_SAMPLES, meraki_event, meraki_get
from tests.support.services import Clients, Tenant, new_tenant

ROLES = ("viewer", "operator", "administrator", "super_user", "device", "sync_service")
READERS = frozenset({"viewer", "operator", "administrator", "super_user"})
WRITERS = frozenset({"operator", "administrator", "super_user"})
MANAGERS = frozenset({"administrator", "super_user"})
CLIENT = "iso-client"  # the client of each tenant's stored event
WRITER = "iso-writer"  # the client the write cells add events of (never read by a cell)
MOJO_LOGS = "/V5/devices/clients/connectionlogs"


@dataclass
class World:
    """Two tenants' resources and every way in."""

    tenants: dict[str, Tenant]
    networks: dict[str, str]
    macs: dict[str, str]
    events: dict[str, str]  # resource names
    sources: dict[str, str]
    service_key: str
    clients: Clients
    sync: spb_grpc.VendorSyncServiceStub
    http: httpx.AsyncClient

    def token(self, role: str) -> str:
        return self.service_key if role == "sync_service" else self.tenants["own"].keys[role]

    def md(self, role: str) -> tuple[tuple[str, str], ...]:
        metadata = (("authorization", f"Bearer {self.token(role)}"),)
        if role == "sync_service":  # its strongest form: naming a real source of the own tenant
            metadata += ((SYNC_SOURCE_HEADER, self.sources["own"].removeprefix("syncSources/")),)
        return metadata

    def headers(self, role: str) -> dict[str, str]:
        return dict(self.md(role))


def _source(network: str) -> spb.SyncSource:
    # A loopback port nothing listens on (allowed by the tests' outbound
    # settings): a run fails to connect and never leaves the machine.
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url="http://127.0.0.1:9/api/v1", credential="iso-key",
                            network_id=network, clients=[CLIENT], display_name="isolation")
    source.poll_interval.FromSeconds(3600)
    return source


@pytest.fixture(scope="module")
async def world(suite, clients, sync, pool, tmp_path_factory) -> AsyncIterator[World]:
    accounts = AccountStore(pool)
    tenants = {"own": await new_tenant(accounts), "other": await new_tenant(accounts)}
    networks = {whose: f"N_iso_{whose}_{secrets.token_hex(3)}" for whose in tenants}
    macs, events, sources = {}, {}, {}
    for i, (whose, tenant) in enumerate(tenants.items(), start=1):
        event = meraki_event(networks[whose], CLIENT, now() - dt.timedelta(minutes=10), i)
        macs[whose] = event.client.mac_address
        reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=[event]),
                                                            metadata=tenant.md())
        assert reply.accepted_count == 1, reply
        events[whose] = reply.results[0].name
        created = await sync.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=_source(networks[whose])),
                                              metadata=tenant.md("administrator"))
        sources[whose] = created.name
    service = await create_service_key(accounts, description="isolation matrix")
    async with envoy_in_front(suite.settings, tmp_path_factory.mktemp("envoy-iso"), ingest=suite.ingest_address,
                              query=suite.query_address, vendor_sync=f"127.0.0.1:{sync.port}") as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            yield World(tenants, networks, macs, events, sources, service.token, clients, sync, http)


# --- classifying answers ------------------------------------------------------------------------------------------

_GRPC = {grpc.StatusCode.OK: "ok", grpc.StatusCode.PERMISSION_DENIED: "denied",
         grpc.StatusCode.NOT_FOUND: "hidden", grpc.StatusCode.UNAUTHENTICATED: "unauthenticated"}


async def _grpc(call: Awaitable[Any], check: Callable[[Any], str] = lambda _: "ok") -> str:
    try:
        reply = await call
    except grpc.aio.AioRpcError as err:
        return _GRPC.get(err.code(), f"grpc {err.code().name}: {err.details()}")
    return check(reply)


def _http(response: httpx.Response, check: Callable[[httpx.Response], str] = lambda _: "ok") -> str:
    outcome = {403: "denied", 404: "hidden", 401: "unauthenticated", 400: "rejected", 422: "rejected"}
    if response.is_success:
        return check(response)
    return outcome.get(response.status_code, f"http {response.status_code}: {response.text[:200]}")


def _own_events(world: World, events: list[pb.ConnectionEvent]) -> str:
    tenant = world.tenants["own"].tenant_id
    if any(e.tenant_id != tenant for e in events):
        return "LEAK: another tenant's event"
    return "ok" if events else "empty"


def _ingested(statuses: list[int]) -> str:
    if statuses == [ipb.INGEST_STATUS_REJECTED]:
        return "rejected"
    return "ok" if statuses and all(s != ipb.INGEST_STATUS_REJECTED for s in statuses) else f"statuses {statuses}"


_written = itertools.count()


def _write_event(world: World, whose: str) -> pb.ConnectionEvent:
    """An event for the own tenant's network (and its source's vendor);
    aimed at the other tenant by naming it."""
    event = meraki_event(world.networks["own"], WRITER, now() - dt.timedelta(minutes=5, milliseconds=next(_written)))
    if whose == "other":
        event.tenant_id = world.tenants["other"].tenant_id
    return event


# --- the operations -----------------------------------------------------------------------------------------------

Op = Callable[[World, str, str], Awaitable[str]]


@dataclass(frozen=True)
class Operation:
    name: str
    call: Op
    roles: frozenset[str]
    other: str | None  # the answer aimed at the other tenant; None: it cannot be aimed there


async def grpc_get(w: World, role: str, whose: str) -> str:
    return await _grpc(w.clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=w.events[whose]),
                                                          metadata=w.md(role)), lambda e: _own_events(w, [e]))


async def grpc_list(w: World, role: str, whose: str) -> str:
    request = qpb.ListConnectionEventsRequest(parent=f"networks/{w.networks[whose]}")
    return await _grpc(w.clients.query.ListConnectionEvents(request, metadata=w.md(role)),
                       lambda r: _own_events(w, list(r.connection_events)))


async def grpc_watch(w: World, role: str, whose: str) -> str:
    """A streaming read: watched from the feed's start, its first message
    with events (the network's stored event) is what is classified."""
    from connlog.store.feed import FeedPosition

    request = qpb.WatchConnectionEventsRequest(parent=f"networks/{w.networks[whose]}",
                                               resume_token=FeedPosition(0).token())
    call = w.clients.query.WatchConnectionEvents(request, metadata=w.md(role))

    async def first_events() -> list[pb.ConnectionEvent]:
        async for message in call:
            if message.connection_events:
                return list(message.connection_events)
        return []

    try:
        return await _grpc(first_events(), lambda events: _own_events(w, events))
    finally:
        call.cancel()


def _own_networks(w: World, ids: list[str]) -> str:
    """The own tenant's networks (its own, and those the write cells' events
    named, such as the Zequenze shape's): never the other tenant's."""
    if w.networks["other"] in ids:
        return f"LEAK: {ids}"
    return "ok" if w.networks["own"] in ids else f"wrong: {ids}"


def _own_clients(w: World, names: list[str]) -> str:
    """The own network's client directory: never the other tenant's client
    (the directory may not hold the own event yet: it lags by a fold)."""
    return f"LEAK: {names}" if any(w.macs["other"] in n for n in names) else "ok"


async def grpc_list_networks(w: World, role: str, whose: str) -> str:
    return await _grpc(w.clients.query.ListNetworks(qpb.ListNetworksRequest(), metadata=w.md(role)),
                       lambda r: _own_networks(w, [n.network_id for n in r.networks]))


async def grpc_list_clients(w: World, role: str, whose: str) -> str:
    request = qpb.ListClientsRequest(parent=f"networks/{w.networks[whose]}")
    return await _grpc(w.clients.query.ListClients(request, metadata=w.md(role)),
                       lambda r: _own_clients(w, [c.name for c in r.clients]))


async def grpc_ingest(w: World, role: str, whose: str) -> str:
    request = ipb.IngestConnectionEventsRequest(events=[_write_event(w, whose)])
    return await _grpc(w.clients.ingest.IngestConnectionEvents(request, metadata=w.md(role)),
                       lambda r: _ingested([x.status for x in r.results]))


async def grpc_stream(w: World, role: str, whose: str) -> str:
    async def messages() -> AsyncIterator[ipb.StreamIngestConnectionEventsRequest]:
        yield ipb.StreamIngestConnectionEventsRequest(events=[_write_event(w, whose)])

    def check(r: ipb.StreamIngestConnectionEventsResponse) -> str:
        return "rejected" if r.rejected_count else ("ok" if r.accepted_count + r.duplicate_count == 1 else str(r))

    return await _grpc(w.clients.ingest.StreamIngestConnectionEvents(messages(), metadata=w.md(role)), check)


def _window() -> dict[str, Any]:
    """A time range around every stored event of the matrix."""
    start, end = now() - dt.timedelta(days=1), now() + dt.timedelta(days=1)
    return {"start_time": start, "end_time": end}


def _summary_groups(w: World, groups: list[inspb.ConnectionGroup]) -> str:
    """The own tenant holds one event in its network: one group of one event."""
    return "ok" if [g.totals.event_count for g in groups] == [1] else f"LEAK or wrong: {groups}"


async def grpc_summarize(w: World, role: str, whose: str) -> str:
    # (the write cells add events of another client to the own network)
    request = inspb.SummarizeConnectionsRequest(parent=f"networks/{w.networks[whose]}", client_id=CLIENT)
    for name, when in _window().items():
        getattr(request, name).FromDatetime(when)
    return await _grpc(w.clients.insights.SummarizeConnections(request, metadata=w.md(role)),
                       lambda r: _summary_groups(w, list(r.groups)))


async def grpc_time_to_connect(w: World, role: str, whose: str) -> str:
    # one event per tenant is no connection: an answer is all there is to check (an empty one)
    request = inspb.SummarizeTimeToConnectRequest(parent=f"networks/{w.networks[whose]}", client_id=CLIENT)
    for name, when in _window().items():
        getattr(request, name).FromDatetime(when)
    return await _grpc(w.clients.insights.SummarizeTimeToConnect(request, metadata=w.md(role)),
                       lambda r: "ok" if not r.groups else f"LEAK: {r}")


def _sessions(w: World, sessions: list[inspb.ClientSession]) -> str:
    return "ok" if [s.network_id for s in sessions] == [w.networks["own"]] else f"LEAK or wrong: {sessions}"


async def grpc_sessions(w: World, role: str, whose: str) -> str:
    request = inspb.ListClientSessionsRequest(parent=f"networks/{w.networks[whose]}/clients/{CLIENT}")
    return await _grpc(w.clients.insights.ListClientSessions(request, metadata=w.md(role)),
                       lambda r: _sessions(w, list(r.client_sessions)))


async def grpc_sessions_by_mac(w: World, role: str, whose: str) -> str:
    """Tenant-wide (``networks/-``) by the other tenant's client MAC: its
    sessions are not the caller's to see (an empty answer)."""
    request = inspb.ListClientSessionsRequest(parent=f"networks/-/clients/{w.macs[whose]}")
    return await _grpc(w.clients.insights.ListClientSessions(request, metadata=w.md(role)),
                       lambda r: "empty" if not r.client_sessions else _sessions(w, list(r.client_sessions)))


def _rfc3339_window() -> dict[str, str]:
    return {"startTime": _window()["start_time"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endTime": _window()["end_time"].strftime("%Y-%m-%dT%H:%M:%SZ"), "clientId": CLIENT}


async def rest_summarize(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/networks/{w.networks[whose]}/connectionEvents:summarize",
                                params=_rfc3339_window(), headers=w.headers(role))
    return _http(response, lambda r: "ok" if [g["totals"]["eventCount"] for g in r.json().get("groups", [])] == ["1"]
                 else f"LEAK or wrong: {r.json()}")


async def rest_time_to_connect(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/networks/{w.networks[whose]}/connectionEvents:summarizeTimeToConnect",
                                params=_rfc3339_window(), headers=w.headers(role))
    return _http(response, lambda r: "ok" if not r.json().get("groups") else f"LEAK: {r.json()}")


async def rest_sessions(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/networks/{w.networks[whose]}/clients/{CLIENT}/sessions", headers=w.headers(role))
    return _http(response, lambda r: "ok" if [s["networkId"] for s in r.json().get("clientSessions", [])]
                 == [w.networks["own"]] else f"LEAK or wrong: {r.json()}")


async def sync_get(w: World, role: str, whose: str) -> str:
    return await _grpc(w.sync.GetSyncSource(spb.GetSyncSourceRequest(name=w.sources[whose]), metadata=w.md(role)))


async def sync_status(w: World, role: str, whose: str) -> str:
    request = spb.GetSyncSourceStatusRequest(name=f"{w.sources[whose]}/status")
    return await _grpc(w.sync.GetSyncSourceStatus(request, metadata=w.md(role)))


async def sync_list(w: World, role: str, whose: str) -> str:
    def check(r: spb.ListSyncSourcesResponse) -> str:
        names = {s.name for s in r.sync_sources}
        return "LEAK: another tenant's source" if w.sources["other"] in names else "ok"

    return await _grpc(w.sync.ListSyncSources(spb.ListSyncSourcesRequest(page_size=1000), metadata=w.md(role)), check)


async def sync_create(w: World, role: str, whose: str) -> str:
    request = spb.CreateSyncSourceRequest(sync_source=_source(w.networks["own"]))
    return await _grpc(w.sync.CreateSyncSource(request, metadata=w.md(role)))


async def sync_update(w: World, role: str, whose: str) -> str:
    request = spb.UpdateSyncSourceRequest(sync_source=spb.SyncSource(name=w.sources[whose], display_name=role),
                                          update_mask=field_mask_pb2.FieldMask(paths=["display_name"]))
    return await _grpc(w.sync.UpdateSyncSource(request, metadata=w.md(role)))


async def sync_run(w: World, role: str, whose: str) -> str:
    request = spb.RunSyncSourceRequest(name=w.sources[whose], wait=False)
    return await _grpc(w.sync.RunSyncSource(request, metadata=w.md(role)))


async def sync_delete(w: World, role: str, whose: str) -> str:
    name = w.sources[whose]
    if whose == "own":  # a source of its own to delete, so the others stay
        name = (await w.sync.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=_source(w.networks["own"])),
                                              metadata=w.tenants["own"].md("administrator"))).name
    return await _grpc(w.sync.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=name), metadata=w.md(role)))


async def meraki_events(w: World, role: str, whose: str) -> str:
    url = MERAKI_PATH.format(net=w.networks[whose], client=CLIENT)
    return _http(await meraki_get(w.http, url, headers=w.headers(role)),
                 lambda r: "ok" if len(r.json()) == 1 else f"events {r.json()}")


async def meraki_network(w: World, role: str, whose: str) -> str:
    return _http(await meraki_get(w.http, f"/api/v1/networks/{w.networks[whose]}", headers=w.headers(role)))


async def meraki_organizations(w: World, role: str, whose: str) -> str:
    own = w.tenants["own"].tenant_id
    return _http(await meraki_get(w.http, "/api/v1/organizations", headers=w.headers(role)),
                 lambda r: "ok" if [o["id"] for o in r.json()] == [own] else f"LEAK: {r.json()}")


async def meraki_org_networks(w: World, role: str, whose: str) -> str:
    org = w.tenants[whose].tenant_id
    return _http(await meraki_get(w.http, f"/api/v1/organizations/{org}/networks", headers=w.headers(role)),
                 lambda r: "ok" if w.networks["own"] in {n["id"] for n in r.json()} else f"networks {r.json()}")


async def meraki_inventory(w: World, role: str, whose: str) -> str:
    org = w.tenants[whose].tenant_id
    return _http(await meraki_get(w.http, f"/api/v1/organizations/{org}/inventoryDevices", headers=w.headers(role)))


def _meraki_aggregate(w: World, whose: str, path: str) -> str:
    return f"/api/v1/networks/{w.networks[whose]}/wireless/{path}"


async def meraki_connection_stats(w: World, role: str, whose: str) -> str:
    response = await meraki_get(w.http, _meraki_aggregate(w, whose, "connectionStats"), headers=w.headers(role))
    return _http(response, lambda r: "ok" if set(r.json()) == {"assoc", "auth", "dhcp", "dns", "success"}
                 else f"stats {r.json()}")


async def meraki_devices_connection_stats(w: World, role: str, whose: str) -> str:
    response = await meraki_get(w.http, _meraki_aggregate(w, whose, "devices/connectionStats"),
                                headers=w.headers(role))
    return _http(response, lambda r: "ok" if [d["serial"] for d in r.json()] == ["Q234-ABCD-5678"]
                 else f"LEAK or wrong: {r.json()}")


async def meraki_clients_connection_stats(w: World, role: str, whose: str) -> str:
    response = await meraki_get(w.http, _meraki_aggregate(w, whose, "clients/connectionStats"),
                                headers=w.headers(role))
    # (the own network also holds the events earlier write cells stored)
    return _http(response, lambda r: "ok" if w.macs["other"] not in [c["mac"] for c in r.json()]
                 else f"LEAK: {r.json()}")


async def meraki_failed_connections(w: World, role: str, whose: str) -> str:
    response = await meraki_get(w.http, _meraki_aggregate(w, whose, "failedConnections"), headers=w.headers(role))
    return _http(response, lambda r: "ok" if all(f["clientMac"] == w.macs["own"] for f in r.json())
                 else f"LEAK: {r.json()}")


def _mojo_logs(r: httpx.Response) -> str:
    count = sum(len(v) for v in r.json().values() if isinstance(v, list))
    return "ok" if count == 1 else ("hidden" if count == 0 else f"logs {r.json()}")


async def mojo_logs(w: World, role: str, whose: str) -> str:
    response = await w.http.get(MOJO_LOGS, params={"clientmacaddress": w.macs[whose]}, headers=w.headers(role))
    return _http(response, _mojo_logs)


async def mojo_session(w: World, role: str, whose: str) -> str:
    key_id, secret = w.token(role).split("_", 2)[1:]
    async with httpx.AsyncClient(base_url=str(w.http.base_url)) as http:
        login = await http.post("/new/webservice/login/key/iso/30",
                                json={"type": "apikeycredentials", "keyId": key_id, "keyValue": secret})
        if not login.is_success:
            return _http(login)
        response = await http.get("/new/webservice" + MOJO_LOGS, params={"clientmacaddress": w.macs[whose]})
        return _http(response, _mojo_logs)


async def zequenze_post(w: World, role: str, whose: str) -> str:
    body = ZEQUENZE_SAMPLES["wifi"]
    return _http(await w.http.post("/api/v1/device_app_connection_log/", json=body, headers=w.headers(role)))


async def rest_get(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/{w.events[whose]}", headers=w.headers(role))
    return _http(response, lambda r: "ok" if r.json()["tenantId"] == w.tenants["own"].tenant_id else "LEAK")


async def rest_list(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/networks/{w.networks[whose]}/connectionEvents", headers=w.headers(role))
    tenant = w.tenants["own"].tenant_id
    return _http(response, lambda r: "ok" if {e["tenantId"] for e in r.json()["connectionEvents"]} == {tenant}
                 else f"LEAK: {r.json()}")


async def rest_list_networks(w: World, role: str, whose: str) -> str:
    response = await w.http.get("/v1/networks", headers=w.headers(role))
    return _http(response, lambda r: _own_networks(w, [n["networkId"] for n in r.json().get("networks", [])]))


async def rest_list_clients(w: World, role: str, whose: str) -> str:
    response = await w.http.get(f"/v1/networks/{w.networks[whose]}/clients", headers=w.headers(role))
    return _http(response, lambda r: _own_clients(w, [c["name"] for c in r.json().get("clients", [])]))


async def rest_ingest(w: World, role: str, whose: str) -> str:
    body = {"events": [json_format.MessageToDict(_write_event(w, whose))]}
    response = await w.http.post("/v1/connectionEvents:ingest", json=body, headers=w.headers(role))
    return _http(response, lambda r: _ingested([ipb.IngestStatus.Value(x["status"]) for x in r.json()["results"]]))


async def rest_sync_get(w: World, role: str, whose: str) -> str:
    return _http(await w.http.get(f"/v1/{w.sources[whose]}", headers=w.headers(role)))


async def rest_sync_update(w: World, role: str, whose: str) -> str:
    response = await w.http.patch(f"/v1/{w.sources[whose]}", params={"updateMask": "displayName"},
                                  json={"displayName": f"rest {role}"}, headers=w.headers(role))
    return _http(response)


async def rest_sync_run(w: World, role: str, whose: str) -> str:
    return _http(await w.http.post(f"/v1/{w.sources[whose]}:run", json={}, headers=w.headers(role)))


OPERATIONS = [
    Operation("grpc.Query.GetConnectionEvent", grpc_get, READERS, "hidden"),
    Operation("grpc.Query.ListConnectionEvents", grpc_list, READERS, "hidden"),
    Operation("grpc.Query.WatchConnectionEvents", grpc_watch, READERS, "hidden"),
    Operation("grpc.Query.ListNetworks", grpc_list_networks, READERS, None),
    Operation("grpc.Query.ListClients", grpc_list_clients, READERS, "hidden"),
    Operation("grpc.Insights.SummarizeConnections", grpc_summarize, READERS, "hidden"),
    Operation("grpc.Insights.SummarizeTimeToConnect", grpc_time_to_connect, READERS, "hidden"),
    Operation("grpc.Insights.ListClientSessions", grpc_sessions, READERS, "hidden"),
    Operation("grpc.Insights.ListClientSessions.allNetworks", grpc_sessions_by_mac, READERS, "empty"),
    Operation("grpc.Ingest.IngestConnectionEvents", grpc_ingest, WRITERS | {"sync_service"}, "rejected"),
    Operation("grpc.Ingest.StreamIngestConnectionEvents", grpc_stream, WRITERS | {"sync_service"}, "rejected"),
    Operation("grpc.VendorSync.GetSyncSource", sync_get, READERS, "hidden"),
    Operation("grpc.VendorSync.GetSyncSourceStatus", sync_status, READERS, "hidden"),
    Operation("grpc.VendorSync.ListSyncSources", sync_list, READERS, None),
    Operation("grpc.VendorSync.CreateSyncSource", sync_create, MANAGERS, None),
    Operation("grpc.VendorSync.UpdateSyncSource", sync_update, MANAGERS, "hidden"),
    Operation("grpc.VendorSync.RunSyncSource", sync_run, MANAGERS, "hidden"),
    Operation("grpc.VendorSync.DeleteSyncSource", sync_delete, MANAGERS, "hidden"),
    Operation("rest.meraki.connectivityEvents", meraki_events, READERS, "hidden"),
    Operation("rest.meraki.network", meraki_network, READERS, "hidden"),
    Operation("rest.meraki.organizations", meraki_organizations, READERS, None),
    Operation("rest.meraki.organizationNetworks", meraki_org_networks, READERS, "hidden"),
    Operation("rest.meraki.inventoryDevices", meraki_inventory, READERS, "hidden"),
    Operation("rest.meraki.connectionStats", meraki_connection_stats, READERS, "hidden"),
    Operation("rest.meraki.devicesConnectionStats", meraki_devices_connection_stats, READERS, "hidden"),
    Operation("rest.meraki.clientsConnectionStats", meraki_clients_connection_stats, READERS, "hidden"),
    Operation("rest.meraki.failedConnections", meraki_failed_connections, READERS, "hidden"),
    Operation("rest.mojo.connectionlogs", mojo_logs, READERS, "hidden"),
    Operation("rest.mojo.session.connectionlogs", mojo_session, READERS, "hidden"),
    Operation("rest.zequenze.connectionLog", zequenze_post, frozenset({"device"}), None),
    Operation("rest.v1.GetConnectionEvent", rest_get, READERS, "hidden"),
    Operation("rest.v1.ListConnectionEvents", rest_list, READERS, "hidden"),
    Operation("rest.v1.ListNetworks", rest_list_networks, READERS, None),
    Operation("rest.v1.ListClients", rest_list_clients, READERS, "hidden"),
    Operation("rest.v1.SummarizeConnections", rest_summarize, READERS, "hidden"),
    Operation("rest.v1.SummarizeTimeToConnect", rest_time_to_connect, READERS, "hidden"),
    Operation("rest.v1.ListClientSessions", rest_sessions, READERS, "hidden"),
    Operation("rest.v1.IngestConnectionEvents", rest_ingest, WRITERS | {"sync_service"}, "rejected"),
    Operation("rest.v1.GetSyncSource", rest_sync_get, READERS, "hidden"),
    Operation("rest.v1.UpdateSyncSource", rest_sync_update, MANAGERS, "hidden"),
    Operation("rest.v1.RunSyncSource", rest_sync_run, MANAGERS, "hidden"),
]


def expected(op: Operation, role: str, whose: str) -> str:
    """What the roles grant: a role without the operation's permission is
    denied; with it, its own tenant's resource answers, the other's is
    hidden (reads, source management) or refused (writes)."""
    if role not in op.roles:
        return "denied"
    return "ok" if whose == "own" else str(op.other)


CELLS = [pytest.param(op, role, whose, id=f"{op.name}-{role}-{whose}")
         for op in OPERATIONS for role in ROLES for whose in ("own", "other")
         if whose == "own" or op.other is not None]


@pytest.mark.parametrize(("op", "role", "whose"), CELLS)
async def test_cell(world: World, op: Operation, role: str, whose: str) -> None:
    assert await op.call(world, role, whose) == expected(op, role, whose)


async def test_the_other_tenant_is_untouched(world: World) -> None:
    """After every cell: the other tenant still holds exactly its one event
    and its source, unchanged (runs last in this module)."""
    other = world.tenants["other"]
    listed = await world.clients.query.ListConnectionEvents(
        qpb.ListConnectionEventsRequest(parent="networks/-"), metadata=other.md("viewer"))
    assert [e.name for e in listed.connection_events] == [world.events["other"]]
    source = await world.sync.GetSyncSource(spb.GetSyncSourceRequest(name=world.sources["other"]),
                                            metadata=other.md("viewer"))
    assert source.display_name == "isolation"
