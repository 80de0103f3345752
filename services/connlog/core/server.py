"""Bootstrap shared by every gRPC service: database pool, health checking,
reflection, metrics, structured logs and graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import gc
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from structlog.typing import FilteringBoundLogger

from connlog.core.auth import KeyAuthenticator
from connlog.core.budgets import WriteBudgets
from connlog.core.database import create_pool, resolve_database_url
from connlog.core.edge import EdgeInterceptor
from connlog.core.logging import get_logger
from connlog.core.metrics import ObservabilityInterceptor, ServiceMetrics
from connlog.core.replica import ReadReplica, ReplicaCollector
from connlog.core.settings import Settings
from connlog.store.accounts import AccountStore, KeyChangeListener
from connlog.store.budgets import SharedBuckets
from connlog.store.migrate import migrate


@dataclass
class ServiceContext:
    """What a service's servicers get: settings, pool, auth and metrics."""

    settings: Settings
    pool: asyncpg.Pool
    auth: KeyAuthenticator
    metrics: ServiceMetrics
    background: list[asyncio.Task] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)  # run after the server stops
    # run when stopping begins, before the server waits for the calls in
    # flight (ends streams that would otherwise run through the grace period)
    on_stopping: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # the query service's read replica (``database_read_url``), if it has one
    replica: ReadReplica | None = None

    @property
    def read_pool(self) -> asyncpg.Pool:
        """Where reads that may be stale go: the replica's pool, else the primary's."""
        return self.replica.pool if self.replica is not None else self.pool

    @property
    def read_gate(self) -> Callable[[], None] | None:
        """Run before each read on ``read_pool``: refuses (a transient error)
        while the replica is further behind than its bound."""
        return self.replica.ensure_current if self.replica is not None else None


LIVENESS = "liveness"


class DatabaseWatch:
    """Keeps a service's health true to whether it reaches the database
    (and its read replica, if it has one, is fit: connlog.core.replica):
    checks every ``every`` seconds, and at once when an RPC has just failed
    for want of it (``poke``)."""

    def __init__(self, pool: asyncpg.Pool, every: float, log: FilteringBoundLogger,
                 replica: ReadReplica | None = None) -> None:
        self._pool = pool
        self._replica = replica
        self._every = every
        self._log = log
        self._poked = asyncio.Event()
        self.reachable = True

    def poke(self) -> None:
        self._poked.set()

    async def check(self) -> bool:
        try:
            async with self._pool.acquire(timeout=max(self._every, 2.0)) as conn:
                await conn.fetchval("SELECT 1", timeout=max(self._every, 2.0))
        except Exception:  # any failure to reach it counts as unreachable
            return False
        return self._replica is None or await self._replica.check(asyncio.get_running_loop().time())

    async def run(self, health_servicer: health.aio.HealthServicer, services: list[str]) -> None:
        while True:
            reachable = await self.check()
            if reachable != self.reachable:
                self.reachable = reachable
                # connections opened before the change may be broken mid-protocol
                await self._pool.expire_connections()
                if self._replica is not None:
                    await self._replica.pool.expire_connections()
                status = (health_pb2.HealthCheckResponse.SERVING if reachable
                          else health_pb2.HealthCheckResponse.NOT_SERVING)
                for service in services:
                    await health_servicer.set(service, status)
                replica = {} if self._replica is None else {"replica": self._replica.describe()}
                if reachable:
                    self._log.info("database reachable again: serving", **replica)
                else:
                    self._log.warning("database unreachable: not serving", **replica)
            self._poked.clear()
            await asyncio.sleep(self._every / 5)  # at most five checks per period, however many RPCs poke
            try:
                await asyncio.wait_for(self._poked.wait(), self._every)
            except TimeoutError:
                pass


# Registers a service's servicers on the server; returns the full names of the
# services it added (for health and reflection).
Registrar = Callable[[grpc.aio.Server, ServiceContext], Awaitable[list[str]]]


class RunningService:
    """A started gRPC service; ``stop`` shuts it down gracefully."""

    def __init__(
        self,
        name: str,
        server: grpc.aio.Server,
        ctx: ServiceContext,
        health_servicer: health.aio.HealthServicer,
        port: int,
        metrics_port: int | None,
        own_pool: bool,
    ) -> None:
        self.name = name
        self.server = server
        self.ctx = ctx
        self.health = health_servicer
        self.port = port
        self.metrics_port = metrics_port
        self._own_pool = own_pool
        self._log = get_logger(name)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking RPCs, finish the ones in flight, then release everything."""
        grace = self.ctx.settings.shutdown_grace_seconds if grace is None else grace
        self._log.info("stopping", grace_seconds=grace)
        await self.health.enter_graceful_shutdown()
        for stopping in self.ctx.on_stopping:
            await stopping()
        await self.server.stop(grace)
        for task in self.ctx.background:
            task.cancel()
        await asyncio.gather(*self.ctx.background, return_exceptions=True)
        for release in self.ctx.on_stop:
            release()
        self.ctx.metrics.stop()
        if self._own_pool:
            await self.ctx.pool.close()
        if self.ctx.replica is not None:
            await self.ctx.replica.close()
        self._log.info("stopped")


# Young-generation collection thresholds (net container allocations between
# collections; Python's default is 700). A read builds pages of 1,000 events:
# tens of thousands of short-lived objects, which a low threshold would scan
# again and again mid-page. Ingest answers many small calls instead, and
# every gRPC call leaves a small reference cycle behind (grpc.aio's server
# resolves the method through a closure that holds the call's details and
# invocation metadata: ~13 objects a call) that only the collector frees.
# With 50,000 the ingest process paused 20-96 ms every ~4,000 calls to free
# ~48,000 of them, the single-event p99; with 5,000 its pauses take 2-15 ms
# and its collector less time in all (docs/performance.md).
READ_YOUNG_THRESHOLD = 50_000
INGEST_YOUNG_THRESHOLD = 5_000


def young_threshold(service: str) -> int:
    """The young-generation threshold of ``connlog serve <service>``."""
    return INGEST_YOUNG_THRESHOLD if service == "ingest" else READ_YOUNG_THRESHOLD


def tune_garbage_collector(young: int = READ_YOUNG_THRESHOLD) -> None:
    """For a long-running service process: move everything allocated while
    starting out of the collector's sight, and collect young objects every
    ``young`` net allocations (``young_threshold``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 20)


