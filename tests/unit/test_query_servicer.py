"""QueryService's argument checks, calling the servicer directly with a fake
ServicerContext (tests/support/servicer_context.py says why not grpc-testing):
every refused request is INVALID_ARGUMENT naming its field, before the
store is reached; requests that pass go on to the store (here: a pool that
refuses every use). Keys are checked first, by the real KeyAuthenticator
over in-memory accounts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.auth import KeyAuthenticator
from connlog.core.principal import Role
from connlog.core.server import ServiceContext
from connlog.core.settings import Settings
from connlog.query import page_token
from connlog.query.servicer import MAX_PAGE_SIZE, QueryServicer
from tests.support.fake_store import DatabaseReached, InMemoryAccounts, NoDatabase
from tests.support.servicer_context import Aborted, call
from tests.support.services import role_key

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PARENT_REASON = "parent: must be networks/{network} or networks/-"
NAME_REASON = "name: must be networks/{network}/connectionEvents/{event_id}"


class Service:
    """A QueryServicer with no database, and a key of every role."""

    def __init__(self, servicer: QueryServicer, keys: dict[Role, str]) -> None:
        self.servicer = servicer
        self.keys = keys

    def md(self, role: Role = Role.VIEWER) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[role]}"),)

    async def list(self, request: qpb.ListConnectionEventsRequest, role: Role = Role.VIEWER) -> Any:
        """The response, or the ``Aborted`` that ended the RPC."""
        return await call(self.servicer.ListConnectionEvents, request, self.md(role))

    async def get(self, name: str, role: Role = Role.VIEWER) -> Any:
        """The event, or the ``Aborted`` that ended the RPC."""
        return await call(self.servicer.GetConnectionEvent, qpb.GetConnectionEventRequest(name=name), self.md(role))


@pytest.fixture
async def service() -> Service:
    accounts = InMemoryAccounts()
    keys = {role: (await role_key(accounts, "t-unit", role)).token for role in Role}
    # metrics: QueryServicer keeps none of its own
    ctx = ServiceContext(Settings(), NoDatabase(), KeyAuthenticator(accounts, 0), metrics=None)
    return Service(QueryServicer(ctx), keys)


def ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


NOW = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())


def req(parent: str = "networks/N_1", **fields: Any) -> qpb.ListConnectionEventsRequest:
    return qpb.ListConnectionEventsRequest(parent=parent, **fields)


def _token(request: qpb.ListConnectionEventsRequest) -> str:
    """A page token issued for ``request``'s parameters."""
    return page_token.encode(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 5, page_token.request_digest(request))


