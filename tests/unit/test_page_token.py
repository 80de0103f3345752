"""connlog.query.page_token: opaque keyset positions, bound to the request
that produced them."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.query.page_token import BadPageToken, decode, encode, request_digest

UTC = dt.UTC
DIGEST = "0123456789abcdef"
EVENT_ID_MAX = 2**63 - 1  # event ids are bigint
MAX_TOKEN_LENGTH = 512  # a token we issue is about 60 characters
MALFORMED = "page_token: malformed"
OTHER_REQUEST = "page_token: was issued for a request with other parameters"


def crafted(value: Any, *, raw: bytes | None = None) -> str:
    """A token built as ``encode`` builds one, around any JSON ``value`` (or
    any ``raw`` bytes)."""
    data = raw if raw is not None else json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(("occurred_at", "event_id"), [
    (dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC), 42),
    (dt.datetime(1970, 1, 1, tzinfo=UTC), 0),
    (dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 1),  # before the epoch: negative micros
    (dt.datetime(1, 1, 1, tzinfo=UTC), 7),  # Timestamp's earliest
    (dt.datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), EVENT_ID_MAX),  # bigint's largest id
    (dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), 3),  # any zone: same instant
])
def test_a_token_decodes_to_the_position_it_encodes(occurred_at: dt.datetime, event_id: int) -> None:
    token = encode(occurred_at, event_id, DIGEST)
    decoded_at, decoded_id = decode(token, DIGEST)
    assert (decoded_at, decoded_id) == (occurred_at, event_id)
    assert decoded_at.tzinfo is not None and decoded_at.utcoffset() == dt.timedelta(0)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "URL-safe, unpadded"
    assert len(token) <= MAX_TOKEN_LENGTH


@pytest.mark.parametrize("occurred_at", [
    dt.datetime(5000, 6, 1, 0, 0, 0, 123457, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
])
def test_a_token_keeps_microseconds_far_from_the_epoch(occurred_at: dt.datetime) -> None:
    assert decode(encode(occurred_at, 1, DIGEST), DIGEST) == (occurred_at, 1)


@pytest.mark.parametrize("token", [
    pytest.param("", id="empty"),
    pytest.param("!!!!", id="not base64"),
    pytest.param("é" * 8, id="not ASCII"),
    pytest.param("abc", id="base64 of bytes that are not JSON"),
    pytest.param(crafted(None, raw=b"\xff\xfe"), id="not UTF-8"),
    pytest.param(crafted(None, raw=b"[1,2,"), id="truncated JSON"),
    pytest.param(crafted({"micros": 1, "id": 2, "digest": DIGEST}), id="an object"),
    pytest.param(crafted([1, 2]), id="two items"),
    pytest.param(crafted([1, 2, DIGEST, 4]), id="four items"),
    pytest.param(crafted("1,2,x"), id="a string"),
    pytest.param(crafted(17), id="a number"),
    pytest.param(crafted(["1", 2, DIGEST]), id="micros as text"),
    pytest.param(crafted([1.5, 2, DIGEST]), id="micros a float"),
    pytest.param(crafted([True, 2, DIGEST]), id="micros a bool"),
    pytest.param(crafted([None, 2, DIGEST]), id="micros null"),
    pytest.param(crafted([1, "2", DIGEST]), id="id as text"),
    pytest.param(crafted([1, 2.0, DIGEST]), id="id a float"),
    pytest.param(crafted([1, True, DIGEST]), id="id true"),
    pytest.param(crafted([1, False, DIGEST]), id="id false"),
    pytest.param(crafted([1, -1, DIGEST]), id="id negative"),
    pytest.param(crafted([1, EVENT_ID_MAX + 1, DIGEST]), id="id beyond bigint"),
    pytest.param(crafted([1, 10**30, DIGEST]), id="id huge"),
    pytest.param(crafted([1, 2, 3]), id="digest a number"),
    pytest.param(crafted([1, 2, None]), id="digest null"),
    pytest.param(crafted([10**30, 2, DIGEST]), id="micros beyond any datetime"),
    pytest.param(crafted([-(10**30), 2, DIGEST]), id="micros before any datetime"),
    pytest.param(crafted(None, raw=b"[" * 300 + b"]" * 300), id="nested lists"),
    pytest.param(crafted(None, raw=b"[" * 100_000), id="deep nesting beyond the length limit"),
    pytest.param("A" * (MAX_TOKEN_LENGTH + 1), id="longer than the limit"),
])
def test_malformed_tokens_are_refused_naming_page_token(token: str) -> None:
    with pytest.raises(BadPageToken) as err:
        decode(token, DIGEST)
    assert str(err.value) == MALFORMED
    assert isinstance(err.value, ValueError)


def _token_of_length(length: int) -> tuple[str, str]:
    """A well-formed token of exactly ``length`` characters (unpadded
    base64: ceil(4n/3) for n bytes, never 4k+1), and its digest."""
    when = dt.datetime(2026, 1, 1, tzinfo=UTC)
    raw = len(base64.urlsafe_b64decode(encode(when, 1, "") + "=="))  # the JSON of an empty digest
    digest = "d" * (length * 3 // 4 - raw)
    token = encode(when, 1, digest)
    assert len(token) == length, (len(token), length)
    return token, digest


@pytest.mark.parametrize(("length", "accepted"), [
    (MAX_TOKEN_LENGTH - 1, True),
    (MAX_TOKEN_LENGTH, True),
    (MAX_TOKEN_LENGTH + 2, False),  # unpadded base64 is never 4n+1 long: +1 is not a token
    (MAX_TOKEN_LENGTH + 3, False),
])
def test_the_length_limit_is_exact(length: int, accepted: bool) -> None:
    token, digest = _token_of_length(length)
    if accepted:
        assert decode(token, digest) == (dt.datetime(2026, 1, 1, tzinfo=UTC), 1)
    else:
        with pytest.raises(BadPageToken, match=f"^{MALFORMED}$"):
            decode(token, digest)


@pytest.mark.parametrize("other_digest", ["", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", "fedcba9876543210"])
def test_a_token_of_another_request_is_refused(other_digest: str) -> None:
    token = encode(dt.datetime(2026, 1, 1, tzinfo=UTC), 5, DIGEST)
    with pytest.raises(BadPageToken) as err:
        decode(token, other_digest)
    assert str(err.value) == OTHER_REQUEST


def _list(**fields: Any) -> qpb.ListConnectionEventsRequest:
    return qpb.ListConnectionEventsRequest(parent="networks/N_1", **fields)


@pytest.mark.parametrize(("first", "second", "same"), [
    pytest.param(_list(), _list(), True, id="identical"),
    pytest.param(_list(page_size=10), _list(page_size=500), True, id="page size is paging"),
    pytest.param(_list(page_token="abc"), _list(page_token="xyz"), True, id="page token is paging"),
    pytest.param(_list(), qpb.ListConnectionEventsRequest(parent="networks/N_2"), False, id="parent"),
    pytest.param(_list(client_id="k1"), _list(client_id="k2"), False, id="client_id"),
    pytest.param(_list(steps=[pb.CONNECTION_STEP_DHCP]), _list(), False, id="steps"),
    pytest.param(_list(steps=[1, 2]), _list(steps=[2, 1]), False, id="order of steps"),
    pytest.param(_list(sort_order=qpb.SORT_ORDER_DESCENDING), _list(), False, id="sort order"),
    pytest.param(_list(ssid_number=0), _list(), False, id="ssid_number 0 is a filter"),
])
def test_the_request_digest_covers_every_parameter_but_paging(
    first: qpb.ListConnectionEventsRequest, second: qpb.ListConnectionEventsRequest, same: bool
) -> None:
    assert (request_digest(first) == request_digest(second)) is same
    token = encode(dt.datetime(2026, 1, 1, tzinfo=UTC), 9, request_digest(first))
    if same:
        assert decode(token, request_digest(second))[1] == 9
    else:
        with pytest.raises(BadPageToken, match=f"^{OTHER_REQUEST}$"):
            decode(token, request_digest(second))


def test_the_digest_leaves_the_request_untouched() -> None:
    request = _list(page_token="abc", page_size=7, client_id="k1")
    request_digest(request)
    assert (request.page_token, request.page_size, request.client_id) == ("abc", 7, "k1")
