"""Prometheus metrics of one service, in a registry of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from structlog.typing import FilteringBoundLogger

# The behaviour of a unary_unary or stream_unary RPC under grpc.aio: a
# coroutine function of the request (or its async iterator) and the context.
# (grpc-stubs type RpcMethodHandler's behaviours as the sync API's, hence the
# Callable[..., Any] of what is wrapped.)
_Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

# Methods whose timed handler is remembered (a server has a few dozen; calls
# to unknown methods never get a handler).
_HANDLERS_MAX = 1024


class _PoolCollector:
    """Reports the database pool's size and use at scrape time."""

    def __init__(self, pool: Callable[[], asyncpg.Pool | None]) -> None:
        self._pool = pool

    def collect(self) -> list[GaugeMetricFamily]:
        pool = self._pool()
        size = GaugeMetricFamily("connlog_db_pool_connections", "Open database connections")
        idle = GaugeMetricFamily("connlog_db_pool_idle_connections", "Idle database connections")
        in_use = GaugeMetricFamily("connlog_db_pool_in_use_connections", "Database connections in use")
        maximum = GaugeMetricFamily("connlog_db_pool_max_connections", "Pool size limit")
        if pool is not None:
            size.add_metric([], pool.get_size())
            idle.add_metric([], pool.get_idle_size())
            in_use.add_metric([], pool.get_size() - pool.get_idle_size())
            maximum.add_metric([], pool.get_max_size())
        return [size, idle, in_use, maximum]


class ServiceMetrics:
    """RPC, ingest and pool metrics of one service."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self._pool: asyncpg.Pool | None = None
        self.rpcs = Counter(
            "connlog_rpc_requests",
            "RPCs handled, by method and status code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "connlog_rpc_latency_seconds",
            "RPC latency, by method",
            ["service", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.events = Counter(
            "connlog_events",
            "Events ingested, by result (accepted, duplicate, rejected)",
            ["result"],
            registry=self.registry,
        )
        self.copy_refusals = Counter(
            "connlog_ingest_copy_refusals",
            "Stream batches whose direct COPY was refused because some of their events were stored "
            "already (they were then inserted skipping those)",
            registry=self.registry,
        )
        self.polls = Counter(
            "connlog_sync_polls",
            "Vendor polls of a source's client, by vendor and outcome",
            ["vendor", "outcome"],
            registry=self.registry,
        )
        self.sync_events = Counter(
            "connlog_sync_events",
            "Vendor records by vendor and result (fetched, ingested, duplicate, rejected, malformed)",
            ["vendor", "result"],
            registry=self.registry,
        )
        self.service = service
        # (method, code) -> its request counter and latency histogram: one
        # entry per RPC method and status code, a bounded set
        self._children: dict[tuple[str, grpc.StatusCode], tuple[Any, Any]] = {}
        self.registry.register(_PoolCollector(lambda: self._pool))
        self._http: Any = None

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def serve(self, host: str, port: int) -> int:
        """Expose ``/metrics`` over HTTP; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return server.server_port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        # the labelled children, looked up once (``labels`` takes a lock and
        # builds a key on every call)
        children = self._children.get((method, code))
        if children is None:
            children = (self.rpcs.labels(self.service, method, code.name), self.latency.labels(self.service, method))
            self._children[(method, code)] = children
        children[0].inc()
        children[1].observe(seconds)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC by method and status code, logs failed ones,
    and logs any unexpected exception with its traceback."""

    def __init__(self, metrics: ServiceMetrics, log: FilteringBoundLogger) -> None:
        self._metrics = metrics
        self._log = log
        # the timed handler of each method, made once: by the handler it
        # wraps (the next interceptor's, itself made once per method)
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        cached = self._handlers.get(handler_call_details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        timed = self._timed(handler_call_details.method, handler)
        if len(self._handlers) < _HANDLERS_MAX:
            self._handlers[handler_call_details.method] = (handler, timed)
        return timed

    def _timed(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        method = full_method.rsplit("/", 1)[-1]
        metrics, log = self._metrics, self._log

        def wrap(behavior: Callable[..., Any]) -> _Behavior:
            async def timed(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    return await behavior(request_or_iterator, context)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception:
                    code = grpc.StatusCode.UNKNOWN
                    if not isinstance(context.code(), grpc.StatusCode):  # not an abort
                        log.exception("unhandled error", method=method)
                    raise
                finally:
                    set_code = context.code()
                    if isinstance(set_code, grpc.StatusCode):
                        code = set_code
                    elapsed = time.perf_counter() - start
                    metrics.observe(method, code, elapsed)
                    if code is not grpc.StatusCode.OK:
                        log.info("rpc failed", method=method, code=code.name, ms=round(elapsed * 1000, 2))

            return timed

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap(handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # streaming responses (health Watch, reflection) untimed
