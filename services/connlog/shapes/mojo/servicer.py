"""Mojo's WiFi API V5 shape: the API-key login and client connection logs."""

from __future__ import annotations

import datetime as dt

import grpc

from connlog.api.v1 import mojo_service_pb2, mojo_service_pb2_grpc
from connlog.core.principal import Permission
from connlog.core.server import ServiceContext
from connlog.query.reader import EventReader
from connlog.shapes.meraki import API_KEY_HEADER
from connlog.shapes.mojo import SESSION_COOKIE, params
from connlog.shapes.mojo.projection import mojo_logs
from connlog.shapes.rest import HttpBody, RestAuth, RestError, respond, rest_call
from connlog.store.events import EventFilter


def error_body(status: int, message: str) -> dict[str, object]:
    """Mojo's error body."""
    return {"error": message, "status": status}


AUTH = RestAuth(
    invalid="authentication required: log in or send a valid API key",
    forbidden="this key may not read connection logs",
    permitted=lambda principal: principal.can(Permission.READ_EVENTS),
    key_headers=(API_KEY_HEADER,),
    session_cookie=SESSION_COOKIE,
)


class MojoServicer(mojo_service_pb2_grpc.MojoServiceServicer):
    """Answers Mojo-shaped requests from the canonical store."""

    def __init__(self, ctx: ServiceContext, reader: EventReader) -> None:
        self._ctx = ctx
        self._reader = reader

    async def LoginWithApiKey(
        self, request: mojo_service_pb2.LoginWithApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        login = params.parse_login(request.body.data, request.timeout, self._ctx.settings.mojo_session_max_minutes)
        result = await self._ctx.auth.login(login.key_id, login.key_value, request.client_identifier, login.minutes)
        if result is None:
            raise RestError(401, "invalid API key credentials")
        principal, session = result
        cookie = f"{SESSION_COOKIE}={session}; Path=/; Max-Age={login.minutes * 60}; HttpOnly"
        body = {"status": "SUCCESS", "clientIdentifier": request.client_identifier,
                "customerId": principal.tenant_id, "timeout": login.minutes}
        return await respond(context, 200, body, headers=(("set-cookie", cookie),))

    async def ListClientConnectionLogs(
        self, request: mojo_service_pb2.ListClientConnectionLogsRequest, context: grpc.aio.ServicerContext
    ) -> HttpBody:
        principal = await AUTH.principal(self._ctx.auth, context)
        call = rest_call(context, request, params.KNOWN)
        query = params.parse(call, dt.datetime.now(dt.UTC))
        flt = EventFilter(client_mac=query.mac, start=query.start, end=query.end, outcomes=query.outcomes,
                          failure_codes=query.failure_codes)
        page = await self._reader.page(principal.tenant_ref, flt, size=query.limit, descending=True)
        return await respond(context, 200, None, raw=mojo_logs(page.events))