# Processes sharing a port: the kernel spreads *connections* over them, and an
# HTTP/2 connection (a gRPC channel, Envoy's upstream pool) carries every call
# of its client. Each connection is closed gracefully (GOAWAY; calls in flight,
# streams included, run to their end) after about this long, so that a few
# long-lived clients are spread again over the processes, including one
# started later.
REUSE_PORT_CONNECTION_AGE_MS = 30_000


def bind_options(reuse_port: bool) -> list[tuple[str, int]]:
    """The server's bind options: SO_REUSEPORT only when asked (a second
    process on a port must otherwise fail to start: a port in use is a
    configuration error); with it, a maximum connection age."""
    if not reuse_port:
        return [("grpc.so_reuseport", 0)]
    return [("grpc.so_reuseport", 1), ("grpc.max_connection_age_ms", REUSE_PORT_CONNECTION_AGE_MS)]


async def start_service(
    name: str,
    settings: Settings,
    register: Registrar,
    *,
    port: int,
    metrics_port: int | None = None,
    pool: asyncpg.Pool | None = None,
    reuse_port: bool = False,
    read_url: str | None = None,
) -> RunningService:
    """Start one service on ``settings.host:port``; ``port`` 0 picks a free one.
    ``reuse_port``: bind with SO_REUSEPORT, so that several processes of the
    service listen on one port (``ingest_processes``); see ``bind_options``.
    ``read_url``: a read replica (``ctx.replica``, connlog.core.replica) for
    the reads that may be stale; its fitness is part of the service's health."""
    log = get_logger(name)
    own_pool = pool is None
    if pool is None:
        pool = await create_pool(settings, resolve_database_url(settings))
    if settings.migrate_on_start:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("migrations applied", versions=[m.version for m in applied])
    metrics = ServiceMetrics(name)
    metrics.watch_pool(pool)
    # write budgets (and Meraki's limit) are buckets in the database, shared by every replica
    buckets = SharedBuckets(pool)
    auth = KeyAuthenticator(AccountStore(pool), settings.auth_cache_seconds, WriteBudgets(settings, buckets))
    ctx = ServiceContext(settings, pool, auth, metrics)
    if read_url is not None:
        ctx.replica = await ReadReplica.open(settings, read_url)
        metrics.registry.register(ReplicaCollector(ctx.replica))
    # every process forgets a revoked key at once (and trusts its key cache
    # only while it listens): a connection of its own, outside the pool
    ctx.background.append(asyncio.create_task(buckets.sweep_forever(settings.rate_bucket_sweep_seconds, log)))
    ctx.background.append(asyncio.create_task(
        auth.watch_key_changes(functools.partial(KeyChangeListener.open, resolve_database_url(settings)))))
    database_watch = DatabaseWatch(pool, settings.database_check_seconds, log, ctx.replica)
    server = grpc.aio.server(
        interceptors=[
            ObservabilityInterceptor(metrics, log),
            EdgeInterceptor(log, settings.retry_after_seconds, on_transient=database_watch.poke),
        ],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # REST calls arrive with every HTTP header (up to Envoy's 60 KiB)
            # plus the path more than once as metadata
            ("grpc.max_metadata_size", 256 * 1024),
            ("grpc.absolute_max_metadata_size", 256 * 1024),
            *bind_options(reuse_port),
        ],
    )
    services = await register(server, ctx)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{settings.host}:{port}")
    if bound == 0:
        raise RuntimeError(f"{name}: cannot listen on {settings.host}:{port}")
    await server.start()
    for service in ["", *services]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    # "liveness": SERVING while the process runs (a Kubernetes liveness probe
    # must not restart a pod because the database is away); "" and each
    # service: SERVING only while the database is reachable.
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    ctx.background.append(asyncio.create_task(database_watch.run(health_servicer, ["", *services])))
    bound_metrics = metrics.serve(settings.host, metrics_port) if metrics_port is not None else None
    log.info("listening", address=f"{settings.host}:{bound}", metrics_port=bound_metrics, services=services,
             event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0])
    return RunningService(name, server, ctx, health_servicer, bound, bound_metrics, own_pool)


async def serve_until_signalled(service: RunningService) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()
