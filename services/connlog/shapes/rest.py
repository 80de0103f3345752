"""The REST edge: what every RPC that answers in a vendor's REST shape shares.

The gateway's Lua filter hands the backend the raw request path
(``x-connlog-path``), the gateway's own origin (``x-connlog-origin``, from its
settings, never from the request) and the address of its immediate peer
(``x-connlog-peer``), from which ``absolute_origin`` decides where absolute
URLs point (``connlog.core.origin``); it removes any client-sent copy of
every one of these headers first. The backend answers with an HttpBody and sets the HTTP status through the
``x-connlog-http-status`` response metadata, or, through the gateway, leaves
it out when it is the shape's ``success_status`` (which the Lua filter then
sets). These header names are written once, here: the gateway config renders
them into the Lua filter.

The raw path is the one source of a REST caller's query parameters: the
gateway hands the transcoder a shape's path without its query, so the typed
request fields are only ever set by direct gRPC callers, and ``rest_call``
reads those in the raw path's place. Arrays sent as ``name[]`` are handled
here alone: ``parse_query`` reads them as ``name``, ``query_string`` writes a
shape's array parameters back as ``name[]``.

A shape's RPCs raise ``RestError`` (answered by the edge interceptor,
``connlog.core.edge``, in the shape's error body) and return ``respond(...)``;
``RestAuth`` is the one authentication step, worded per shape. Which shapes
exist, and their error bodies, is ``connlog.shapes.registry``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

import grpc
import orjson
from google.api.httpbody_pb2 import HttpBody
from google.protobuf.message import Message

from connlog.core.auth import KeyAuthenticator, session_cookie
from connlog.core.origin import PublicOrigin
from connlog.core.principal import Principal

STATUS_HEADER = "x-connlog-http-status"
PATH_HEADER = "x-connlog-path"
ORIGIN_HEADER = "x-connlog-origin"
PEER_HEADER = "x-connlog-peer"
CORRELATION_HEADER = "x-connlog-correlation-id"
# Every header the gateway and the backends exchange, by the name the Lua
# filter knows it by (rendered into gateway/vendor.lua, which removes every
# client-sent copy of each).
HEADERS = {"status": STATUS_HEADER, "path": PATH_HEADER, "origin": ORIGIN_HEADER, "peer": PEER_HEADER,
           "correlation": CORRELATION_HEADER}

# How array parameters are spelled by Meraki's clients: ``types[]=assoc``.
ARRAY_SUFFIX = "[]"


class RestError(Exception):
    """An answer in the caller's REST shape: ``status`` with ``message`` in
    the shape's error body, or with ``body`` as given (Zequenze's
    field-keyed errors)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: Mapping[str, object] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.headers = headers


_INTEGER = re.compile(r"-?[0-9]{1,30}")
_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def ascii_integer(text: str) -> int | None:
    """``text`` as an integer if it is one written in ASCII digits (no sign
    but '-', no spaces, underscores or other scripts' digits), else None."""
    return int(text) if _INTEGER.fullmatch(text) else None


def ascii_number(text: str) -> float | None:
    """``text`` as a number if it is a plain ASCII decimal, else None."""
    return float(text) if _DECIMAL.fullmatch(text) else None


