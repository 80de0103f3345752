"""Every vendor REST shape connlog serves, one line each, and the services
beside them.

What differs per shape is read from here, nowhere else:

* which process serves it: ``register`` (called by ``query/servicer.py`` and
  ``ingest/servicer.py`` for their host);
* which vendors the sync worker pulls, and how (``fetcher``: vendorsync);
* the CLI's ``--vendor`` choices;
* the gateway (``connlog.gateway.config``): the transcoder's services, the
  route of each gRPC service to the cluster of the process hosting it, the
  error format of each shape's paths (Envoy's own replies and the Lua
  filter's) and the largest request body each shape's paths take
  (``max_request_bytes``: one byte more is a 413 in the shape's format), and
  the status of its answers that name none (``success_status``); the
  edge interceptor answers a shape's errors in the same format
  (``error_body``).

A new shape: its folder, its proto (and the generated code and descriptor),
one line in ``SHAPES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import (
    ingest_service_pb2,
    insights_service_pb2,
    meraki_service_pb2,
    meraki_service_pb2_grpc,
    mojo_service_pb2,
    mojo_service_pb2_grpc,
    query_service_pb2,
    vendor_sync_service_pb2,
    zequenze_service_pb2,
    zequenze_service_pb2_grpc,
)
from connlog.core.server import ServiceContext
from connlog.shapes.meraki import servicer as meraki
from connlog.shapes.meraki.sync import MerakiFetcher
from connlog.shapes.mojo import servicer as mojo
from connlog.shapes.mojo.sync import MojoFetcher
from connlog.shapes.zequenze import servicer as zequenze
from connlog.vendorsync.fetcher import Fetcher

if TYPE_CHECKING:
    from connlog.ingest.pipeline import IngestPipeline
    from connlog.query.reader import EventReader

# The processes (and the gateway's clusters of them) that host services.
QUERY, INGEST, VENDOR_SYNC = "query", "ingest", "vendor_sync"


@dataclass(frozen=True)
class Shape:
    """One vendor REST shape."""

    name: str  # its folder (connlog.shapes.<name>), and the CLI's --vendor
    descriptor: ServiceDescriptor  # its gRPC service (proto/connlog/api/v1/<name>_service.proto)
    add_servicer: Callable[[object, grpc.aio.Server], None]  # the generated add_*Servicer_to_server
    # (ctx, its host's backend: the EventReader of QUERY, the IngestPipeline of
    # INGEST) -> servicer; Any: each shape's servicer takes its own host's one
    servicer: Callable[[ServiceContext, Any], object]
    host: str  # QUERY (reads through connlog.query.reader) or INGEST (writes through the ingest pipeline)
    path_prefixes: tuple[str, ...]  # its REST paths: their errors are in its format
    error_body: Callable[[int, str], dict[str, object]]  # (HTTP status, message) -> its error body
    fetcher: type[Fetcher] | None  # how vendor sync pulls the vendor (None: it is not pulled)
    vendor: pb.Vendor  # the vendor of its records
    # the largest request body the gateway passes on for its paths (more: 413)
    max_request_bytes: int
    timeout_seconds: int = 60  # the gateway's route timeout
    # the HTTP status the gateway gives an answer on its paths that names none
    # (the transcoder answers a gRPC OK with 200); see connlog.shapes.rest.respond
    success_status: int = 200

    @property
    def service(self) -> str:
        """The full name of its gRPC service."""
        return self.descriptor.full_name


# Request body limits. Meraki's paths are GETs: no body at all is needed.
MERAKI_MAX_REQUEST_BYTES = 1024
# Mojo: GETs, and a login whose body is one API key.
MOJO_MAX_REQUEST_BYTES = 4096
# Zequenze: one connection log per POST, about fifteen fields whose longest
# text is 256 characters: under 2 KiB, under 8 KiB even with every
# character \u-escaped; 16 KiB leaves room for whitespace and unknown keys.
ZEQUENZE_MAX_REQUEST_BYTES = 16 * 1024

SHAPES: tuple[Shape, ...] = (
    Shape("meraki", meraki_service_pb2.DESCRIPTOR.services_by_name["MerakiService"],
          meraki_service_pb2_grpc.add_MerakiServiceServicer_to_server, meraki.MerakiServicer, QUERY,
          ("/api/v1/",), meraki.error_body, MerakiFetcher, pb.VENDOR_MERAKI,
          max_request_bytes=MERAKI_MAX_REQUEST_BYTES),
    Shape("mojo", mojo_service_pb2.DESCRIPTOR.services_by_name["MojoService"],
          mojo_service_pb2_grpc.add_MojoServiceServicer_to_server, mojo.MojoServicer, QUERY,
          ("/V5/", "/new/webservice/"), mojo.error_body, MojoFetcher, pb.VENDOR_MOJO,
          max_request_bytes=MOJO_MAX_REQUEST_BYTES),
    Shape("zequenze", zequenze_service_pb2.DESCRIPTOR.services_by_name["ZequenzeService"],
          zequenze_service_pb2_grpc.add_ZequenzeServiceServicer_to_server, zequenze.ZequenzeServicer, INGEST,
          ("/api/v1/device_app_connection_log",), zequenze.error_body, None, pb.VENDOR_ZEQUENZE,
          max_request_bytes=ZEQUENZE_MAX_REQUEST_BYTES, success_status=zequenze.SUCCESS_STATUS),
)


@dataclass(frozen=True)
class Service:
    """A gRPC service (or, ending in ".", a package of them) that is no
    vendor shape: where the gateway routes it, and whether the transcoder
    maps its ``google.api.http`` bindings."""

    name: str
    host: str
    timeout_seconds: int
    transcoded: bool = True
    # routed by the public gateway only when this setting is on (None: always)
    exposed_by: str | None = None

    @property
    def route_prefix(self) -> str:
        return f"/{self.name}" if self.name.endswith(".") else f"/{self.name}/"


def _full_name(file: FileDescriptor, service: str) -> str:
    return file.services_by_name[service].full_name


SERVICES: tuple[Service, ...] = (
    Service(_full_name(ingest_service_pb2.DESCRIPTOR, "IngestService"), INGEST, 300),  # streams of bulk loads
    Service(_full_name(query_service_pb2.DESCRIPTOR, "QueryService"), QUERY, 60),
    Service(_full_name(insights_service_pb2.DESCRIPTOR, "InsightsService"), QUERY, 60),
    # RunSyncSource waits for the whole sync
    Service(_full_name(vendor_sync_service_pb2.DESCRIPTOR, "VendorSyncService"), VENDOR_SYNC, 300),
    # gRPC reflection and health through the gateway (the query service's),
    # only when configured: otherwise only on each service's own port
    Service("grpc.reflection.", QUERY, 60, transcoded=False, exposed_by="gateway_expose_reflection"),
    Service("grpc.health.v1.Health", QUERY, 60, transcoded=False, exposed_by="gateway_expose_health"),
)

SHAPES_BY_SERVICE = {shape.service: shape for shape in SHAPES}
SHAPES_BY_NAME = {shape.name: shape for shape in SHAPES}
# The shapes vendor sync pulls, by vendor.
SYNCED: dict[int, Shape] = {shape.vendor: shape for shape in SHAPES if shape.fetcher is not None}


def fetcher_of(vendor: int) -> type[Fetcher]:
    """How vendor sync pulls ``vendor``; KeyError if it does not."""
    found = SYNCED[vendor].fetcher
    assert found is not None
    return found


@dataclass(frozen=True)
class Route:
    """A gRPC path prefix and the gateway cluster (host) it goes to."""

    prefix: str
    host: str
    timeout_seconds: int


def routes(exposed: Callable[[str], bool] = lambda setting: False) -> list[Route]:
    """Every gRPC service the gateway routes, to the process that hosts it;
    a service ``exposed_by`` a setting only when ``exposed(setting)``."""
    return ([Route(s.route_prefix, s.host, s.timeout_seconds) for s in SERVICES
             if s.exposed_by is None or exposed(s.exposed_by)]
            + [Route(f"/{shape.service}/", shape.host, shape.timeout_seconds) for shape in SHAPES])


def hosts() -> dict[str, str]:
    """The host of every gRPC service of the API, by full name."""
    return ({s.name: s.host for s in SERVICES if not s.name.endswith(".") and s.exposed_by is None}
            | {shape.service: shape.host for shape in SHAPES})


def transcoded_services() -> list[str]:
    """The services whose ``google.api.http`` bindings the gateway maps."""
    return [s.name for s in SERVICES if s.transcoded] + [shape.service for shape in SHAPES]


def register(
    server: grpc.aio.Server, ctx: ServiceContext, host: str, backend: EventReader | IngestPipeline
) -> list[str]:
    """Add every shape ``host`` serves to ``server``, each servicer given
    ``backend`` (the query service's EventReader, the ingest service's
    pipeline); returns their full names."""
    hosted = [shape for shape in SHAPES if shape.host == host]
    for shape in hosted:
        shape.add_servicer(shape.servicer(ctx, backend), server)
    return [shape.service for shape in hosted]
