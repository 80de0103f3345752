"""Every gRPC request gets a clear answer.

Hypothesis fuzzes the request message of every RPC of every connlog gRPC
service (``IngestService`` incl. the client stream, ``QueryService``,
``VendorSyncService`` and the vendor shapes ``MerakiService``,
``MojoService``, ``ZequenzeService``), found from the generated modules'
descriptors, so a new RPC is fuzzed without touching this file. The strategy
is built generically from each request's descriptor: every scalar type at
its edges (int32/int64/uint64 extremes, NaN, infinities, -0.0), text with
NUL, control characters, bidi marks, combining marks, non-characters and
astral code points, bytes, enums with unknown numbers, nested and repeated
messages, maps, oneofs, ``Timestamp``/``Duration`` at and beyond their valid
range, ``FieldMask`` paths, ``HttpBody`` with JSON made for each vendor shape
(and not JSON at all). Per field it mixes in valid-looking values (resource
names of existing objects, MACs in every notation, page tokens crafted with
the request's own digest so the position inside is really used, base URLs
of a closed loopback port), and per message it may start from a valid one
(a "seed") with a few fields fuzzed, so that checks past the first are
reached.

Each request goes to the real services (a valid administrator key; a device
key for Zequenze, which refuses others) and the answer must be:

* canonical RPCs: OK or a client error (INVALID_ARGUMENT, NOT_FOUND,
  ALREADY_EXISTS, FAILED_PRECONDITION, PERMISSION_DENIED, UNAUTHENTICATED,
  OUT_OF_RANGE, RESOURCE_EXHAUSTED), never UNKNOWN/INTERNAL/DATA_LOSS/
  UNIMPLEMENTED/UNAVAILABLE; an INVALID_ARGUMENT message starts with a path
  of the request's own fields (``start_time: ...``,
  ``sync_source.base_url: ...``; a bare ``request:`` only for bytes that are
  no message); every rejected ingest result names a field;
* vendor-shape RPCs: OK at the gRPC level with an HTTP status (metadata
  ``x-connlog-http-status``) below 500 and a JSON body;
* no status message, error body or server-written response field
  (``reason``, ``last_error``...) carries internal text: ``Traceback``,
  ``<class '``, ``Exception``, ``Error(``, `` object at 0x``, a Python
  exception's name (``ConnectError``), unless the caller sent that text.

Undecodable requests (random bytes, truncated messages, a string field that
is not UTF-8, at the top level and nested) are sent with identity
serializers and must be INVALID_ARGUMENT (a 400 for vendor shapes), naming
the field where one is to blame.

``PINNED`` lists one input per failure class found so far, so a regression
fails whatever the random examples are. Failures in files the authors of
this test do not own are pinned as strict xfails (they fail the run once
fixed: then drop the mark) and excused in the random fuzzing
(``KNOWN_VENDOR_FAILURES``, ``KNOWN_TEXT_LEAKS``); none is left now.

Examples: ``CONNLOG_FUZZ_EXAMPLES`` per RPC and test (default 100,
derandomized so CI runs the same examples every time; the file takes about
20 s on 2 cores). Setting it (e.g. ``CONNLOG_FUZZ_EXAMPLES=3000``, about
6 minutes) also draws fresh random examples each run, unless
``CONNLOG_FUZZ_DERANDOMIZE=1``. Run one RPC with ``-k ListConnectionEvents``;
``--hypothesis-show-statistics`` shows the status codes seen per RPC.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib
import json
import math
import os
import pkgutil
import re
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import quote

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, message_factory, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import connlog.api.v1
from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insights_service_pb2,
    meraki_service_pb2,
    mojo_service_pb2,
    query_service_pb2,
    vendor_sync_service_pb2_grpc,
    zequenze_service_pb2,
)
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.core.auth import create_key
from connlog.core.principal import Role
from connlog.core.server import start_service
from connlog.query import page_token
from connlog.shapes import registry
from connlog.shapes.registry import SHAPES_BY_SERVICE
from connlog.shapes.rest import STATUS_HEADER
from connlog.store.accounts import AccountStore
from tests.support.factories import full_event, now, simple_event

EXAMPLES = int(os.environ.get("CONNLOG_FUZZ_EXAMPLES", "100"))
DERANDOMIZE = "CONNLOG_FUZZ_EXAMPLES" not in os.environ or os.environ.get("CONNLOG_FUZZ_DERANDOMIZE") == "1"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)

# --- the RPCs ---------------------------------------------------------------

# every generated module of the API: a service added to proto/ is fuzzed too
SERVICE_FILES = [importlib.import_module(f"connlog.api.v1.{info.name}")
                 for info in pkgutil.iter_modules(connlog.api.v1.__path__) if info.name.endswith("_pb2")]
METHODS = [method for module in SERVICE_FILES for service in module.DESCRIPTOR.services_by_name.values()
           for method in service.methods]
METHOD_IDS = [f"{m.containing_service.name}.{m.name}" for m in METHODS]
# which in-process server hosts which service: the registry says
HOSTS = {name.rsplit(".", 1)[-1]: host for name, host in registry.hosts().items()}

CLIENT_ERRORS = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# what must never reach a caller (an exception's text, a Python repr)
INTERNALS = ("Traceback", "<class '", "Exception", "Error(", " object at 0x", "File \"/", "asyncpg", "psycopg")
# a Python exception's name as it prints (ConnectError: ..., ValueError: ...)
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")
# server-written text in responses (the rest of a response is the caller's own data)
SERVER_TEXT_FIELDS = {"reason", "last_error", "message", "detail", "details"}
FIELD_PATH = re.compile(r"^([a-z][a-z0-9_]*)(\[\d+\])?(\.[a-z][a-z0-9_]*(\[\d+\])?)*: \S")


def message_class(descriptor):
    return message_factory.GetMessageClass(descriptor)


def is_vendor_shape(method) -> bool:
    return method.containing_service.full_name in SHAPES_BY_SERVICE


def test_every_rpc_is_fuzzed():
    """Every service of the API is fuzzed, on the server that hosts it."""
    services = {m.containing_service.name for m in METHODS}
    assert services == set(HOSTS), "a service the registry (connlog.shapes.registry) does not place"
    assert len(METHODS) >= 19
    assert any(m.client_streaming for m in METHODS)


# --- generic strategies from descriptors -------------------------------------

T = FieldDescriptor
INT_BOUNDS = {
    T.TYPE_INT32: (-(2**31), 2**31 - 1), T.TYPE_SINT32: (-(2**31), 2**31 - 1), T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    T.TYPE_INT64: (-(2**63), 2**63 - 1), T.TYPE_SINT64: (-(2**63), 2**63 - 1), T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    T.TYPE_UINT32: (0, 2**32 - 1), T.TYPE_FIXED32: (0, 2**32 - 1),
    T.TYPE_UINT64: (0, 2**64 - 1), T.TYPE_FIXED64: (0, 2**64 - 1),
}
_EDGES = [0, 1, -1, 2, 127, 128, 255, 256, 32767, 32768, -32768, -32769, 65535, 65536, 2**31 - 1, 2**31, -(2**31),
          -(2**31) - 1, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64 - 1]


def integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({e for e in _EDGES + [lo, hi, lo + 1, hi - 1] if lo <= e <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(max(lo, -1000), min(hi, 1000)), st.integers(lo, hi))


ODD_TEXT = ["\x00", "a\x00b", "\x01", "\x7f", "\n", "\r\n", "\t", " ", "\u00a0", "\u200b", "\u202e", "\u2028",
            "\ufeff", "\ufffd", "\ufffe", "\uffff", "\U0001f600", "\U0010ffff", "e\u0301", "\u0130", "\u00df",
            "%00", "%ff", "%", "../", "/", "//", "-", "*", "'", '"', "\\", "{}", "[]", "null", "NaN", "-0",
            "1e309", "9" * 30, "\U000e0001"]
LONG = ["x" * 300, "y" * 5000, "\u00e9" * 70_000, "\x00" * 1000]
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
    st.lists(st.sampled_from(ODD_TEXT), min_size=1, max_size=4).map("".join),
    st.sampled_from(["", "a", "N_1", "-"] + LONG),
)
BYTES = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\x00", b"\xff\xfe", b"{}", b"\xc3\x28"]))
DOUBLES = st.one_of(st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 2.0**63,
                                     2.0**64, 1e-7, 0.5]), st.floats())
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 3.4e38, 1e-45]),
                   st.floats(width=32))

TIMESTAMP_MIN, TIMESTAMP_MAX = -62135596800, 253402300799  # 0001-01-01 .. 9999-12-31T23:59:59
DURATION_MAX = 315576000000
_NOW = int(dt.datetime.now(dt.UTC).timestamp())


def timestamps(cls) -> st.SearchStrategy:
    seconds = st.one_of(
        st.sampled_from([0, _NOW, _NOW - 3600, _NOW + 86400 * 400, TIMESTAMP_MIN, TIMESTAMP_MIN - 1, TIMESTAMP_MAX,
                         TIMESTAMP_MAX + 1, 2**63 - 1, -(2**63), 2**31, -(2**31) - 1, 32503680000]),
        st.integers(TIMESTAMP_MIN, TIMESTAMP_MAX), integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31), 500]),
                      st.integers(0, 999_999_999), integers(-(2**31), 2**31 - 1))
    return st.builds(cls, seconds=seconds, nanos=nanos)


def durations(cls) -> st.SearchStrategy:
    seconds = st.one_of(
        st.sampled_from([0, 1, -1, 59, 60, 3600, DURATION_MAX, DURATION_MAX + 1, -DURATION_MAX, -DURATION_MAX - 1,
                         2**63 - 1, -(2**63), 86400 * 365 * 10_000]),
        st.integers(-DURATION_MAX, DURATION_MAX), integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.sampled_from([0, 999_999_999, -999_999_999, 1_000_000_000, -1, 1, 2**31 - 1, -(2**31)]),
                      integers(-(2**31), 2**31 - 1))
    return st.builds(cls, seconds=seconds, nanos=nanos)


# Field hints: valid-looking values a purely random string would never hit,
# keyed by the field's full name; mixed with the generic values.
HINTS: dict[str, st.SearchStrategy] = {}
# Finishers: (draw, message) -> None, per message type, run after the fields
# are drawn (values that depend on the rest of the request).
FINISHERS: dict[str, callable] = {}
# Seeds: per message type, valid messages a draw may start from (then a few
# fields are fuzzed on top), so that deep checks are reached.
SEEDS: dict[str, st.SearchStrategy] = {}
MAX_DEPTH = 4


def _scalar(field) -> st.SearchStrategy:
    if field.type == T.TYPE_STRING:
        return TEXT
    if field.type == T.TYPE_BYTES:
        return BYTES
    if field.type == T.TYPE_BOOL:
        return st.booleans()
    if field.type == T.TYPE_DOUBLE:
        return DOUBLES
    if field.type == T.TYPE_FLOAT:
        return FLOATS
    if field.type == T.TYPE_ENUM:
        known = sorted(field.enum_type.values_by_number)
        return st.one_of(st.sampled_from(known), integers(-(2**31), 2**31 - 1))  # open enums: unknown numbers too
    return integers(*INT_BOUNDS[field.type])


def field_values(field, depth: int) -> st.SearchStrategy:
    """Values of one (non-repeated) field or of one element of a repeated one."""
    if field.type == T.TYPE_MESSAGE:
        generic = messages(field.message_type, depth + 1)
    else:
        generic = _scalar(field)
    hint = HINTS.get(field.full_name)
    return st.one_of(hint, generic) if hint is not None else generic


_MESSAGES: dict[tuple[str, int], st.SearchStrategy] = {}


def messages(descriptor, depth: int = 0) -> st.SearchStrategy:
    """Messages of ``descriptor``: a generic draw over its fields, or a seed
    with a few fields fuzzed on top."""
    key = (descriptor.full_name, min(depth, MAX_DEPTH))
    if key not in _MESSAGES:
        _MESSAGES[key] = _messages(descriptor, key[1])
    return _MESSAGES[key]


def _messages(descriptor, depth: int) -> st.SearchStrategy:
    cls = message_class(descriptor)
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        return timestamps(cls)
    if name == "google.protobuf.Duration":
        return durations(cls)
    fields = list(descriptor.fields)

    @st.composite
    def build(draw):
        message = cls()
        if name in SEEDS and draw(st.booleans()):
            message.CopyFrom(draw(SEEDS[name]))
            chosen = draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)) if fields else []
        elif depth >= MAX_DEPTH:
            chosen = [f for f in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
                      if f.type != T.TYPE_MESSAGE] if fields else []
        else:
            chosen = draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True)) if fields else []
        for field in chosen:
            _set(draw, message, field, depth)
        finish = FINISHERS.get(name)
        if finish is not None:
            finish(draw, message)
        return message

    return build()


def _set(draw, message, field, depth: int) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        entries = draw(st.dictionaries(_scalar(key_field), st.just(None), max_size=3))
        target = getattr(message, field.name)
        for key in entries:
            if value_field.type == T.TYPE_MESSAGE:
                target[key].CopyFrom(draw(field_values(value_field, depth)))
            else:
                target[key] = draw(field_values(value_field, depth))
        return
    if field.is_repeated:
        values = draw(st.lists(field_values(field, depth), max_size=4))
        target = getattr(message, field.name)
        for value in values:
            if field.type == T.TYPE_MESSAGE:
                target.add().CopyFrom(value)
            else:
                target.append(value)
        return
    value = draw(field_values(field, depth))
    if field.type == T.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


# --- valid-looking values ------------------------------------------------------

NETWORK = "N_fuzz"
MACS = ["f0:d7:aa:df:59:a2", "F0-D7-AA-DF-59-A2", "f0d7.aadf.59a2", "f0d7aadf59a2", "F0:D7:AA:DF:59:A2\n",
        " f0:d7:aa:df:59:a2 ", "f0:d7:aa:df:59:a2\x00", "f0:d7:aa:df:59", "gg:d7:aa:df:59:a2"]
EVENT_IDS = ["1", "0", "9223372036854775807", "9223372036854775808", "9999999999999999999", "18446744073709551616",
             "-1", "01", "1\n", "1 ", "abc", ""]
HINTS["connlog.api.v1.ListConnectionEventsRequest.parent"] = st.one_of(
    st.sampled_from(["networks/-", f"networks/{NETWORK}", "networks/N_1", "networks/", "networks/-/", "networks/*",
                     f"networks/{NETWORK}\n", f"networks/{NETWORK}\x00", "networks/" + "n" * 129, "networks/%2F",
                     "networks/\u00e9"]),
    TEXT.map(lambda t: "networks/" + t))
HINTS["connlog.api.v1.GetConnectionEventRequest.name"] = st.builds(
    "networks/{}/connectionEvents/{}".format,
    st.one_of(st.sampled_from([NETWORK, "-", "N_1", NETWORK + "\n", "a\x00", ""]), TEXT),
    st.one_of(st.sampled_from(EVENT_IDS), TEXT))
for _mac_field in ("client_mac_address", "bssid"):
    HINTS[f"connlog.api.v1.ListConnectionEventsRequest.{_mac_field}"] = st.sampled_from(MACS)
HINTS["connlog.api.v1.Client.mac_address"] = st.sampled_from(MACS)
HINTS["connlog.api.v1.ConnectionEvent.network_id"] = st.sampled_from([NETWORK, "N_1", NETWORK + "\n", "-", ""])
HINTS["connlog.api.v1.ListConnectionEventsRequest.page_size"] = st.sampled_from(
    [0, 1, 2, 1000, 1001, -1, 2**31 - 1, -(2**31)])
HINTS["connlog.api.v1.ListSyncSourcesRequest.page_size"] = st.sampled_from([0, 1, 1000, 1001, -1, 2**31 - 1])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MICROS = [0, -1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30, 253402300799_999_999, 253402300800_000_000,
          -62135596800_000_000, -62135596800_000_001, int(_NOW * 1e6)]
IDS = [0, 1, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]


def crafted_tokens(digest: str) -> st.SearchStrategy[str]:
    """Page tokens with this request's digest (so the position is used), and
    broken ones of every kind."""
    positions = st.builds(lambda micros, event_id: _b64(json.dumps([micros, event_id, digest]).encode()),
                          st.one_of(st.sampled_from(MICROS), integers(-(2**70), 2**70)),
                          st.one_of(st.sampled_from(IDS), integers(-(2**70), 2**70)))
    odd = st.sampled_from([
        _b64(json.dumps([1.5, 1, digest]).encode()), _b64(json.dumps([True, True, digest]).encode()),
        _b64(json.dumps([None, 1, digest]).encode()), _b64(f"[1e999, 1, \"{digest}\"]".encode()),
        _b64(json.dumps([1, 1]).encode()), _b64(json.dumps([1, 1, digest, 1]).encode()),
        _b64(json.dumps({"a": 1}).encode()), _b64(b"null"), _b64(b"\xff\xfe"), _b64(b""),
        _b64(b"[" * 100_000 + b"]" * 100_000), _b64(b"[" * 3000), _b64(("[" + "1" * 5000 + ",1,\"x\"]").encode()),
        _b64(json.dumps([1, 1, digest + "\x00"]).encode()), "!!!", "====", "a", "a" * 100_000, "\x00", "\u00e9",
    ])
    return st.one_of(positions, odd)


def _finish_list_request(draw, request) -> None:
    if draw(st.booleans()):
        request.page_token = draw(crafted_tokens(page_token.request_digest(request)))


FINISHERS["connlog.api.v1.ListConnectionEventsRequest"] = _finish_list_request

# vendor sync: a closed loopback port stands in for a vendor
DEAD_PORT = None  # set by the module fixture


def _dead_url() -> str:
    return f"http://127.0.0.1:{DEAD_PORT}/api/v1"


@dataclass
class Known:
    """Names that exist, so that fuzzed names hit real objects too (filled
    by the module fixture)."""

    source_ids: list[str]
    event_names: list[str]
    tenant_id: str = ""
    admin_key: str = "clk_x_y"
    pinned_source_id: str = ""


KNOWN = Known([], [])


def _source_names(suffixes=("", "/status")) -> st.SearchStrategy[str]:
    ids = st.one_of(st.sampled_from(["0123456789abcdef", "", "a/b", "-", "\x00", "x" * 5000, "%2F", ".."]), TEXT)
    known = st.deferred(lambda: st.sampled_from(KNOWN.source_ids or ["none"]))
    return st.builds(lambda i, suffix: f"syncSources/{i}{suffix}", st.one_of(known, ids), st.sampled_from(suffixes))


for _name_field in ("GetSyncSourceRequest", "DeleteSyncSourceRequest", "RunSyncSourceRequest",
                    "GetSyncSourceStatusRequest"):
    HINTS[f"connlog.api.v1.{_name_field}.name"] = _source_names()
HINTS["connlog.api.v1.SyncSource.name"] = _source_names(("",))
HINTS["connlog.api.v1.ListSyncSourcesRequest.page_token"] = st.one_of(
    st.deferred(lambda: st.sampled_from(KNOWN.source_ids or ["none"])), st.sampled_from(["\x00", "\uffff", "z" * 5000]))
HINTS["connlog.api.v1.SyncSource.base_url"] = st.one_of(
    st.deferred(lambda: st.just(_dead_url())),
    st.sampled_from(["http://", "https://", "http:///x", "ftp://127.0.0.1/", "http://127.0.0.1:99999/",
                     "http://127.0.0.1:-1/", "http://[::1/", "http://[zz]/", "http://127.0.0.1:0/", "//127.0.0.1/",
                     "http://127.0.0.1\x00/", "http://user:pass@127.0.0.1:1/", "HTTP://127.0.0.1:1/",
                     "http://127.0.0.1:1/" + "p" * 5000, "http://127.0.0.1:1/\n", "javascript:alert(1)",
                     "http://\u00e9.invalid/", "http://a b/"]),
    TEXT.map(lambda t: "http://127.0.0.1:1/" + t))
HINTS["connlog.api.v1.SyncSource.vendor"] = st.sampled_from([pb.VENDOR_MERAKI, pb.VENDOR_MOJO])
HINTS["connlog.api.v1.SyncSource.clients"] = st.sampled_from(MACS + ["k1", "k74272e", " ", "k1\x00"])
HINTS["connlog.api.v1.SyncSource.credential"] = st.sampled_from(["key", "kid:kvalue", ":", "a" * 10_000, "k\x00"])
HINTS["connlog.api.v1.SyncSource.network_id"] = st.sampled_from([NETWORK, "N_sync_fuzz", NETWORK + "\n", "-"])
HINTS["connlog.api.v1.SyncSource.rate_limit_per_second"] = st.sampled_from(
    [0.0, 1e-300, 5e-324, 1e-9, 0.001, 10000.0, 10000.5, -0.0, math.nan, math.inf])
_MASK_PATHS = sorted({f.name for f in spb.SyncSource.DESCRIPTOR.fields}) + [
    "", "sync_source", "sync_source.base_url", "base_url.x", "*", "Base_Url", "display_name\x00"]
HINTS["google.protobuf.FieldMask.paths"] = st.sampled_from(_MASK_PATHS)


def _sync_seed() -> st.SearchStrategy:
    def make(vendor, clients):
        source = spb.SyncSource(vendor=vendor, base_url=_dead_url(), network_id="N_sync_fuzz", clients=clients,
                                credential="kid:kvalue", display_name="fuzz")
        source.poll_interval.FromSeconds(3600)
        return source

    return st.deferred(lambda: st.builds(make, st.sampled_from([pb.VENDOR_MERAKI, pb.VENDOR_MOJO]),
                                         st.sampled_from([["f0:d7:aa:df:59:a2"], ["aa:bb:cc:dd:ee:ff"]])))


SEEDS["connlog.api.v1.SyncSource"] = _sync_seed()
# one time for the whole run: a seed must serialize the same every time it is drawn
SEED_TIME = now().replace(microsecond=0) - dt.timedelta(minutes=30)
SEEDS["connlog.api.v1.ConnectionEvent"] = st.one_of(
    st.builds(lambda minutes: simple_event(NETWORK, when=SEED_TIME + dt.timedelta(minutes=minutes)),
              st.integers(0, 20)),
    st.builds(lambda: full_event(SEED_TIME)),
)
SEEDS["connlog.api.v1.ListConnectionEventsRequest"] = st.builds(
    query_service_pb2.ListConnectionEventsRequest, parent=st.sampled_from([f"networks/{NETWORK}", "networks/-"]),
    page_size=st.sampled_from([0, 1, 2]))
# insights: valid ranges around the fuzzed network's events, every grouping, crafted page tokens
_WINDOWS = st.sampled_from([(SEED_TIME - dt.timedelta(hours=2), SEED_TIME + dt.timedelta(hours=2)),
                            (SEED_TIME - dt.timedelta(days=40), SEED_TIME + dt.timedelta(days=1))])
_GROUP_BY = st.lists(st.sampled_from(sorted(insights_service_pb2.GroupBy.values())), max_size=3)


def _ranged(cls, window, **fields):
    request = cls(**fields)
    request.start_time.FromDatetime(window[0])
    request.end_time.FromDatetime(window[1])
    return request


SEEDS["connlog.api.v1.SummarizeConnectionsRequest"] = st.builds(
    lambda window, group_by, bucket: _ranged(
        insights_service_pb2.SummarizeConnectionsRequest, window, parent=f"networks/{NETWORK}", group_by=group_by,
        **({"bucket_duration": duration_pb2.Duration(seconds=bucket)} if bucket else {})),
    _WINDOWS, _GROUP_BY, st.sampled_from([0, 60, 3600, 86400]))
SEEDS["connlog.api.v1.SummarizeTimeToConnectRequest"] = st.builds(
    lambda window, group_by, parent: _ranged(insights_service_pb2.SummarizeTimeToConnectRequest, window,
                                             parent=parent, group_by=group_by),
    _WINDOWS, _GROUP_BY, st.sampled_from([f"networks/{NETWORK}", "networks/-"]))
HINTS["connlog.api.v1.ListClientSessionsRequest.parent"] = st.one_of(
    st.builds("networks/{}/clients/{}".format, st.sampled_from([NETWORK, "-", "N_1", "", NETWORK + "\n"]),
              st.one_of(st.sampled_from(MACS + ["k1", "", "a/b", "x" * 2000]), TEXT)),
    TEXT.map(lambda t: "networks/-/clients/" + t))
SEEDS["connlog.api.v1.ListClientSessionsRequest"] = st.builds(
    insights_service_pb2.ListClientSessionsRequest,
    parent=st.sampled_from([f"networks/{NETWORK}/clients/{m}" for m in MACS[:4]] + ["networks/-/clients/k1"]),
    page_size=st.sampled_from([0, 1, 2]))


def _finish_insights_request(draw, request) -> None:
    if draw(st.booleans()):
        digest = page_token.request_digest(request)
        request.page_token = draw(st.one_of(
            st.builds(lambda offset: page_token.encode_offset(offset, digest), integers(-(2**63), 2**63 - 1)),
            crafted_tokens(digest)))


for _insight in ("SummarizeConnectionsRequest", "SummarizeTimeToConnectRequest", "ListClientSessionsRequest"):
    FINISHERS[f"connlog.api.v1.{_insight}"] = _finish_insights_request
SEEDS["connlog.api.v1.GetConnectionEventRequest"] = st.deferred(lambda: st.builds(
    query_service_pb2.GetConnectionEventRequest, name=st.sampled_from(KNOWN.event_names or ["none"])))
SEEDS["connlog.api.v1.GetNetworkWirelessClientConnectivityEventsRequest"] = st.builds(
    meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest, network_id=st.just(NETWORK),
    client_id=st.sampled_from(["f0:d7:aa:df:59:a2", "F0-D7-AA-DF-59-A2"]))
SEEDS["connlog.api.v1.GetNetworkRequest"] = st.just(meraki_service_pb2.GetNetworkRequest(network_id=NETWORK))
for _org in ("GetOrganizationNetworksRequest", "GetOrganizationInventoryDevicesRequest"):
    SEEDS[f"connlog.api.v1.{_org}"] = st.deferred(lambda org=_org: st.builds(
        getattr(meraki_service_pb2, org), organization_id=st.just(KNOWN.tenant_id)))
SEEDS["connlog.api.v1.ListClientConnectionLogsRequest"] = st.builds(
    mojo_service_pb2.ListClientConnectionLogsRequest, clientmacaddress=st.sampled_from(MACS[:4]))


def _json_body(value) -> st.SearchStrategy:
    return st.just(httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(value).encode()))


SEEDS["connlog.api.v1.LoginWithApiKeyRequest"] = st.deferred(lambda: st.builds(
    mojo_service_pb2.LoginWithApiKeyRequest, client_identifier=st.just("fuzz"), timeout=st.just("30"),
    body=_json_body({"type": "apikeycredentials", "keyId": KNOWN.admin_key.split("_")[1],
                     "keyValue": KNOWN.admin_key})))
ZEQUENZE_LOG = {"network_name": "Office WiFi 5GHz", "network_type": "wi", "frequency": 5.2, "quality_metric": "rssi",
                "quality_value": -60, "bssid": "f0:d7:aa:df:59:a2", "inbytes": 10, "outbytes": 20}
SEEDS["connlog.api.v1.CreateDeviceAppConnectionLogRequest"] = st.builds(
    zequenze_service_pb2.CreateDeviceAppConnectionLogRequest, body=_json_body(ZEQUENZE_LOG))

# Vendor shapes: the strings their parameters are parsed from.
NUMBERS_AS_TEXT = ["0", "1", "-1", "1000", "1001", "2147483647", "2147483648", "9223372036854775807",
                   "9223372036854775808", "1e3", "1.5", "nan", "inf", "-inf", "0x10", "+5", " 7 ", "1_000",
                   "\u0661", "9" * 5000, "", "253402300799", "253402300800", "-62135596801"]
TIMES_AS_TEXT = ["2024-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59",
                 "0001-01-01T00:00:00+23:59", "2024-02-30T00:00:00Z", "1e308", "-1e308", "1699999999.999999999",
                 str(_NOW), str(_NOW * 1000)]
_MERAKI = "connlog.api.v1.GetNetworkWirelessClientConnectivityEventsRequest."
for _f in ("per_page", "timespan", "ssid_number"):
    HINTS[_MERAKI + _f] = st.sampled_from(NUMBERS_AS_TEXT)
for _f in ("t0", "t1"):
    HINTS[_MERAKI + _f] = st.sampled_from(TIMES_AS_TEXT + NUMBERS_AS_TEXT)
for _f in ("starting_after", "ending_before"):
    HINTS[_MERAKI + _f] = st.one_of(
        st.sampled_from(["last", _b64(b"[" * 100_000), _b64(b"[1e999,1]"), _b64(b"[1,1]")]),
        st.builds(lambda a, b: _b64(json.dumps([a, b]).encode()), st.sampled_from(MICROS), st.sampled_from(IDS)))
HINTS[_MERAKI + "network_id"] = st.sampled_from([NETWORK, "N_1", "", "\x00", "n" * 200, "N\n"])
HINTS[_MERAKI + "client_id"] = st.sampled_from(MACS + ["k1", "", "k" * 200])
HINTS[_MERAKI + "types"] = st.sampled_from(["auth", "assoc", "dhcp", "nope", ""])
HINTS[_MERAKI + "band"] = st.sampled_from(["2.4", "5", "6", "7", ""])
HINTS[_MERAKI + "sort_order"] = st.sampled_from(["ascending", "descending", "up", ""])
HINTS[_MERAKI + "included_severities"] = st.sampled_from(["good", "info", "warn", "bad", "ugly"])
for _f in ("GetOrganizationNetworksRequest.organization_id", "GetOrganizationInventoryDevicesRequest.organization_id"):
    HINTS["connlog.api.v1." + _f] = st.sampled_from(["1", "0", "-1", "9" * 40, "", "\x00"])
HINTS["connlog.api.v1.GetNetworkRequest.network_id"] = st.sampled_from([NETWORK, "N_1", "", "\x00", "n" * 200])
_MOJO = "connlog.api.v1.ListClientConnectionLogsRequest."
HINTS[_MOJO + "clientmacaddress"] = st.sampled_from(MACS)
for _f in ("fromtime", "totime", "limit"):
    HINTS[_MOJO + _f] = st.sampled_from(NUMBERS_AS_TEXT)
HINTS[_MOJO + "logtype"] = st.sampled_from(["success", "failure", "all", "x", ""])
HINTS[_MOJO + "failuretype"] = st.sampled_from(["association", "authentication", "dhcp", "x", ""])
HINTS["connlog.api.v1.LoginWithApiKeyRequest.timeout"] = st.sampled_from(NUMBERS_AS_TEXT)

# JSON bodies: objects with the keys each shape reads, values of every kind.
BODY_KEYS = ["type", "keyId", "keyValue", "data", "network_name", "network_type", "network_security",
             "network_mccmnc", "authentication", "bssid", "cellid", "quality_metric", "frequency", "link_speed",
             "quality_value", "inbytes", "outbytes", "latitude", "longitude", "roaming", "x", "", "\x00"]
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT,
    st.sampled_from(["apikeycredentials", "wi", "mo", "opn", "wp2", "rssi", "f0:d7:aa:df:59:a2", "5.2"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(BODY_KEYS), inner, max_size=4)), max_leaves=12)
RAW_BODIES = st.sampled_from([
    b"", b"{", b"null", b"[]", b"{}", b"\xff\xfe", b'{"a": NaN}', b'{"a": 1e999}', b'{"a": "\\ud800"}',
    b"[" * 100_000, b'{"data": "' + b"[" * 5000 + b'"}', b'{"latitude": ' + b"9" * 5000 + b"}",
    b'{"a":1,"a":2}', b"\x00", b'{"type": "apikeycredentials", "keyId": "\\u0000", "keyValue": "x"}',
])


def _json_bytes(value) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits
        return json.dumps(value).encode()


def _finish_http_body(draw, body) -> None:
    if draw(st.booleans()):
        body.content_type = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                  "text/plain", "", "application/x-www-form-urlencoded"]))
        choice = draw(st.sampled_from(["object", "any", "raw", "data-string", "valid-log-fuzzed", "valid-log-fuzzed"]))
        if choice == "valid-log-fuzzed":
            log = dict(ZEQUENZE_LOG)
            log.update(draw(st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUES, min_size=1, max_size=3)))
            body.data = _json_bytes(log)
        elif choice == "object":
            body.data = _json_bytes(draw(st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUES, max_size=8)))
        elif choice == "any":
            body.data = _json_bytes(draw(JSON_VALUES))
        elif choice == "data-string":
            inner = _json_bytes(draw(st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUES, max_size=6)))
            body.data = _json_bytes({"data": inner.decode("utf-8", "replace")})
        else:
            body.data = draw(RAW_BODIES)


FINISHERS["google.api.HttpBody"] = _finish_http_body


# --- the services --------------------------------------------------------------

@dataclass
class Fuzzing:
    channels: dict[str, grpc.aio.Channel]
    metadata: dict[str, tuple]  # method full name -> call metadata


async def _register_sync(server, ctx):
    """The vendor-sync service without its schedule: only RunSyncSource
    polls (fuzzed sources must not be polled in the background)."""
    from connlog.core.sealing import Sealer
    from connlog.store.sync import SyncStore
    from connlog.vendorsync.servicer import VendorSyncServicer
    from connlog.vendorsync.worker import SyncWorker

    sealer = Sealer.from_settings(ctx.settings)  # the session's sealing key (tests/conftest.py)
    worker = SyncWorker(ctx.settings, SyncStore(ctx.pool), ctx.metrics, sealer)

    async def idle():
        try:
            await asyncio.Event().wait()
        finally:
            await worker.close()

    ctx.background.append(asyncio.create_task(idle()))
    vendor_sync_service_pb2_grpc.add_VendorSyncServiceServicer_to_server(VendorSyncServicer(ctx, worker, sealer),
                                                                         server)
    return [spb.DESCRIPTOR.services_by_name["VendorSyncService"].full_name]


@pytest.fixture(scope="module")
async def fuzzing(suite, pool):
    """Query and vendor-sync services of their own (no Meraki rate limit to
    hide answers behind 429s; no background polls), the suite's ingest, and
    one tenant with an administrator and a device key."""
    global DEAD_PORT
    from connlog.query.servicer import register as register_query

    # a port bound but not listening: connecting to it is refused, and no
    # other socket can take it while the module runs
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    DEAD_PORT = reserved.getsockname()[1]
    settings = suite.settings.model_copy(update={
        "meraki_rate_limit_per_second": 1e9, "sync_ingest_address": suite.ingest_address,
        "sync_http_attempts": 1, "sync_http_timeout_seconds": 2.0, "sync_backoff_base_seconds": 0.01,
    })
    query = await start_service("query-fuzz", settings, register_query, port=0, pool=pool)
    sync = await start_service("vendor-sync-fuzz", settings, _register_sync, port=0, pool=pool)
    accounts = AccountStore(pool)
    tenant_id = f"t-fuzz-{secrets.token_hex(4)}"
    admin = await create_key(accounts, tenant_id=tenant_id, role=Role.ADMINISTRATOR)
    device = await create_key(accounts, tenant_id=tenant_id, role=Role.DEVICE, device_id="DEV-FUZZ")
    admin_md = (("authorization", f"Bearer {admin.token}"),)
    channels = {
        "ingest": grpc.aio.insecure_channel(suite.ingest_address),
        "query": grpc.aio.insecure_channel(f"127.0.0.1:{query.port}"),
        "vendor_sync": grpc.aio.insecure_channel(f"127.0.0.1:{sync.port}"),
    }
    metadata = {m.full_name: admin_md for m in METHODS}
    metadata["connlog.api.v1.ZequenzeService.CreateDeviceAppConnectionLog"] = (
        ("authorization", f"Bearer {device.token}"),)
    # something to find: events in the fuzzed network, sources to name
    reply = await ingest_service_pb2_grpc.IngestServiceStub(channels["ingest"]).IngestConnectionEvents(
        ingest_service_pb2.IngestConnectionEventsRequest(
            events=[simple_event(NETWORK, when=now() - dt.timedelta(minutes=i)) for i in range(1, 6)]),
        metadata=admin_md)
    KNOWN.event_names[:] = [r.name for r in reply.results]
    KNOWN.tenant_id, KNOWN.admin_key = tenant_id, admin.token
    sync_stub = vendor_sync_service_pb2_grpc.VendorSyncServiceStub(channels["vendor_sync"])
    ids = []
    for _ in range(2):
        source = await sync_stub.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=spb.SyncSource(
            vendor=pb.VENDOR_MERAKI, base_url=_dead_url(), credential="k", network_id="N_sync_fuzz",
            clients=["k1"])), metadata=admin_md)
        ids.append(source.name.removeprefix("syncSources/"))
    KNOWN.source_ids[:], KNOWN.pinned_source_id = ids[:1], ids[1]
    try:
        yield Fuzzing(channels, metadata)
    finally:
        for channel in channels.values():
            await channel.close()
        await query.stop(1)
        await sync.stop(1)
        reserved.close()
        # the sources the fuzzing created point nowhere: no later vendor-sync
        # service of this test session (they poll every tenant) may poll them
        async with pool.acquire() as conn:
            await conn.execute("""DELETE FROM sync_sources WHERE tenant_ref =
                                  (SELECT tenant_ref FROM tenants WHERE tenant_id = $1)""", tenant_id)


@dataclass
class Answer:
    code: grpc.StatusCode
    details: str
    response: object
    initial_metadata: dict


async def invoke(fuzzing: Fuzzing, method, payload, *, raw: bool = False) -> Answer:
    """Call ``method`` with ``payload`` (a message, a list of them for a
    client stream, or bytes when ``raw``)."""
    channel = fuzzing.channels[HOSTS[method.containing_service.name]]
    path = f"/{method.containing_service.full_name}/{method.name}"
    serialize = (lambda b: b) if raw else (lambda m: m.SerializeToString())
    deserialize = message_class(method.output_type).FromString
    if method.client_streaming:
        multicallable = channel.stream_unary(path, request_serializer=serialize, response_deserializer=deserialize)
        call = multicallable(iter(payload), metadata=fuzzing.metadata[method.full_name])
    else:
        multicallable = channel.unary_unary(path, request_serializer=serialize, response_deserializer=deserialize)
        call = multicallable(payload, metadata=fuzzing.metadata[method.full_name])
    try:
        response = await call
    except grpc.aio.AioRpcError as err:
        return Answer(err.code(), err.details() or "", None, dict(err.initial_metadata() or ()))
    return Answer(await call.code(), await call.details() or "", response, dict(await call.initial_metadata() or ()))


def _sent_text(payload) -> str:
    """Everything the caller sent, as text (internal-looking words it sent
    may come back quoted)."""
    items = payload if isinstance(payload, list) else [payload]
    return "".join(str(item) + item.SerializeToString().decode("utf-8", "replace") if not isinstance(item, bytes)
                   else item.decode("utf-8", "replace") for item in items)


def assert_no_internals(text: str, payload) -> None:
    sent = None
    for marker in INTERNALS:
        if marker in text:
            sent = _sent_text(payload) if sent is None else sent
            assert marker in sent, f"internal text {marker!r} in the answer: {text[:2000]!r}"


def server_texts(message, path: str = ""):
    """(path, text) of every server-written string field of a response."""
    for field, value in message.ListFields():
        if field.type == T.TYPE_MESSAGE and not (field.message_type.GetOptions().map_entry):
            for index, item in enumerate(value if field.is_repeated else [value]):
                yield from server_texts(item, f"{path}{field.name}[{index}]." if field.is_repeated
                                        else f"{path}{field.name}.")
        elif field.type == T.TYPE_STRING and field.name in SERVER_TEXT_FIELDS:
            for item in value if field.is_repeated else [value]:
                yield path + field.name, item


def assert_no_exception_text(text: str, payload) -> None:
    assert_no_internals(text, payload)
    found = EXCEPTION_NAME.search(text)
    if found:
        assert found.group(0) in _sent_text(payload), f"an exception's name in the answer: {text[:2000]!r}"


def assert_names_a_field(details: str, input_type, *, allow_request: bool = False) -> None:
    match = FIELD_PATH.match(details)
    assert match, f"INVALID_ARGUMENT that names no field: {details[:500]!r}"
    first = match.group(1)
    allowed = set(input_type.fields_by_name) | ({"request"} if allow_request else set())
    assert first in allowed, f"INVALID_ARGUMENT names {first!r}, not a field of {input_type.name}: {details[:500]!r}"


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# Failures found in the vendor-shape servicers, which this file's authors do
# not own: excused here (each is pinned below as a strict xfail, which fails
# once it is fixed: then remove both). (reason, request -> bool)
KNOWN_VENDOR_FAILURES: dict[str, list] = {}


def _echoed_length(request) -> int:
    return sum(len(quote(str(v))) for d, value in request.ListFields() if d.name not in ("network_id", "client_id")
               for v in (value if d.is_repeated else [value]))


# Exception text in server-written response fields, in files this file's
# authors do not own (pinned below as a strict xfail): (response type, field path) -> reason
KNOWN_TEXT_LEAKS: dict[tuple[str, str], str] = {}


def _known_vendor_failure(method, payload) -> str | None:
    for reason, matches in KNOWN_VENDOR_FAILURES.get(method.full_name, ()):
        if not isinstance(payload, bytes) and matches(payload):
            return reason
    return None


def _note(text: str) -> None:
    if currently_in_test_context():  # (--hypothesis-show-statistics)
        note_event(text)


def check(method, payload, answer: Answer, *, raw: bool = False, excuse_known: bool = True) -> None:
    _note(f"{method.name}: {answer.code.name}")
    assert_no_exception_text(answer.details, payload)
    if is_vendor_shape(method):
        if answer.code != grpc.StatusCode.OK and excuse_known and (known := _known_vendor_failure(method, payload)):
            _note(f"known failure: {known}")
            return
        assert answer.code == grpc.StatusCode.OK, (answer.code, answer.details)
        status = int(answer.initial_metadata.get(STATUS_HEADER, "200"))
        _note(f"{method.name}: HTTP {status}")
        body = answer.response.data
        assert_no_internals(body.decode("utf-8", "replace"), payload)  # (bodies hold stored records: no name check)
        if status >= 500 and excuse_known and (known := _known_vendor_failure(method, payload)):
            _note(f"known failure: {known}")
            return
        assert status < 500, (status, body[:2000])
        orjson.loads(body)  # JSON, whatever the status
        if status >= 400:  # an error body is all the server's (a 200 may hold stored records)
            assert_no_exception_text(body.decode("utf-8", "replace"), payload)
        if raw:
            assert status == 400, (status, body[:2000])
        return
    assert answer.code in CLIENT_ERRORS, (answer.code, answer.details)
    if raw:
        assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, (answer.code, answer.details)
    if answer.code == grpc.StatusCode.INVALID_ARGUMENT:
        assert_names_a_field(answer.details, method.input_type, allow_request=raw)
    for result in getattr(answer.response, "results", ()):
        if result.status == ingest_service_pb2.INGEST_STATUS_REJECTED:
            assert FIELD_PATH.match(f"{result.field}: {result.reason}"), (result.field, result.reason)
    if answer.response is not None:
        for path, text in server_texts(answer.response):
            known = KNOWN_TEXT_LEAKS.get((method.output_type.full_name, path.split("[")[0]))
            if excuse_known and known and EXCEPTION_NAME.search(text):
                _note(f"known failure: {known}")
                continue
            assert_no_exception_text(text, payload)


# --- the fuzzing ---------------------------------------------------------------

REQUESTS = {m.full_name: messages(m.input_type) for m in METHODS}
STREAMS = {m.full_name: st.lists(REQUESTS[m.full_name], max_size=3) for m in METHODS if m.client_streaming}


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_every_request_gets_a_clear_answer(fuzzing, method, data):
    strategy = STREAMS[method.full_name] if method.client_streaming else REQUESTS[method.full_name]
    payload = data.draw(strategy, label="request")
    answer = await invoke(fuzzing, method, payload)
    check(method, payload, answer)


# --- undecodable bytes ----------------------------------------------------------

def _string_paths(descriptor, prefix="", depth=0):
    """(field path, list of descriptors from the top) of every string field,
    nested messages included (two levels)."""
    for field in descriptor.fields:
        if field.type == T.TYPE_STRING:
            yield prefix + field.name, [field]
        elif field.type == T.TYPE_MESSAGE and depth < 2 and not field.message_type.GetOptions().map_entry:
            for path, chain in _string_paths(field.message_type, prefix + field.name + ".", depth + 1):
                yield path, [field, *chain]


def _with_invalid_utf8(input_type, chain, garbage: bytes) -> bytes:
    """A serialized ``input_type`` whose string field at ``chain`` holds
    ``garbage`` (not UTF-8), the rest well-formed."""
    garbage = garbage.ljust(16, b"z")
    marker = "Q7zQ7zQ7zQ7zQ7zQ"  # as long as the garbage, found once
    message = message_class(input_type)()
    target = message
    for field in chain[:-1]:
        target = getattr(target, field.name).add() if field.is_repeated else getattr(target, field.name)
    last = chain[-1]
    if last.is_repeated:
        getattr(target, last.name).append(marker)
    else:
        setattr(target, last.name, marker)
    data = message.SerializeToString()
    assert data.count(marker.encode()) == 1
    return data.replace(marker.encode(), garbage)


INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82", b"\xc0\xaf"]


WITH_TEXT = [m for m in METHODS if any(True for _ in _string_paths(m.input_type))]


@pytest.mark.parametrize("method", WITH_TEXT, ids=[f"{m.containing_service.name}.{m.name}" for m in WITH_TEXT])
async def test_string_fields_that_are_not_utf8_are_invalid_argument_naming_them(fuzzing, method):
    paths = list(_string_paths(method.input_type))
    for index, (path, chain) in enumerate(paths):
        data = _with_invalid_utf8(method.input_type, chain, INVALID_UTF8[index % len(INVALID_UTF8)])
        with pytest.raises(DecodeError):
            message_class(method.input_type).FromString(data)
        payload = [data] if method.client_streaming else data
        answer = await invoke(fuzzing, method, payload, raw=True)
        check(method, payload, answer, raw=True)
        if not is_vendor_shape(method):
            assert answer.details.startswith(f"{path}: "), (path, answer.details)
        else:
            assert path.split(".")[-1] in answer.response.data.decode() or b"UTF-8" in answer.response.data


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_undecodable_bytes_are_invalid_argument(fuzzing, method, data):
    """Random bytes, or a fuzzed request cut short: INVALID_ARGUMENT (400)
    whenever the bytes are not a message (some random bytes are one)."""
    kind = data.draw(st.sampled_from(["random", "truncated"]), label="kind")
    if kind == "random":
        raw = data.draw(st.binary(min_size=1, max_size=200), label="bytes")
    else:
        whole = data.draw(REQUESTS[method.full_name], label="request").SerializeToString()
        if len(whole) < 2:
            whole = b"\x0a\x05abcde"
        raw = whole[:data.draw(st.integers(1, len(whole) - 1), label="cut")]
    try:
        message_class(method.input_type).FromString(raw)
        decodable = True
    except DecodeError:
        decodable = False
    _note(f"{method.name}: {'decodable' if decodable else 'undecodable'}")
    payload = [raw] if method.client_streaming else raw
    answer = await invoke(fuzzing, method, payload, raw=True)
    check(method, payload, answer, raw=not decodable)


async def test_a_stream_with_one_undecodable_message_is_invalid_argument(fuzzing):
    method = ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].methods_by_name[
        "StreamIngestConnectionEvents"]
    good = ingest_service_pb2.StreamIngestConnectionEventsRequest(
        events=[simple_event(NETWORK, when=now() - dt.timedelta(minutes=1))]).SerializeToString()
    bad = _with_invalid_utf8(method.input_type, [method.input_type.fields_by_name["events"],
                                                 pb.ConnectionEvent.DESCRIPTOR.fields_by_name["network_id"]], b"\xff")
    payload = [good, bad, good]
    answer = await invoke(fuzzing, method, payload, raw=True)
    check(method, payload, answer, raw=True)
    assert answer.details.startswith("events.network_id: "), answer.details


# --- pinned: every failure class found so far, so a regression fails the run
# whatever the random examples are ------------------------------------------

def _method(service: str, name: str):
    return next(m for m in METHODS if m.containing_service.name == service and m.name == name)


def _ts(seconds: int, nanos: int = 0):
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _dur(seconds: int, nanos: int = 0):
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


def _token(*values) -> str:
    return _b64(json.dumps(list(values)).encode())


def _list(**fields):
    return query_service_pb2.ListConnectionEventsRequest(parent=f"networks/{NETWORK}", **fields)


def _list_with_token(position):
    """A list request whose page token carries ``position`` with the
    request's own digest (so only the position can be wrong)."""
    request = _list()
    request.page_token = _b64(json.dumps([*position, page_token.request_digest(request)]).encode())
    return request


