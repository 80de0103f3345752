"""Helpers for RPCs that answer in a vendor's REST shape through the gateway.

The gateway's Lua filter hands the backend the raw request path
(``x-connlog-path``) and the caller's origin (``x-connlog-origin``); the
backend answers with an HttpBody and sets the HTTP status through the
``x-connlog-http-status`` response metadata.
"""

from __future__ import annotations

import orjson
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from google.api import httpbody_pb2

STATUS_HEADER = "x-connlog-http-status"
PATH_HEADER = "x-connlog-path"
ORIGIN_HEADER = "x-connlog-origin"


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


def rest_call(context, fallback: Iterable[tuple[str, str]] = ()) -> RestCall:
    """The call's path and query parameters: the raw ones from the gateway, or
    (for a direct gRPC caller) ``fallback`` built from the request fields.
    Array parameters sent as ``name[]`` are reported as ``name``."""
    metadata = metadata_dict(context)
    raw = metadata.get(PATH_HEADER)
    origin = metadata.get(ORIGIN_HEADER, "")
    if raw is None:
        return RestCall("", list(fallback), origin, False)
    parts = urlsplit(raw)
    params = [(name[:-2] if name.endswith("[]") else name, value)
              for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    return RestCall(parts.path, params, origin, True)


async def respond(
    context,
    status: int,
    body: Any,
    *,
    headers: Iterable[tuple[str, str]] = (),
    raw: bytes | None = None,
) -> httpbody_pb2.HttpBody:
    """Send the HTTP status and headers, and return the JSON body."""
    await context.send_initial_metadata(((STATUS_HEADER, str(status)), *headers))
    data = raw if raw is not None else orjson.dumps(body)
    return httpbody_pb2.HttpBody(content_type="application/json", data=data)
