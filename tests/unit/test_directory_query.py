"""connlog.query.directory: the ListClients search's parsing and
normalisation, the request checks (each refusal naming its field), and the
directory's page tokens (keyset positions bound to their request); and the
SQL each search builds (connlog.store.directory)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.validation import InvalidArgument
from connlog.query.directory import (
    ClientsQuery,
    check_clients_request,
    decode_client_token,
    decode_network_token,
    digest_of,
    encode_client_token,
    encode_network_token,
    like_prefix,
    page_size,
    parse_query,
)
from connlog.store.directory import ClientSearch, clients_sql

DIGEST = "0123456789abcdef"


@pytest.mark.parametrize(("query", "mac_digits", "id_pattern"), [
    ("", None, None),
    ("   ", None, None),
    ("AA:BB", "aabb", "AA:BB%"),
    ("aabb", "aabb", "aabb%"),
    ("aa-bb", "aabb", "aa-bb%"),
    ("aabb.cc", "aabbcc", "aabb.cc%"),
    ("  f0:D7 ", "f0d7", "f0:D7%"),
    ("a", "a", "a%"),
    ("0", "0", "0%"),
    ("f0:d7:aa:df:59:a2", "f0d7aadf59a2", "f0:d7:aa:df:59:a2%"),
    ("f0d7aadf59a2", "f0d7aadf59a2", "f0d7aadf59a2%"),
    ("f0d7aadf59a200", None, "f0d7aadf59a200%"),  # more digits than a MAC has: an id only
    ("::", None, "::%"),  # separators alone: no digits
    ("k74272e", None, "k74272e%"),  # not hex: an id only
    ("Phone Ann", None, "Phone Ann%"),
    ("50%_off\\", None, "50\\%\\_off\\\\%"),  # LIKE's metacharacters are escaped
    ("Ünï", None, "Ünï%"),
    ("x" * 128, None, "x" * 128 + "%"),
])
def test_a_query_searches_mac_digits_and_an_id_prefix(query, mac_digits, id_pattern):
    assert parse_query(query) == ClientSearch(mac_digits, id_pattern)


@pytest.mark.parametrize(("query", "reason"), [
    ("x" * 129, "must be at most 128 characters"),
    (" " * 129, "must be at most 128 characters"),
    ("ab\x00", "must not contain control characters"),
    ("a\nb", "must not contain control characters"),
    ("a\tb", "must not contain control characters"),
    ("\x7f", "must not contain control characters"),
    ("a\x85b", "must not contain control characters"),
])
def test_a_bad_query_is_refused_naming_the_field(query, reason):
    with pytest.raises(InvalidArgument) as caught:
        parse_query(query)
    assert str(caught.value) == f"query: {reason}"


@pytest.mark.parametrize(("text", "pattern"), [
    ("abc", "abc%"), ("a%b", "a\\%b%"), ("a_b", "a\\_b%"), ("a\\b", "a\\\\b%"), ("", "%"),
])
def test_like_prefix(text, pattern):
    assert like_prefix(text) == pattern


@pytest.mark.parametrize(("value", "size"), [(0, 100), (1, 1), (1000, 1000)])
def test_page_size(value, size):
    assert page_size(value) == size


@pytest.mark.parametrize("value", [-1, 1001, 2**31 - 1])
def test_a_bad_page_size_is_refused(value):
    with pytest.raises(InvalidArgument, match="^page_size: must be 0-1000$"):
        page_size(value)


@pytest.mark.parametrize(("fields", "field"), [
    (dict(parent=""), "parent"),
    (dict(parent="networks/-"), "parent"),
    (dict(parent="networks/"), "parent"),
    (dict(parent="networks/N 1"), "parent"),
    (dict(parent="networks/N_1/clients"), "parent"),
    (dict(parent="networks/N_1\n"), "parent"),
    (dict(parent="networks/N_1", page_size=-5), "page_size"),
    (dict(parent="networks/N_1", query="\x01"), "query"),
    (dict(parent="networks/N_1", page_token="!!"), "page_token"),
])
def test_a_bad_request_is_refused_naming_the_field(fields, field):
    with pytest.raises(InvalidArgument) as caught:
        check_clients_request(qpb.ListClientsRequest(**fields))
    assert str(caught.value).startswith(f"{field}: ")


def test_a_good_request_is_checked_into_its_parts():
    request = qpb.ListClientsRequest(parent="networks/N_1", query=" AA:bb ", page_size=7)
    assert check_clients_request(request) == ClientsQuery("N_1", ClientSearch("aabb", "AA:bb%"), 7, None,
                                                          digest_of(request))


POSITIONS = [
    (dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC), "f0:d7:aa:df:59:a2"),
    (dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), "k"),
    (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), "Ü" * 128),
    (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "a\"b\\c/%_"),
]


@pytest.mark.parametrize("position", POSITIONS)
def test_a_client_token_round_trips(position):
    token = encode_client_token(position, DIGEST)
    assert decode_client_token(token, DIGEST) == position
    assert len(token) <= 2048


def test_a_token_is_bound_to_its_request():
    a = qpb.ListClientsRequest(parent="networks/N_1", query="aa", page_size=5, page_token="x")
    b = qpb.ListClientsRequest(parent="networks/N_1", query="aa", page_size=50)
    c = qpb.ListClientsRequest(parent="networks/N_1", query="ab")
    assert digest_of(a) == digest_of(b) != digest_of(c)
    token = encode_client_token(POSITIONS[0], digest_of(b))
    with pytest.raises(InvalidArgument, match="^page_token: was issued for a request with other parameters$"):
        decode_client_token(token, digest_of(c))
    with pytest.raises(InvalidArgument, match="^page_token: malformed$"):  # a network token is not a client's
        decode_client_token(encode_network_token("N_1", DIGEST), DIGEST)
    with pytest.raises(InvalidArgument, match="^page_token: malformed$"):
        decode_network_token(token, digest_of(b))
    assert decode_network_token(encode_network_token("N_1", DIGEST), DIGEST) == "N_1"


def _crafted(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    "x", "!!!!", "=" * 8, "a" * 2049, _crafted({"a": 1}), _crafted([]), _crafted(["clients"]),
    _crafted(["clients", 1, DIGEST]), _crafted(["clients", "1", "k", DIGEST]), _crafted(["clients", 1.5, "k", DIGEST]),
    _crafted(["clients", True, "k", DIGEST]), _crafted(["clients", 1, "", DIGEST]), _crafted(["clients", 1, 5, DIGEST]),
    _crafted(["clients", 10**30, "k", DIGEST]), _crafted(["clients", 1, "a\x00", DIGEST]),
    _crafted(["offset", 1, DIGEST]), _crafted(["clients", 1, "k", 5]), _crafted([[[[[[]]]]]]),
    base64.urlsafe_b64encode(b"[" * 5000).decode(),
])
def test_a_malformed_client_token_is_refused(token):
    with pytest.raises(InvalidArgument, match="^page_token: malformed$"):
        decode_client_token(token, DIGEST)


@pytest.mark.parametrize("token", [
    _crafted(["networks", "", DIGEST]), _crafted(["networks", "N 1", DIGEST]), _crafted(["networks", 1, DIGEST]),
    _crafted(["networks", "a", "b", DIGEST]),
])
def test_a_malformed_network_token_is_refused(token):
    with pytest.raises(InvalidArgument, match="^page_token: malformed$"):
        decode_network_token(token, DIGEST)


@pytest.mark.parametrize(("search", "after", "parts", "parameters"), [
    (ClientSearch(), False, [], 3),
    (ClientSearch(), True, ["(d.last_seen_at, d.client_key) < ($4, $5)"], 5),
    (ClientSearch("aa", "aa%"), False, ["d.mac_digits LIKE $4", "lower(d.client_id) LIKE lower($5)", " OR "], 5),
    (ClientSearch(None, "k%"), True, ["< ($4, $5)", "lower(d.client_id) LIKE lower($6)"], 6),
    (ClientSearch("aa", "aa%"), True, ["< ($4, $5)", "d.mac_digits LIKE $6", "LIKE lower($7)"], 7),
])
def test_the_listing_sql_of_each_search(search, after, parts, parameters):
    sql = clients_sql(search, after=after)
    assert sql.startswith("SELECT ") and "WHERE d.tenant_ref = $1 AND d.network_ref = $2" in sql
    assert sql.endswith("ORDER BY d.last_seen_at DESC, d.client_key DESC LIMIT $3")
    for part in parts:
        assert part in sql
    assert f"${parameters}" in sql and f"${parameters + 1}" not in sql