def _source(**fields):
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url="http://127.0.0.1:1/api/v1", credential="k",
                            network_id="N_sync_fuzz", clients=["k1"])
    for name, value in fields.items():
        if name == "poll_interval":
            source.poll_interval.CopyFrom(value)
        elif name == "clients":
            source.ClearField("clients")
            source.clients.extend(value)
        else:
            setattr(source, name, value)
    return spb.CreateSyncSourceRequest(sync_source=source)


def _update(**fields):
    request = spb.UpdateSyncSourceRequest(sync_source=_source(**fields).sync_source)
    request.sync_source.name = "syncSources/" + KNOWN.pinned_source_id  # one the fuzzing never names
    request.update_mask.paths.extend(fields)
    return request


def _body(data: bytes, content_type: str = "application/json"):
    return httpbody_pb2.HttpBody(content_type=content_type, data=data)


DEEP = b"[" * 100_000
# (label, service, method, request factory, expected field of an INVALID_ARGUMENT or None)
PINNED = [
    ("start_time nanos 1e9", "QueryService", "ListConnectionEvents", lambda: _list(start_time=_ts(0, 10**9)),
     "start_time"),
    ("start_time nanos -1", "QueryService", "ListConnectionEvents", lambda: _list(start_time=_ts(0, -1)),
     "start_time"),
    ("end_time after 9999", "QueryService", "ListConnectionEvents",
     lambda: _list(end_time=_ts(TIMESTAMP_MAX + 1)), "end_time"),
    ("end_time int64 min", "QueryService", "ListConnectionEvents", lambda: _list(end_time=_ts(-(2**63))),
     "end_time"),
    ("ssid_number beyond smallint", "QueryService", "ListConnectionEvents",
     lambda: _list(ssid_number=-(2**31)), "ssid_number"),
    ("ssid_number 40000", "QueryService", "ListConnectionEvents", lambda: _list(ssid_number=40000),
     "ssid_number"),
    ("client_id with NUL", "QueryService", "ListConnectionEvents", lambda: _list(client_id="k\x00"), "client_id"),
    ("ssid with NUL", "QueryService", "ListConnectionEvents", lambda: _list(ssid="\x00"), "ssid"),
    ("AP serial with NUL", "QueryService", "ListConnectionEvents", lambda: _list(access_point_serial="\x00"),
     "access_point_serial"),
    ("AP name with NUL", "QueryService", "ListConnectionEvents", lambda: _list(access_point_name="\x00"),
     "access_point_name"),
    ("MAC with a newline", "QueryService", "ListConnectionEvents",
     lambda: _list(client_mac_address="f0:d7:aa:df:59:a2\n"), None),
    ("parent with a newline", "QueryService", "ListConnectionEvents",
     lambda: query_service_pb2.ListConnectionEventsRequest(parent=f"networks/{NETWORK}\n"), "parent"),
    ("unknown vendor", "QueryService", "ListConnectionEvents", lambda: _list(vendor=99), "vendor"),
    ("unknown step", "QueryService", "ListConnectionEvents", lambda: _list(steps=[1, -5]), "steps"),
    ("unknown sort order", "QueryService", "ListConnectionEvents", lambda: _list(sort_order=7), "sort_order"),
    ("page_size int32 max", "QueryService", "ListConnectionEvents", lambda: _list(page_size=2**31 - 1),
     "page_size"),
    ("token: event id beyond int64", "QueryService", "ListConnectionEvents",
     lambda: _list_with_token([0, 2**63]), "page_token"),
    ("token: negative event id", "QueryService", "ListConnectionEvents",
     lambda: _list_with_token([0, -(2**63) - 1]), "page_token"),
    ("token: booleans", "QueryService", "ListConnectionEvents", lambda: _list_with_token([True, True]),
     "page_token"),
    ("token: time beyond datetime", "QueryService", "ListConnectionEvents",
     lambda: _list_with_token([2**63, 1]), "page_token"),
    ("token: deep nesting", "QueryService", "ListConnectionEvents",
     lambda: _list(page_token=_b64(DEEP + b"]" * 100_000)), "page_token"),
    ("token: 100 kB", "QueryService", "ListConnectionEvents", lambda: _list(page_token="a" * 100_000),
     "page_token"),
    ("event id beyond int64", "QueryService", "GetConnectionEvent",
     lambda: query_service_pb2.GetConnectionEventRequest(name=f"networks/{NETWORK}/connectionEvents/"
                                                               "9223372036854775808"), "name"),
    ("event name with a newline", "QueryService", "GetConnectionEvent",
     lambda: query_service_pb2.GetConnectionEventRequest(name=f"networks/{NETWORK}/connectionEvents/1\n"), "name"),
    ("source name with NUL", "VendorSyncService", "GetSyncSource",
     lambda: spb.GetSyncSourceRequest(name="syncSources/\x00"), "name"),
    ("source name with NUL (delete)", "VendorSyncService", "DeleteSyncSource",
     lambda: spb.DeleteSyncSourceRequest(name="syncSources/a\x00"), "name"),
    ("source name with NUL (run)", "VendorSyncService", "RunSyncSource",
     lambda: spb.RunSyncSourceRequest(name="syncSources/\x00", wait=True), "name"),
    ("source name with NUL (status)", "VendorSyncService", "GetSyncSourceStatus",
     lambda: spb.GetSyncSourceStatusRequest(name="syncSources/\x00/status"), "name"),
    ("list page_token with NUL", "VendorSyncService", "ListSyncSources",
     lambda: spb.ListSyncSourcesRequest(page_token="\x00"), "page_token"),
    ("update: bad name is sync_source.name", "VendorSyncService", "UpdateSyncSource",
     lambda: spb.UpdateSyncSourceRequest(sync_source=spb.SyncSource(name="x")), "sync_source"),
    ("base_url bad IPv6 host", "VendorSyncService", "CreateSyncSource", lambda: _source(base_url="http://[::1/"),
     "sync_source"),
    ("base_url port beyond 65535", "VendorSyncService", "CreateSyncSource",
     lambda: _source(base_url="http://127.0.0.1:99999/"), "sync_source"),
    ("base_url with NUL", "VendorSyncService", "CreateSyncSource",
     lambda: _source(base_url="http://127.0.0.1\x00/"), "sync_source"),
    ("display_name with NUL", "VendorSyncService", "CreateSyncSource", lambda: _source(display_name="\x00"),
     "sync_source"),
    ("credential with NUL", "VendorSyncService", "CreateSyncSource", lambda: _source(credential="k\x00"),
     "sync_source"),
    ("client with NUL", "VendorSyncService", "CreateSyncSource", lambda: _source(clients=["k\x00"]), "sync_source"),
    ("organization_id with NUL", "VendorSyncService", "CreateSyncSource",
     lambda: _source(organization_id="\x00"), "sync_source"),
    ("poll_interval int64 max", "VendorSyncService", "CreateSyncSource",
     lambda: _source(poll_interval=_dur(2**63 - 1)), "sync_source"),
    ("poll_interval signs differ", "VendorSyncService", "CreateSyncSource",
     lambda: _source(poll_interval=_dur(5, -1)), "sync_source"),
    ("poll_interval a year", "VendorSyncService", "CreateSyncSource",
     lambda: _source(poll_interval=_dur(365 * 86400)), "sync_source"),
    ("rate 5e-324", "VendorSyncService", "CreateSyncSource", lambda: _source(rate_limit_per_second=5e-324),
     "sync_source"),
    ("rate NaN", "VendorSyncService", "CreateSyncSource", lambda: _source(rate_limit_per_second=math.nan),
     "sync_source"),
    ("update: poll_interval int64 min", "VendorSyncService", "UpdateSyncSource",
     lambda: _update(poll_interval=_dur(-(2**63))), "sync_source"),
    ("update: vendor_network_id with NUL", "VendorSyncService", "UpdateSyncSource",
     lambda: _update(vendor_network_id="\x00"), "sync_source"),
    pytest.param(
        "status of a source whose vendor is unreachable", "VendorSyncService", "RunSyncSource",
        lambda: spb.RunSyncSourceRequest(name="syncSources/" + KNOWN.pinned_source_id, wait=True), None),
    # vendor shapes: an HTTP status below 500
    pytest.param(
        "Mojo login: deeply nested body", "MojoService", "LoginWithApiKey",
        lambda: mojo_service_pb2.LoginWithApiKeyRequest(client_identifier="c", timeout="30", body=_body(DEEP)), None),
    ("Mojo login: client_identifier with NUL", "MojoService", "LoginWithApiKey",
     lambda: mojo_service_pb2.LoginWithApiKeyRequest(
         client_identifier="c\x00", timeout="30", body=_body(json.dumps(
             {"type": "apikeycredentials", "keyId": KNOWN.admin_key.split("_")[1],
              "keyValue": KNOWN.admin_key}).encode())), None),
    pytest.param(
        "Mojo list: totime 9999-12-31T23:59:59Z", "MojoService", "ListClientConnectionLogs",
        lambda: mojo_service_pb2.ListClientConnectionLogsRequest(clientmacaddress="f0:d7:aa:df:59:a2",
                                                                 totime="253402300799"), None),
    pytest.param(
        "Meraki: a 5000-character deviceSerial", "MerakiService", "GetNetworkWirelessClientConnectivityEvents",
        lambda: meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest(
            network_id=NETWORK, client_id="f0:d7:aa:df:59:a2", device_serial="\u00e9" * 5000), None),
    ("Meraki: deeply nested startingAfter", "MerakiService", "GetNetworkWirelessClientConnectivityEvents",
     lambda: meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest(
         network_id=NETWORK, client_id="f0:d7:aa:df:59:a2", starting_after=_b64(DEEP)), None),
    ("Zequenze: deeply nested body", "ZequenzeService", "CreateDeviceAppConnectionLog",
     lambda: zequenze_service_pb2.CreateDeviceAppConnectionLogRequest(body=_body(DEEP)), None),
    ("Zequenze: deeply nested data string", "ZequenzeService", "CreateDeviceAppConnectionLog",
     lambda: zequenze_service_pb2.CreateDeviceAppConnectionLogRequest(
         body=_body(json.dumps({"data": "[" * 100_000}).encode())), None),
]


@pytest.mark.parametrize(("label", "service", "name", "make", "field"), PINNED,
                         ids=[(p.values if hasattr(p, "values") else p)[0] for p in PINNED])
async def test_pinned_inputs_get_a_clear_answer(fuzzing, label, service, name, make, field):
    method = _method(service, name)
    request = make()
    answer = await invoke(fuzzing, method, request)
    check(method, request, answer, excuse_known=False)
    if field is not None:
        assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, (answer.code, answer.details)
        assert answer.details.startswith(field), answer.details
