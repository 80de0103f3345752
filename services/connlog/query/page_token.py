"""Opaque page tokens for keyset pagination.

A token carries the (occurred_at, id) of the last event returned and a digest
of the request's filters, so that a token is only honoured with the request
that produced it (AIP-158).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from google.protobuf.message import Message

# A token we issue is about 60 characters; anything much longer is not one
# (and must not reach the JSON parser: deep nesting would exhaust its recursion).
MAX_TOKEN_LENGTH = 512
EVENT_ID_MAX = 2**63 - 1  # event ids are bigint


class BadPageToken(ValueError):
    """A page token that is malformed or belongs to another request."""


def request_digest(request: Message, ignore: tuple[str, ...] = ("page_token", "page_size")) -> str:
    """A digest of the request's parameters, except paging ones."""
    copy = type(request)()
    copy.CopyFrom(request)
    for name in ignore:
        copy.ClearField(name)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def encode(occurred_at: dt.datetime, event_id: int, digest: str) -> str:
    # integer division: a float loses microseconds beyond ~2**53 of them (year ~2255)
    micros = (occurred_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    raw = json.dumps([micros, event_id, digest], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, digest: str) -> tuple[dt.datetime, int]:
    """The position in ``token``; ``BadPageToken`` naming ``page_token`` for
    anything that is not a token this service issued for these parameters."""
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        micros, event_id, token_digest = json.loads(raw)
        # type() is: a JSON true/false is a bool, which isinstance(..., int) lets through
        if type(micros) is not int or type(event_id) is not int or not isinstance(token_digest, str):
            raise ValueError
        if not 0 <= event_id <= EVENT_ID_MAX:
            raise ValueError
        occurred_at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise BadPageToken("page_token: malformed") from None
    if token_digest != digest:
        raise BadPageToken("page_token: was issued for a request with other parameters")
    return occurred_at, event_id


def encode_offset(offset: int, digest: str) -> str:
    """A token for the page that starts at ``offset`` of a computed result
    (insight groups), bound to the request's digest."""
    raw = json.dumps(["offset", offset, digest], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_offset(token: str, digest: str, limit: int) -> int:
    """The offset in ``token`` (0 to ``limit``); ``BadPageToken`` naming
    ``page_token`` for anything that is not an offset token this service
    issued for these parameters."""
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        kind, offset, token_digest = json.loads(raw)
        if kind != "offset" or type(offset) is not int or not isinstance(token_digest, str):
            raise ValueError
        if not 0 <= offset <= limit:
            raise ValueError
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise BadPageToken("page_token: malformed") from None
    if token_digest != digest:
        raise BadPageToken("page_token: was issued for a request with other parameters")
    return offset
