"""Mojo's WiFi API V5 shape: the API-key login and client connection logs."""

from __future__ import annotations

import datetime as dt
import json

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import mojo_service_pb2_grpc
from connlog.core.auth import Permission, Principal
from connlog.core.identifiers import normalise_mac
from connlog.core.rest import metadata_dict, respond, rest_call
from connlog.core.server import ServiceContext
from connlog.query.mojo_view import mojo_logs
from connlog.store.events import EventFilter, EventStore

KNOWN = {"clientmacaddress", "fromtime", "totime", "logtype", "failuretype", "limit"}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_SUCCESS_OUTCOMES = [pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_SUCCESS, pb.OUTCOME_INFORMATIONAL]


class MojoError(Exception):
    """An answer in Mojo's error shape: ``{"error": "...", "status": N}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _integer(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise MojoError(400, f"{name} must be an integer") from None


class MojoServicer(mojo_service_pb2_grpc.MojoServiceServicer):
    """Answers Mojo-shaped requests from the canonical store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._events = EventStore(ctx.pool)

    async def _answer(self, context, handler):
        try:
            status, body, headers = await handler()
        except MojoError as err:
            return await respond(context, err.status, {"error": str(err), "status": err.status})
        if isinstance(body, bytes):
            return await respond(context, status, None, raw=body, headers=headers)
        return await respond(context, status, body, headers=headers)

    async def LoginWithApiKey(self, request, context):
        async def handle():
            try:
                credentials = json.loads(request.body.data or b"null")
            except ValueError:
                raise MojoError(400, "request body is not valid JSON") from None
            if not isinstance(credentials, dict):
                raise MojoError(400, "request body must be a JSON object")
            if credentials.get("type") != "apikeycredentials":
                raise MojoError(400, "type must be 'apikeycredentials'")
            key_id, key_value = credentials.get("keyId"), credentials.get("keyValue")
            if not isinstance(key_id, str) or not key_id or not isinstance(key_value, str) or not key_value:
                raise MojoError(400, "keyId and keyValue are required strings")
            try:
                minutes = int(request.timeout)
            except ValueError:
                raise MojoError(400, "timeout must be an integer number of minutes") from None
            if not 1 <= minutes <= self._ctx.settings.mojo_session_max_minutes:
                raise MojoError(400, f"timeout must be 1-{self._ctx.settings.mojo_session_max_minutes} minutes")
            result = await self._ctx.auth.login(key_id, key_value, request.client_identifier, minutes)
            if result is None:
                raise MojoError(401, "invalid API key credentials")
            principal, session = result
            cookie = f"JSESSIONID={session}; Path=/; Max-Age={minutes * 60}; HttpOnly"
            body = {"status": "SUCCESS", "clientIdentifier": request.client_identifier,
                    "customerId": principal.tenant_id, "timeout": minutes}
            return 200, body, (("set-cookie", cookie),)

        return await self._answer(context, handle)

    async def _principal(self, context) -> Principal:
        principal = await self._ctx.auth.authenticate_rest(metadata_dict(context))
        if principal is None:
            raise MojoError(401, "authentication required: log in or send a valid API key")
        if not principal.can(Permission.READ_EVENTS):
            raise MojoError(403, "this key may not read connection logs")
        return principal

    async def ListClientConnectionLogs(self, request, context):
        async def handle():
            principal = await self._principal(context)
            fields = [(d.name, str(v)) for d, v in request.ListFields()]
            call = rest_call(context, fields)
            unknown = sorted(call.names() - KNOWN)
            if unknown:
                raise MojoError(400, f"unknown parameter {unknown[0]}")
            for name in KNOWN:
                if len(call.values(name)) > 1:
                    raise MojoError(400, f"{name} must be given once")
            mac_text = call.value("clientmacaddress")
            if not mac_text:
                raise MojoError(400, "clientmacaddress is mandatory")
            mac = normalise_mac(mac_text)
            if mac is None:
                raise MojoError(400, f"clientmacaddress {mac_text!r} is not a MAC address")
            fromtime = _integer(call.value("fromtime"), "fromtime", -1)
            totime = _integer(call.value("totime"), "totime", -1)
            logtype = call.value("logtype") or "all"
            if logtype not in ("success", "failure", "all"):
                raise MojoError(400, "logtype must be success, failure or all")
            failuretype = call.value("failuretype")
            limit = _integer(call.value("limit"), "limit", DEFAULT_LIMIT)
            if not 1 <= limit <= MAX_LIMIT:
                raise MojoError(400, f"limit must be 1-{MAX_LIMIT}")
            epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
            flt = EventFilter(client_mac=mac)
            if fromtime != -1:
                if fromtime < 0:
                    raise MojoError(400, "fromtime must be epoch seconds or -1")
                flt.start = epoch + dt.timedelta(seconds=fromtime)
            if totime != -1:
                if totime < 0:
                    raise MojoError(400, "totime must be epoch seconds or -1")
                flt.end = epoch + dt.timedelta(seconds=totime + 1)
            if flt.start and flt.end and flt.start >= flt.end:
                raise MojoError(400, "totime must not be before fromtime")
            if logtype == "success":
                flt.outcomes = _SUCCESS_OUTCOMES
            elif logtype == "failure":
                flt.outcomes = [pb.OUTCOME_FAILURE]
            if failuretype not in (None, ""):
                flt.failure_codes = [_integer(failuretype, "failuretype", 0)]
                flt.outcomes = [pb.OUTCOME_FAILURE] if logtype != "success" else [-1]
            rows = await self._events.list(principal.tenant_ref, flt, after=None, descending=True, limit=limit)
            parse = pb.ConnectionEvent.FromString
            logs = mojo_logs([(parse(r.payload), r.client_mac, r.bssid, r.ap_name, r.ssid) for r in rows])
            return 200, logs, ()

        return await self._answer(context, handle)