def metadata_dict(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Invocation metadata as a dict (lower-case keys, last value wins); the
    binary (``-bin``) entries, whose values are bytes, are left out: no REST
    header is one."""
    return {key.lower(): value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}


@dataclass(frozen=True)
class RestCall:
    """What a REST caller sent, as far as a backend needs it."""

    path: str
    params: list[tuple[str, str]]
    origin: str  # the gateway's own origin as it reports it ("" without the gateway): see absolute_origin
    via_gateway: bool

    def names(self) -> set[str]:
        return {name for name, _ in self.params}

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.params if key == name]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[-1] if found else None


def _checked_text(raw: str, what: str) -> str:
    """Percent-decode ``raw`` strictly: valid UTF-8, no NUL."""
    data = unquote_to_bytes(raw.replace("+", " "))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RestError(400, f"{what} is not valid UTF-8 text") from None
    if "\x00" in text:
        raise RestError(400, f"{what} contains a NUL character")
    return text


def parse_query(query: str) -> list[tuple[str, str]]:
    """Query parameters, percent-decoded strictly; an undecodable one is a
    400 naming the parameter as the caller spelled it. Array parameters sent
    as ``name[]`` are reported as ``name``."""
    checked = []
    for pair in query.split("&") if query else []:
        if not pair:
            continue
        name_raw, _, value_raw = pair.partition("=")
        name = _checked_text(name_raw, f"query parameter {name_raw!r}")
        value = _checked_text(value_raw, f"'{name}'")
        checked.append((name.removesuffix(ARRAY_SUFFIX), value))
    return checked


def query_string(params: Iterable[tuple[str, str]], arrays: Collection[str] = ()) -> str:
    """``params`` percent-encoded as a query, the names in ``arrays`` written
    ``name[]`` (what ``parse_query`` reads back as ``name``)."""
    return urlencode([(name + ARRAY_SUFFIX if name in arrays else name, value) for name, value in params])


def _fields_as_params(request: Message, names: Collection[str]) -> list[tuple[str, str]]:
    """A direct gRPC caller's request fields named in ``names`` (by their
    JSON names, as the query parameters they stand for)."""
    params = []
    for descriptor, value in request.ListFields():
        if descriptor.json_name not in names:
            continue
        values = value if descriptor.is_repeated else [value]
        params += [(descriptor.json_name, str(v)) for v in values]
    return params


def rest_call(
    context: grpc.aio.ServicerContext, request: Message | None = None, names: Collection[str] = ()
) -> RestCall:
    """The call's path and query parameters: the raw ones the gateway passed
    on, or (for a direct gRPC caller) ``request``'s fields named in ``names``.
    Raises ``RestError(400)`` for a parameter that is not UTF-8 text."""
    metadata = metadata_dict(context)
    raw = metadata.get(PATH_HEADER)
    origin = metadata.get(ORIGIN_HEADER, "")
    if raw is None:
        return RestCall("", _fields_as_params(request, names) if request is not None else [], origin, False)
    parts = urlsplit(raw)
    return RestCall(parts.path, parse_query(parts.query), origin, True)


def absolute_origin(public: PublicOrigin, context: grpc.aio.ServicerContext, call: RestCall) -> str:
    """The origin absolute URLs in this call's answer start with (never a
    client-sent ``Host``; ``X-Forwarded-*`` only from a trusted proxy: see
    ``connlog.core.origin``)."""
    metadata = metadata_dict(context)
    return public.origin(gateway_origin=call.origin or None, peer=metadata.get(PEER_HEADER),
                         forwarded_proto=metadata.get("x-forwarded-proto"),
                         forwarded_host=metadata.get("x-forwarded-host"))


@dataclass(frozen=True)
class RestAuth:
    """How a shape's callers authenticate, in the shape's own words.

    Every shape takes ``Authorization: Bearer <key>``; ``key_headers`` (a
    connlog key in a vendor's API-key header) and ``session_cookie`` (a login
    session) are the shape's other credentials. ``permitted`` says whether an
    authenticated caller may use the shape."""

    invalid: str  # 401: no valid credential
    forbidden: str  # 403: a valid one that may not
    permitted: Callable[[Principal], bool]
    missing: str | None = None  # 401 when no credential is sent at all (None: ``invalid``)
    key_headers: tuple[str, ...] = ()
    session_cookie: str | None = None

    def _sent(self, metadata: dict[str, str]) -> bool:
        return ("authorization" in metadata or any(name in metadata for name in self.key_headers)
                or bool(self.session_cookie and session_cookie(metadata.get("cookie", ""), self.session_cookie)))

    async def authenticate(self, keys: KeyAuthenticator, context: grpc.aio.ServicerContext) -> Principal:
        """The caller; ``RestError(401)`` when it sent no valid credential."""
        metadata = metadata_dict(context)
        principal = await keys.authenticate_rest(metadata, key_headers=self.key_headers,
                                                 session_cookie_name=self.session_cookie)
        if principal is None:
            raise RestError(401, self.missing if self.missing is not None and not self._sent(metadata)
                            else self.invalid)
        return principal

    def authorize(self, principal: Principal) -> Principal:
        """``principal`` if it may use the shape, else ``RestError(403)``."""
        if not self.permitted(principal):
            raise RestError(403, self.forbidden)
        return principal

    async def principal(self, keys: KeyAuthenticator, context: grpc.aio.ServicerContext) -> Principal:
        """The authenticated caller, permitted to use the shape."""
        return self.authorize(await self.authenticate(keys, context))


async def respond(
    context: grpc.aio.ServicerContext,
    status: int,
    body: object,
    *,
    headers: Iterable[tuple[str, str]] = (),
    raw: bytes | None = None,
    implied: int | None = None,
) -> HttpBody:
    """Send the HTTP status and headers, and return the JSON body (``raw``:
    JSON text already made). ``implied``: the status the gateway gives this
    answer if it names none (its shape's ``success_status``; only for a call
    that came through the gateway): an answer with that status and no
    headers sends no response metadata, one completion-queue round trip per
    call fewer (gRPC sends metadata given apart from the message on its own)."""
    metadata = ((STATUS_HEADER, str(status)), *headers)
    if status != implied or len(metadata) > 1:
        await context.send_initial_metadata(metadata)
    data = raw if raw is not None else orjson.dumps(body)
    return HttpBody(content_type="application/json", data=data)
