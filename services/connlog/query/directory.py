"""ListNetworks and ListClients: the networks of a tenant and the client
directory of a network (``connlog.store.directory``; docs/insights.md,
"The client directory").

The request checks are pure functions (``parse_query``, ``page_size``, the
page tokens): every refused field is ``InvalidArgument`` naming it. Page
tokens are keyset positions bound to their request (the digest of every
parameter but the paging ones, as ``connlog.query.page_token``'s): a client
list's is (last seen, client key), a network list's the last network id.
Reads go to the query service's read pool behind its staleness gate, as
every other read; the network a client list names is resolved on the
primary (as ``ListConnectionEvents`` resolves it).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from google.protobuf.message import Message

from connlog.api.v1 import query_service_pb2 as query_pb
from connlog.core.identifiers import NETWORK_ID, parse_network_parent
from connlog.core.validation import InvalidArgument
from connlog.query.page_token import request_digest
from connlog.store.directory import ClientPosition, ClientSearch, DirectoryClient, DirectoryNetwork, DirectoryStore

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_QUERY_LENGTH = 128  # the longest client id ingest stores
# A token holds a client key (up to 128 characters, \\u-escaped in JSON:
# 6 bytes each) and a position: anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 2048
_MAC_QUERY = re.compile(r"[0-9a-f:.\-]+\Z")
_MAC_SEPARATORS = re.compile(r"[:.\-]")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
PARENT_REASON = "must be networks/{network} (one network)"


def parse_query(query: str) -> ClientSearch:
    """The search of a ``ListClients.query``: surrounding whitespace
    ignored; a MAC prefix when it is hex digits with optional ``:``, ``-``,
    ``.`` separators (at most 12 digits), and always a case-insensitive
    client-id prefix. ``InvalidArgument`` naming ``query`` when it is
    longer than ``MAX_QUERY_LENGTH`` or holds a control character."""
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidArgument("query", f"must be at most {MAX_QUERY_LENGTH} characters")
    text = query.strip()
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidArgument("query", "must not contain control characters")
    if not text:
        return ClientSearch()
    lowered = text.lower()
    digits = _MAC_SEPARATORS.sub("", lowered) if _MAC_QUERY.match(lowered) else ""
    return ClientSearch(mac_digits=digits if 0 < len(digits) <= 12 else None, id_pattern=like_prefix(text))


def like_prefix(text: str) -> str:
    """A LIKE pattern matching the strings that start with ``text``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page_size(value: int) -> int:
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be 0-{MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


def parse_parent(parent: str) -> str:
    """The network id of a ``ListClients.parent`` (one network, not ``-``)."""
    network = parse_network_parent(parent)
    if network is None or not NETWORK_ID.match(network):
        raise InvalidArgument("parent", PARENT_REASON)
    return network


# --- page tokens ----------------------------------------------------------------------------------------------


def _encode(values: list[object]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, kind: str, digest: str) -> list[object]:
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(values, list) or len(values) < 2 or values[0] != kind or not isinstance(values[-1], str):
            raise ValueError
    except (ValueError, TypeError, RecursionError):
        raise InvalidArgument("page_token", "malformed") from None
    if values[-1] != digest:
        raise InvalidArgument("page_token", "was issued for a request with other parameters")
    return values[1:-1]


def encode_client_token(position: ClientPosition, digest: str) -> str:
    micros = (position[0] - _EPOCH) // dt.timedelta(microseconds=1)
    return _encode(["clients", micros, position[1], digest])


def decode_client_token(token: str, digest: str) -> ClientPosition:
    """The position in a ``ListClients`` page token of this request."""
    values = _decode(token, "clients", digest)
    try:
        micros, key = values
        if type(micros) is not int or not isinstance(key, str) or not key or "\x00" in key:
            raise ValueError
        return _EPOCH + dt.timedelta(microseconds=micros), key
    except (ValueError, TypeError, OverflowError):
        raise InvalidArgument("page_token", "malformed") from None


def encode_network_token(network_id: str, digest: str) -> str:
    return _encode(["networks", network_id, digest])


def decode_network_token(token: str, digest: str) -> str:
    """The last network id of the page before, from a ``ListNetworks`` page
    token of this request."""
    values = _decode(token, "networks", digest)
    if len(values) != 1 or not isinstance(values[0], str) or not NETWORK_ID.match(values[0]):
        raise InvalidArgument("page_token", "malformed")
    return values[0]


def digest_of(request: Message) -> str:
    return request_digest(request)


@dataclass(frozen=True, slots=True)
class ClientsQuery:
    """A checked ``ListClients`` request."""

    network_id: str
    search: ClientSearch
    size: int
    after: ClientPosition | None
    digest: str


def check_clients_request(request: query_pb.ListClientsRequest) -> ClientsQuery:
    """A ``ListClients`` request, checked field by field (``InvalidArgument``
    naming the first it cannot honour)."""
    network = parse_parent(request.parent)
    size = page_size(request.page_size)
    search = parse_query(request.query)
    digest = digest_of(request)
    after = decode_client_token(request.page_token, digest) if request.page_token else None
    return ClientsQuery(network, search, size, after, digest)


# --- messages -------------------------------------------------------------------------------------------------


def client_message(network_id: str, client: DirectoryClient) -> query_pb.NetworkClient:
    message = query_pb.NetworkClient(
        name=f"networks/{network_id}/clients/{client.client_key}", mac_address=client.client_mac or "",
        client_id=client.client_id or "", event_count=client.events, failure_count=client.failures)
    message.first_seen_time.FromDatetime(client.first_seen_at)
    message.last_seen_time.FromDatetime(client.last_seen_at)
    return message


def network_message(network: DirectoryNetwork) -> query_pb.Network:
    message = query_pb.Network(name=f"networks/{network.network_id}", network_id=network.network_id,
                               display_name=network.name or network.network_id)
    if network.last_event_at is not None:
        message.last_event_time.FromDatetime(network.last_event_at)
    return message


class Directory:
    """The two listings, on the read pool behind its gate."""

    def __init__(self, pool: asyncpg.Pool, before_read: Callable[[], None] | None = None) -> None:
        self._store = DirectoryStore(pool)
        self._before_read = before_read or (lambda: None)

    async def list_networks(
        self, tenant_ref: int, request: query_pb.ListNetworksRequest
    ) -> query_pb.ListNetworksResponse:
        size = page_size(request.page_size)
        digest = digest_of(request)
        after = decode_network_token(request.page_token, digest) if request.page_token else ""
        self._before_read()
        networks = await self._store.networks(tenant_ref, limit=size + 1, after=after)
        response = query_pb.ListNetworksResponse(networks=[network_message(n) for n in networks[:size]])
        if len(networks) > size:
            response.next_page_token = encode_network_token(networks[size - 1].network_id, digest)
        return response

    async def list_clients(
        self, tenant_ref: int, network_ref: int, query: ClientsQuery
    ) -> query_pb.ListClientsResponse:
        size = query.size
        self._before_read()
        clients = await self._store.clients(tenant_ref, network_ref, query.search, limit=size + 1, after=query.after)
        response = query_pb.ListClientsResponse(clients=[client_message(query.network_id, c) for c in clients[:size]])
        if len(clients) > size:
            response.next_page_token = encode_client_token(clients[size - 1].position, query.digest)
        return response