REFUSED = [
    ("no parent", req(""), PARENT_REASON),
    ("parent without a network", req("networks/"), PARENT_REASON),
    ("parent not a collection", req("N_1"), PARENT_REASON),
    ("parent of an event", req("networks/N_1/connectionEvents/1"), PARENT_REASON),
    ("parent with a bad network", req("networks/_N"), PARENT_REASON),
    ("negative page size", req(page_size=-1), f"page_size: must be 0-{MAX_PAGE_SIZE}"),
    ("page size over the maximum", req(page_size=MAX_PAGE_SIZE + 1), f"page_size: must be 0-{MAX_PAGE_SIZE}"),
    ("client id with NUL", req(client_id="k\x00"), "client_id: must not contain NUL characters"),
    ("client id too long", req(client_id="k" * 1025), "client_id: must be at most 1024 characters"),
    ("client MAC not a MAC", req(client_mac_address="nope"), "client_mac_address: 'nope' is not a MAC address"),
    ("start before year 1", req(start_time=ts(-62135596801)),
     "start_time: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    ("end after 9999", req(end_time=ts(253402300800)),
     "end_time: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    ("start nanos", req(start_time=ts(NOW, -1)), "start_time: nanos must be 0-999999999"),
    ("end before start", req(start_time=ts(NOW), end_time=ts(NOW - 1)), "end_time: must be after start_time"),
    ("end at start", req(start_time=ts(NOW), end_time=ts(NOW)), "end_time: must be after start_time"),
    ("step unspecified", req(steps=[0]), "steps: invalid value 0"),
    ("unknown step", req(steps=[pb.CONNECTION_STEP_DHCP, 999]), "steps: invalid value 999"),
    ("unknown outcome", req(outcomes=[42]), "outcomes: invalid value 42"),
    ("unknown severity", req(severities=[-1]), "severities: invalid value -1"),
    ("unknown band", req(bands=[9]), "bands: invalid value 9"),
    ("SSID with NUL", req(ssid="a\x00"), "ssid: must not contain NUL characters"),
    ("SSID number 256", req(ssid_number=256), "ssid_number: must be 0-255"),
    ("SSID number negative", req(ssid_number=-1), "ssid_number: must be 0-255"),
    ("AP serial too long", req(access_point_serial="s" * 1025), "access_point_serial: must be at most 1024"),
    ("AP name with NUL", req(access_point_name="\x00"), "access_point_name: must not contain NUL characters"),
    ("BSSID not a MAC", req(bssid="zz"), "bssid: 'zz' is not a MAC address"),
    ("unknown vendor", req(vendor=99), "vendor: invalid value 99"),
    ("unknown sort order", req(sort_order=7), "sort_order: invalid value 7"),
    ("page token not a token", req(page_token="garbage!"), "page_token: malformed"),
    ("page token too long", req(page_token="A" * 513), "page_token: malformed"),
    ("page token of another request", req(client_id="k2", page_token=_token(req(client_id="k1"))),
     "page_token: was issued for a request with other parameters"),
]


@pytest.mark.parametrize(("request_", "details"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_list_arguments_are_refused_naming_the_field(
    service: Service, request_: qpb.ListConnectionEventsRequest, details: str
) -> None:
    result = await service.list(request_)
    assert isinstance(result, Aborted), result
    assert result.code is INVALID
    assert result.details.startswith(details), result.details


ACCEPTED = [
    ("every network", req("networks/-")),
    ("page size 0 is the default", req(page_size=0)),
    ("page size at the maximum", req(page_size=MAX_PAGE_SIZE)),
    ("every filter", req(client_id="k1", client_mac_address="F0-D7-AA-DF-59-A2", start_time=ts(NOW - 60),
                         end_time=ts(NOW), steps=[pb.CONNECTION_STEP_DHCP], outcomes=[pb.OUTCOME_FAILURE],
                         severities=[pb.SEVERITY_BAD], bands=[pb.BAND_5_GHZ], ssid="corp", ssid_number=0,
                         access_point_serial="Q2", access_point_name="lobby", bssid="0011.2233.4455",
                         failure_codes=[8], vendor=pb.VENDOR_MERAKI, sort_order=qpb.SORT_ORDER_DESCENDING)),
    ("times at Timestamp's bounds", req(start_time=ts(-62135596800), end_time=ts(253402300799, 999_999_999))),
    ("a token of this request at another page size", req(client_id="k1", page_size=10,
                                                          page_token=_token(req(client_id="k1", page_size=99)))),
]


@pytest.mark.parametrize("request_", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
async def test_valid_list_arguments_go_on_to_the_store(
    service: Service, request_: qpb.ListConnectionEventsRequest
) -> None:
    with pytest.raises(DatabaseReached):
        await service.list(request_)


@pytest.mark.parametrize("name", [
    "", "networks/N_1", "networks/N_1/connectionEvents/", "networks/N_1/connectionEvents/x",
    "networks/-/connectionEvents/1", "networks/N_1/connectionEvents/9223372036854775808",
    "networks/N_1/connectionEvents/1\n",
])
async def test_get_refuses_names_that_are_not_event_names(service: Service, name: str) -> None:
    result = await service.get(name)
    assert isinstance(result, Aborted) and result.code is INVALID
    assert result.details == NAME_REASON


async def test_get_of_a_valid_name_goes_on_to_the_store(service: Service) -> None:
    with pytest.raises(DatabaseReached):
        await service.get("networks/N_1/connectionEvents/9223372036854775807")


@pytest.mark.parametrize(("metadata", "code", "details"), [
    ((), grpc.StatusCode.UNAUTHENTICATED, "missing API key: send 'authorization: Bearer <key>'"),
    ((("authorization", "Basic abc"),), grpc.StatusCode.UNAUTHENTICATED, "missing API key"),
    ((("authorization", "Bearer nope"),), grpc.StatusCode.UNAUTHENTICATED, "invalid or revoked API key"),
    ((("authorization", "Bearer clk_0123456789abcdef_secret"),), grpc.StatusCode.UNAUTHENTICATED,
     "invalid or revoked API key"),
])
async def test_keys_are_checked_before_arguments(
    service: Service, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode, details: str
) -> None:
    for method, request in [(service.servicer.ListConnectionEvents, req("not a parent", page_size=-1)),
                            (service.servicer.GetConnectionEvent, qpb.GetConnectionEventRequest(name="x"))]:
        result = await call(method, request, metadata)
        assert isinstance(result, Aborted) and result.code is code
        assert result.details.startswith(details)


@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, True), (Role.OPERATOR, True),
                                               (Role.ADMINISTRATOR, True), (Role.SUPER_USER, True),
                                               (Role.DEVICE, False), (Role.SYNC_SERVICE, False)])
async def test_which_roles_may_read(service: Service, role: Role, allowed: bool) -> None:
    for call_ in (service.list(req("bad parent"), role), service.get("bad name", role)):
        result = await call_
        assert isinstance(result, Aborted)
        if allowed:
            assert result.code is INVALID
        else:
            assert result.code is grpc.StatusCode.PERMISSION_DENIED
            assert result.details == f"a {role.value} key may not read events"
