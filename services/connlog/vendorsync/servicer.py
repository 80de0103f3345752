"""The VendorSyncService gRPC servicer."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from typing import Any

import grpc
from google.protobuf import empty_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sync_grpc
from connlog.core import validation
from connlog.core.identifiers import NETWORK_ID
from connlog.core.logging import get_logger
from connlog.core.principal import Permission, Principal
from connlog.core.sealing import NoSealingKey, Sealer
from connlog.core.server import ServiceContext
from connlog.core.settings import Settings
from connlog.core.validation import InvalidArgument
from connlog.shapes.registry import SYNCED, fetcher_of
from connlog.store.budgets import SharedBuckets
from connlog.store.sync import SourceRecord, Sweep, SyncStore
from connlog.vendorsync import credentials, schedule
from connlog.vendorsync.egress import EgressPolicy
from connlog.vendorsync.pacing import SharedPacer
from connlog.vendorsync.worker import SyncWorker, follow_source, sweep_candidates

_PREFIX = "syncSources/"
_MUTABLE = {"display_name", "base_url", "credential", "network_id", "vendor_network_id", "clients", "poll_interval",
            "rate_limit_per_second", "organization_id", "client_identifier", "enabled", "discover_clients"}


def to_proto(record: SourceRecord) -> sync_pb.SyncSource:
    """The API view of a source: never its credential."""
    source = sync_pb.SyncSource(
        name=_PREFIX + record.source_id,
        display_name=record.display_name,
        vendor=record.vendor,
        base_url=record.base_url,
        has_credential=record.has_credential,
        network_id=record.network_id,
        vendor_network_id=record.vendor_network_id,
        clients=record.clients,
        rate_limit_per_second=record.rate_limit_per_s,
        organization_id=record.organization_id,
        client_identifier=record.client_identifier,
        enabled=record.enabled,
        tenant_id=record.tenant_id,
        discover_clients=record.discover_clients,
    )
    source.poll_interval.FromTimedelta(dt.timedelta(seconds=record.poll_interval_s))
    source.create_time.FromDatetime(record.created_at)
    source.update_time.FromDatetime(record.updated_at)
    return source


# Ids this service gives sources (secrets.token_hex); a name with anything
# else names no source and is refused before it reaches the store.
_SOURCE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CLIENTS = 1000
# Per-client entries a status shows at most (the listed names first); its
# ``clients_known`` counts them all.
MAX_STATUS_CLIENTS = 10_000
MAX_CLIENT = 128
MAX_TEXT = 256
MAX_CREDENTIAL = 4096
MIN_POLL_INTERVAL = dt.timedelta(seconds=1)
# Meraki keeps 31 days of events: a source polled less often loses events.
MAX_POLL_INTERVAL = dt.timedelta(days=31)
# Requests per second to the vendor (0: the vendor's default). A slower
# budget than one request per 1000 s is a mistake, not a budget.
MIN_RATE, MAX_RATE = 0.001, 10000.0


def _text(source: sync_pb.SyncSource, name: str, max_length: int = MAX_TEXT) -> str:
    return validation.text(getattr(source, name), f"sync_source.{name}", max_length=max_length)


def columns(source: sync_pb.SyncSource, paths: set[str], egress: EgressPolicy) -> dict[str, Any]:
    """Validated column values of the given source fields (``egress``: where
    vendor-sync may connect); raises ``InvalidArgument`` naming the first
    field it cannot accept."""
    out: dict[str, Any] = {}
    if "display_name" in paths:
        out["display_name"] = validation.text(source.display_name[:200], "sync_source.display_name")
    if "vendor" in paths:
        if source.vendor not in SYNCED:
            raise InvalidArgument("sync_source.vendor", f"must be {' or '.join(map(pb.Vendor.Name, SYNCED))}")
        out["vendor"] = source.vendor
    if "base_url" in paths:
        out["base_url"] = egress.source_url(validation.http_url(source.base_url, "sync_source.base_url").rstrip("/"),
                                            "sync_source.base_url")
    if "credential" in paths:
        if not source.credential:
            raise InvalidArgument("sync_source.credential", "is required")
        out["credential"] = _text(source, "credential", MAX_CREDENTIAL)
    if "network_id" in paths:
        if not NETWORK_ID.match(source.network_id):
            raise InvalidArgument("sync_source.network_id", "must be a network id")
        out["network_id"] = source.network_id
    if "vendor_network_id" in paths:
        out["vendor_network_id"] = _text(source, "vendor_network_id")
    if "clients" in paths:
        clients = [c.strip() for c in source.clients]
        if any(not c or len(c) > MAX_CLIENT for c in clients):
            raise InvalidArgument("sync_source.clients", "each must be a client id or MAC of 1-128 characters")
        if len(clients) > MAX_CLIENTS:
            raise InvalidArgument("sync_source.clients", f"at most {MAX_CLIENTS} clients per source")
        for client in clients:
            validation.text(client, "sync_source.clients")
        if len(set(clients)) != len(clients):
            raise InvalidArgument("sync_source.clients", "listed twice")
        out["clients"] = clients
    if "poll_interval" in paths:
        interval = validation.duration(source.poll_interval, "sync_source.poll_interval", minimum=MIN_POLL_INTERVAL,
                                       maximum=MAX_POLL_INTERVAL) if source.HasField("poll_interval") else None
        out["poll_interval_s"] = interval.total_seconds() if interval is not None else 60.0
    if "rate_limit_per_second" in paths:
        rate = source.rate_limit_per_second
        if rate != 0:  # (-0.0 too)
            validation.number(rate, "sync_source.rate_limit_per_second", MIN_RATE, MAX_RATE)
        out["rate_limit_per_s"] = rate if rate != 0 else 0.0
    for name in ("organization_id", "client_identifier"):
        if name in paths:
            out[name] = _text(source, name)
    if "enabled" in paths:
        out["enabled"] = source.enabled
    if "discover_clients" in paths:
        out["discover_clients"] = source.discover_clients
    return out


def _check_vendor_rules(values: dict[str, Any]) -> None:
    if values.get("vendor") in SYNCED:
        fetcher = fetcher_of(values["vendor"])
        if not fetcher.DISCOVERS:  # only clients it lists
            vendor = pb.Vendor.Name(values["vendor"])
            if values.get("discover_clients"):
                raise InvalidArgument("sync_source.discover_clients", f"{vendor} sources cannot discover clients")
            if not values.get("clients", [""]):
                raise InvalidArgument("sync_source.clients",
                                      f"needs at least one client id or MAC ({vendor} sources cannot discover clients)")
        fetcher.check_source(values)


class VendorSyncServicer(sync_grpc.VendorSyncServiceServicer):
    """Manages sources; the worker polls them."""

    def __init__(self, ctx: ServiceContext, worker: SyncWorker, sealer: Sealer) -> None:
        self._ctx = ctx
        self._egress = EgressPolicy.from_settings(ctx.settings)  # (a malformed allow-list stops the start)
        self._worker = worker
        self._store = SyncStore(ctx.pool)
        self._sealer = sealer

    async def _sealed(self, context: grpc.aio.ServicerContext, source_id: str, values: dict[str, Any]) -> None:
        """Replace a new credential in ``values`` by its sealed form; without
        a sealing key, FAILED_PRECONDITION (never stored in clear)."""
        if "credential" not in values:
            return
        try:
            values["credential_sealed"] = credentials.seal(self._sealer, source_id, values.pop("credential"))
        except NoSealingKey as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"sync_source.credential: {err}")

    async def _source(
        self, context: grpc.aio.ServicerContext, principal: Principal, name: str, field: str = "name"
    ) -> SourceRecord:
        source_id = name.removeprefix(_PREFIX).removesuffix("/status")
        if not name.startswith(_PREFIX) or not _SOURCE_ID.fullmatch(source_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: must be syncSources/{{sync_source}}")
        record = await self._store.get(source_id, principal.tenant_ref)
        if record is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{name} not found")
        return record

    async def _stored(self, source_id: str) -> SourceRecord:
        """A source just written or looked up (gone only if deleted meanwhile)."""
        record = await self._store.get(source_id)
        if record is None:
            raise LookupError(f"{_PREFIX}{source_id} was deleted meanwhile")
        return record

    async def CreateSyncSource(
        self, request: sync_pb.CreateSyncSourceRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.SyncSource:
        principal = await self._ctx.auth.require(context, Permission.MANAGE_SOURCES)
        source = request.sync_source
        required = {"vendor", "base_url", "credential", "network_id", "clients", "poll_interval",
                    "rate_limit_per_second", "organization_id", "client_identifier", "display_name",
                    "vendor_network_id", "discover_clients"}
        try:
            values = columns(source, required, self._egress)
            _check_vendor_rules(values)
        except InvalidArgument as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        source_id = secrets.token_hex(8)
        await self._sealed(context, source_id, values)
        values |= {"source_id": source_id, "tenant_ref": principal.tenant_ref, "enabled": True}
        await self._store.create(values)
        return to_proto(await self._stored(source_id))

    async def GetSyncSource(
        self, request: sync_pb.GetSyncSourceRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.SyncSource:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        return to_proto(await self._source(context, principal, request.name))

    async def ListSyncSources(
        self, request: sync_pb.ListSyncSourcesRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.ListSyncSourcesResponse:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        if not 0 <= request.page_size <= 1000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size: must be 0-1000")
        if request.page_token and not _SOURCE_ID.fullmatch(request.page_token):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: malformed")
        size = request.page_size or 100
        records = await self._store.list(principal.tenant_ref, after=request.page_token, limit=size + 1)
        response = sync_pb.ListSyncSourcesResponse(sync_sources=[to_proto(r) for r in records[:size]])
        if len(records) > size:
            response.next_page_token = records[size - 1].source_id
        return response

    async def UpdateSyncSource(
        self, request: sync_pb.UpdateSyncSourceRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.SyncSource:
        principal = await self._ctx.auth.require(context, Permission.MANAGE_SOURCES)
        record = await self._source(context, principal, request.sync_source.name, "sync_source.name")
        paths = set(request.update_mask.paths) or (_MUTABLE - {"credential"} | (
            {"credential"} if request.sync_source.credential else set()))
        unknown = paths - _MUTABLE
        if unknown:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"update_mask: cannot update {', '.join(sorted(unknown))}")
        try:
            values = columns(request.sync_source, paths, self._egress)
            # (the stored credential passed these rules when it was set)
            _check_vendor_rules({"vendor": record.vendor, "clients": record.clients,
                                 "discover_clients": record.discover_clients} | values)
        except InvalidArgument as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        await self._sealed(context, record.source_id, values)
        await self._store.update(record.source_id, values, reset_state=sync_pb.SYNC_SOURCE_STATE_ACTIVE)
        return to_proto(await self._stored(record.source_id))

    async def DeleteSyncSource(
        self, request: sync_pb.DeleteSyncSourceRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        principal = await self._ctx.auth.require(context, Permission.MANAGE_SOURCES)
        record = await self._source(context, principal, request.name)
        await self._store.delete(record.source_id)
        return empty_pb2.Empty()

    async def RunSyncSource(
        self, request: sync_pb.RunSyncSourceRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.RunSyncSourceResponse:
        principal = await self._ctx.auth.require(context, Permission.MANAGE_SOURCES)
        record = await self._source(context, principal, request.name)
        if record.state == sync_pb.SYNC_SOURCE_STATE_ACTIVE and record.enabled:
            await self._worker.run_now(record.source_id, request.wait)
        return sync_pb.RunSyncSourceResponse(status=await self._status(record.source_id))

    async def GetSyncSourceStatus(
        self, request: sync_pb.GetSyncSourceStatusRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb.SyncSourceStatus:
        principal = await self._ctx.auth.require(context, Permission.READ_EVENTS)
        record = await self._source(context, principal, request.name)
        return await self._status(record.source_id)

    async def _status(self, source_id: str) -> sync_pb.SyncSourceStatus:
        record = await self._stored(source_id)
        checkpoints = await self._store.checkpoints(source_id)
        state = record.state if record.enabled else sync_pb.SYNC_SOURCE_STATE_PAUSED
        status = sync_pb.SyncSourceStatus(name=f"{_PREFIX}{source_id}/status", state=state,
                                          last_error=record.last_error)
        now = dt.datetime.now(dt.UTC)
        fetcher = fetcher_of(record.vendor)
        discovering = fetcher.DISCOVERS and record.discovers
        found = await self._store.discovered(source_id) if discovering else {}
        # a client listed under several names (its id and its MAC), or listed
        # and discovered, is followed once, under its first name: each name
        # shows that one client's state
        followed = follow_source(record, await self._store.identities(source_id), found)
        first = {name: client.name for client in followed for name in client.names}
        listed = set(record.clients)
        shown = [*record.clients, *(c.name for c in followed if not listed.intersection(c.names))][:MAX_STATUS_CLIENTS]
        for client in shown:
            cp = checkpoints.get(first.get(client, client))
            entry = status.clients.add(client=client)
            if cp is None:
                continue
            entry.fetched_count, entry.ingested_count, entry.duplicate_count = cp.fetched, cp.ingested, cp.duplicate
            entry.rejected_count, entry.malformed_count, entry.last_error = cp.rejected, cp.malformed, cp.last_error
            if cp.checkpoint_at:
                entry.checkpoint_time.FromDatetime(cp.checkpoint_at)
                entry.lag.FromTimedelta(max(now - cp.checkpoint_at, dt.timedelta(0)))
            if cp.last_success_at:
                entry.last_success_time.FromDatetime(cp.last_success_at)
        self._sweep_status(status, record, await self._store.sweep(source_id), discovering,
                           sweep_candidates(record, followed, found, checkpoints), now)
        return status

    def _sweep_status(self, status: sync_pb.SyncSourceStatus, record: SourceRecord, sweep: Sweep, discovering: bool,
                      candidates: list[schedule.Candidate], now: dt.datetime) -> None:
        """How long the source's sweeps take: the last one's figures, and the
        next one's estimate (its due clients at the last sweep's requests per
        client, plus the clients listing if due then, over the budget)."""
        budget = record.rate_limit_per_s or fetcher_of(record.vendor).default_rate(self._ctx.settings)
        status.clients_known = len(candidates)
        status.budget_per_second = budget
        status.clients_polled_last_sweep = sweep.clients
        status.requests_last_sweep = sweep.requests
        if sweep.ended_at is not None and sweep.seconds is not None:
            status.last_sweep_time.FromDatetime(sweep.ended_at)
            status.last_sweep_duration.FromTimedelta(dt.timedelta(seconds=sweep.seconds))
        if sweep.discovered_at is not None:
            status.last_discovery_time.FromDatetime(sweep.discovered_at)
        when = max(now, sweep.next_poll_at or now)
        due = schedule.due_count(candidates, now, when)
        interval = dt.timedelta(seconds=self._ctx.settings.sync_discovery_interval_seconds)
        listing = discovering and (sweep.discovered_at is None or when - sweep.discovered_at >= interval)
        pages = schedule.listing_pages(len(candidates)) if listing else 0
        per_client = schedule.requests_per_client(sweep.requests, sweep.clients)
        status.clients_due_next_sweep = due
        status.next_sweep_estimate.FromTimedelta(dt.timedelta(
            seconds=schedule.estimate_seconds(due, per_client, budget, discovery_pages=pages)))


class SyncServiceKeyMissing(RuntimeError):
    """vendor-sync cannot ingest without its service key."""


def check_startable(settings: Settings) -> Sealer:
    """The sealer of vendor-sync; raises ``SyncServiceKeyMissing`` without a
    service key (a vendor-sync that cannot ingest must not look healthy) and
    ``SealingKeyError`` for malformed sealing keys."""
    if settings.sync_service_key is None or not settings.sync_service_key.get_secret_value().strip():
        raise SyncServiceKeyMissing(
            "vendor-sync needs its service key: set CONNLOG_SYNC_SERVICE_KEY to a key of role sync_service "
            "(connlog keys create --role sync_service)")
    return Sealer.from_settings(settings)


async def register(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """Add the vendor-sync service and start its worker. Refuses to start
    without the service key it ingests with (``SyncServiceKeyMissing``); a
    malformed sealing key stops it too (``SealingKeyError``). Credentials
    still stored in clear from before sealing are sealed first."""
    sealer = check_startable(ctx.settings)
    store = SyncStore(ctx.pool)
    log = get_logger("vendor-sync")
    if not sealer.can_seal:
        log.warning("no sealing key configured: sources cannot be created and stored credentials cannot be opened",
                    hint="set CONNLOG_SECRET_KEYS or CONNLOG_SECRET_KEYS_FILE")
    try:
        report = await credentials.reseal_all(store, sealer, rotate=False)
    except NoSealingKey:
        log.error("credentials stored in clear from before sealing are left so until a sealing key is configured")
    else:
        if report.sealed_plaintext:
            log.info("credentials stored in clear sealed", count=report.sealed_plaintext)
    # each organisation's request budget is shared by every vendor-sync replica
    worker = SyncWorker(ctx.settings, store, ctx.metrics, sealer, pacer=SharedPacer(SharedBuckets(ctx.pool)))
    ctx.background.append(asyncio.create_task(worker.run_forever()))
    sync_grpc.add_VendorSyncServiceServicer_to_server(VendorSyncServicer(ctx, worker, sealer), server)
    return [sync_pb.DESCRIPTOR.services_by_name["VendorSyncService"].full_name]
