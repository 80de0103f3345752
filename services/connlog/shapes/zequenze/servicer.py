"""Zequenze's gate API shape: ``POST /api/v1/device_app_connection_log/``.

A valid log (``params``) is stored through the ingest pipeline as a
canonical event of the key's device (``records``) and answered 201 with the
stored log (``projection``); a rejection by the canonical validation names
the Zequenze key the caller sent.
"""

from __future__ import annotations

import datetime as dt

import grpc

from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import zequenze_service_pb2, zequenze_service_pb2_grpc
from connlog.core.principal import Role
from connlog.core.server import ServiceContext
from connlog.ingest.pipeline import IngestPipeline
from connlog.shapes.rest import HttpBody, RestAuth, RestError, respond, rest_call
from connlog.shapes.zequenze.params import ZequenzeLog, check_query, field_errors, parse_body, validate
from connlog.shapes.zequenze.projection import stored_log
from connlog.shapes.zequenze.records import KEY_OF_FIELD, to_event


def error_body(status: int, message: str) -> dict[str, object]:
    """Zequenze's (Django REST framework's) error body."""
    return {"detail": message}


SHAPE = "zequenze"  # a device key whose shape this is writes here (and only here)

# A stored log is answered 201; the gateway gives every answer of the shape's
# paths that names no status this one (connlog.shapes.registry).
SUCCESS_STATUS = 201

AUTH = RestAuth(
    missing="Authentication credentials were not provided.",
    invalid="Invalid token.",
    forbidden="Only a device token may register connection logs.",
    permitted=lambda principal: principal.role is Role.DEVICE and principal.shape == SHAPE,
)


def throttled(wait: int) -> RestError:
    """Django REST framework's answer to a throttled request."""
    return RestError(429, f"Request was throttled. Expected available in {wait} seconds.",
                     headers=(("retry-after", str(wait)),))


class ZequenzeServicer(zequenze_service_pb2_grpc.ZequenzeServiceServicer):
    """Stores device app connection logs."""

    def __init__(self, ctx: ServiceContext, pipeline: IngestPipeline) -> None:
        self._ctx = ctx
        self._pipeline = pipeline

    async def CreateDeviceAppConnectionLog(
        self, request: zequenze_service_pb2.CreateDeviceAppConnectionLogRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal = await AUTH.principal(self._ctx.auth, context)
        wait = await self._ctx.auth.over_budget(principal, 1)
        if wait is not None:
            raise throttled(wait)
        call = rest_call(context)
        check_query(call)
        log: ZequenzeLog = parse_body(request.body.data)
        validate(log)
        received_at = dt.datetime.now(dt.UTC)
        event = to_event(log, principal.device_id or "", received_at)
        [result] = (await self._pipeline.ingest_batch(principal, [event])).results
        if result.status == ingest_pb.INGEST_STATUS_REJECTED:
            key = KEY_OF_FIELD.get(result.field, "non_field_errors")
            raise field_errors(422, {key: [result.reason]})
        return await respond(context, SUCCESS_STATUS, stored_log(log, result.event_id, received_at),
                             implied=SUCCESS_STATUS if call.via_gateway else None)
