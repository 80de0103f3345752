"""Mojo's WiFi API V5 shape: the API-key login and client connection logs."""

from __future__ import annotations

import datetime as dt
import orjson

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import mojo_service_pb2_grpc
from connlog.core.auth import Permission, Principal
from connlog.core.identifiers import normalise_mac
from connlog.core.rest import RestError, ascii_integer, metadata_dict, respond, rest_call
from connlog.core.server import ServiceContext
from connlog.query.mojo_view import mojo_logs
from connlog.query.reader import EventReader
from connlog.store.events import EventFilter

KNOWN = {"clientmacaddress", "fromtime", "totime", "logtype", "failuretype", "limit"}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_SUCCESS_OUTCOMES = [pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_SUCCESS, pb.OUTCOME_INFORMATIONAL]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
INT32_MAX = 2**31 - 1


def _integer(value: str | None, name: str, default: int, low: int, high: int, meaning: str) -> int:
    """An integer parameter within [low, high]; 400 naming it otherwise."""
    if value is None or value == "":
        return default
    number = ascii_integer(value)
    if number is None or not low <= number <= high:
        raise RestError(400, f"{name} must be {meaning}")
    return number


def _epoch_seconds(value: str | None, name: str) -> dt.datetime | None:
    """An epoch-seconds time parameter; -1 (or absent) is None: "now" for
    totime, "since the beginning" for fromtime."""
    seconds = _integer(value, name, -1, -1, MAX_EPOCH_SECONDS, "epoch seconds or -1")
    return None if seconds == -1 else _EPOCH + dt.timedelta(seconds=seconds)


class MojoServicer(mojo_service_pb2_grpc.MojoServiceServicer):
    """Answers Mojo-shaped requests from the canonical store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._reader = EventReader(ctx.pool)

    async def LoginWithApiKey(self, request, context):
        try:
            credentials = orjson.loads(request.body.data or b"null")
        except orjson.JSONDecodeError:
            raise RestError(400, "request body is not valid JSON") from None
        if not isinstance(credentials, dict):
            raise RestError(400, "request body must be a JSON object")
        if credentials.get("type") != "apikeycredentials":
            raise RestError(400, "type must be 'apikeycredentials'")
        key_id, key_value = credentials.get("keyId"), credentials.get("keyValue")
        if not isinstance(key_id, str) or not key_id or not isinstance(key_value, str) or not key_value:
            raise RestError(400, "keyId and keyValue are required strings")
        minutes = ascii_integer(request.timeout)
        if minutes is None:
            raise RestError(400, "timeout must be an integer number of minutes")
        if not 1 <= minutes <= self._ctx.settings.mojo_session_max_minutes:
            raise RestError(400, f"timeout must be 1-{self._ctx.settings.mojo_session_max_minutes} minutes")
        result = await self._ctx.auth.login(key_id, key_value, request.client_identifier, minutes)
        if result is None:
            raise RestError(401, "invalid API key credentials")
        principal, session = result
        cookie = f"JSESSIONID={session}; Path=/; Max-Age={minutes * 60}; HttpOnly"
        body = {"status": "SUCCESS", "clientIdentifier": request.client_identifier,
                "customerId": principal.tenant_id, "timeout": minutes}
        return await respond(context, 200, body, headers=(("set-cookie", cookie),))

    async def _principal(self, context) -> Principal:
        principal = await self._ctx.auth.authenticate_rest(metadata_dict(context))
        if principal is None:
            raise RestError(401, "authentication required: log in or send a valid API key")
        if not principal.can(Permission.READ_EVENTS):
            raise RestError(403, "this key may not read connection logs")
        return principal

    async def ListClientConnectionLogs(self, request, context):
        principal = await self._principal(context)
        fields = [(d.name, str(v)) for d, v in request.ListFields()]
        call = rest_call(context, fields)
        unknown = sorted(call.names() - KNOWN)
        if unknown:
            raise RestError(400, f"unknown parameter {unknown[0]}")
        for name in KNOWN:
            if len(call.values(name)) > 1:
                raise RestError(400, f"{name} must be given once")
        mac_text = call.value("clientmacaddress")
        if not mac_text:
            raise RestError(400, "clientmacaddress is mandatory")
        mac = normalise_mac(mac_text)
        if mac is None:
            raise RestError(400, f"clientmacaddress {mac_text!r} is not a MAC address")
        start = _epoch_seconds(call.value("fromtime"), "fromtime")
        end = _epoch_seconds(call.value("totime"), "totime")
        logtype = call.value("logtype") or "all"
        if logtype not in ("success", "failure", "all"):
            raise RestError(400, "logtype must be success, failure or all")
        failuretype = call.value("failuretype")
        limit = _integer(call.value("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, f"an integer from 1 to {MAX_LIMIT}")
        # totime -1 is "now": events stamped later are not in the answer
        end = end or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        end = end + dt.timedelta(seconds=1) if end.year < 9999 else end
        if start is not None and start >= end:
            raise RestError(400, "totime must not be before fromtime")
        flt = EventFilter(client_mac=mac, start=start, end=end)
        if logtype == "success":
            flt.outcomes = _SUCCESS_OUTCOMES
        elif logtype == "failure":
            flt.outcomes = [pb.OUTCOME_FAILURE]
        if failuretype not in (None, ""):
            flt.failure_codes = [_integer(failuretype, "failuretype", 0, -INT32_MAX - 1, INT32_MAX, "a failure code (a 32-bit integer)")]
            flt.outcomes = [pb.OUTCOME_FAILURE] if logtype != "success" else [-1]
        page = await self._reader.page(principal.tenant_ref, flt, size=limit, descending=True)
        logs = mojo_logs([read.event for read in page.events])
        return await respond(context, 200, None, raw=logs)
