"""The REST edge: what every RPC that answers in a vendor's REST shape shares.

The gateway's Lua filter hands the backend the raw request path
(``x-connlog-path``) and the caller's origin (``x-connlog-origin``); the
backend answers with an HttpBody and sets the HTTP status through the
``x-connlog-http-status`` response metadata.

``SHAPES`` is the one table of REST shapes: which gRPC service answers which
path prefixes, and how that shape writes an error body. The edge interceptor
(``connlog.core.edge``) answers every error of a shape's RPC from it, and the
gateway config renders Envoy's own error replies from it, so a caller sees
one error format per shape whoever answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import orjson
from google.api import httpbody_pb2

STATUS_HEADER = "x-connlog-http-status"
PATH_HEADER = "x-connlog-path"
ORIGIN_HEADER = "x-connlog-origin"
CORRELATION_HEADER = "x-connlog-correlation-id"


def _meraki_error(status: int, message: str) -> dict:
    return {"errors": [message]}


def _mojo_error(status: int, message: str) -> dict:
    return {"error": message, "status": status}


def _zequenze_error(status: int, message: str) -> dict:
    return {"detail": message}


@dataclass(frozen=True)
class RestShape:
    """One REST shape served through the gateway."""

    name: str
    service: str  # full name of the gRPC service that answers it ("" : the transcoder's own JSON)
    path_prefixes: tuple[str, ...]
    error_body: Callable[[int, str], dict]


# Order matters for the gateway: the first shape whose prefix matches a path
# formats Envoy's replies for it (Zequenze's path lies under Meraki's /api/v1/).
SHAPES: tuple[RestShape, ...] = (
    RestShape("zequenze", "connlog.api.v1.ZequenzeService", ("/api/v1/device_app_connection_log",), _zequenze_error),
    RestShape("meraki", "connlog.api.v1.MerakiService", ("/api/v1/",), _meraki_error),
    RestShape("mojo", "connlog.api.v1.MojoService", ("/V5/", "/new/webservice/"), _mojo_error),
)
SHAPES_BY_SERVICE = {shape.service: shape for shape in SHAPES}


class RestError(Exception):
    """An answer in the caller's REST shape: ``status`` with ``message`` in
    the shape's error body, or with ``body`` as given (Zequenze's
    field-keyed errors)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: dict | None = None,
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


def metadata_dict(context) -> dict[str, str]:
    """Invocation metadata as a dict (lower-case keys, last value wins)."""
    return {key.lower(): value for key, value in (context.invocation_metadata() or ())}


@dataclass(frozen=True)
class RestCall:
    """What a REST caller sent, as far as a backend needs it."""

    path: str
    params: list[tuple[str, str]]
    origin: str
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
        checked.append((name[:-2] if name.endswith("[]") else name, value))
    return checked


def rest_call(context, fallback: Iterable[tuple[str, str]] = ()) -> RestCall:
    """The call's path and query parameters: the raw ones from the gateway, or
    (for a direct gRPC caller) ``fallback`` built from the request fields.
    Raises ``RestError(400)`` for a parameter that is not UTF-8 text."""
    metadata = metadata_dict(context)
    raw = metadata.get(PATH_HEADER)
    origin = metadata.get(ORIGIN_HEADER, "")
    if raw is None:
        return RestCall("", list(fallback), origin, False)
    parts = urlsplit(raw)
    return RestCall(parts.path, parse_query(parts.query), origin, True)


async def respond(
    context,
    status: int,
    body: Any,
    *,
    headers: Iterable[tuple[str, str]] = (),
    raw: bytes | None = None,
) -> httpbody_pb2.HttpBody:
    """Send the HTTP status and headers, and return the JSON body (``raw``:
    JSON text already made)."""
    await context.send_initial_metadata(((STATUS_HEADER, str(status)), *headers))
    data = raw if raw is not None else orjson.dumps(body)
    return httpbody_pb2.HttpBody(content_type="application/json", data=data)
