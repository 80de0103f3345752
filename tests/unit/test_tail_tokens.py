"""The live tail's tokens, contract and positions, without a database:
resume tokens (connlog.query.servicer.parse_resume_token), the watch
request's filter fields (the same as the listing's), and a watcher's
buffer, batches, resume positions and drop (connlog.query.tail.Watcher)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.validation import InvalidArgument
from connlog.query.servicer import parse_resume_token
from connlog.query.tail import BATCH_EVENTS, EndReason, WatchEnded, Watcher
from connlog.store.events import EventFilter, ReadEvent
from connlog.store.feed import FACT_COLUMNS, FeedEvent, FeedPosition

# --- tokens -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [FeedPosition(0), FeedPosition(771, 12), FeedPosition(2**63 - 1, 2**63 - 1)])
def test_a_resume_token_names_its_position(position):
    assert parse_resume_token(position.token()) == position


def test_no_token_starts_now():
    assert parse_resume_token("") is None


@pytest.mark.parametrize("token", ["x", "!!!!", "AAAA", FeedPosition(1).token() + "AA", "_" * 22, "é" * 22,
                                   " " + FeedPosition(1).token()])
def test_a_bad_token_is_an_invalid_argument_naming_resume_token(token):
    with pytest.raises(InvalidArgument) as err:
        parse_resume_token(token)
    assert err.value.field == "resume_token"


# --- the contract -----------------------------------------------------------------------------------------------

_NOT_FILTERS = {"parent", "page_size", "page_token", "sort_order"}


def test_the_watch_request_has_every_filter_of_the_listing_with_its_number_and_type():
    listing = qpb.ListConnectionEventsRequest.DESCRIPTOR
    watch = qpb.WatchConnectionEventsRequest.DESCRIPTOR
    filters = {f.name: f for f in listing.fields if f.name not in _NOT_FILTERS}
    assert filters, "the listing has filters"
    for name, field in filters.items():
        mine = watch.fields_by_name.get(name)
        assert mine is not None, name
        assert (mine.number, mine.type, mine.is_repeated, mine.has_presence) == (
            field.number, field.type, field.is_repeated, field.has_presence), name
        assert (mine.enum_type and mine.enum_type.full_name) == (field.enum_type and field.enum_type.full_name)
    assert set(watch.fields_by_name) == set(filters) | {"parent", "resume_token"}


# --- a watcher's positions --------------------------------------------------------------------------------------


def _feed_event(xid: int, event_id: int, step: int = pb.CONNECTION_STEP_ASSOCIATION) -> FeedEvent:
    event = pb.ConnectionEvent(network_id="N_1", step=step)
    when = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    event.occur_time.FromDatetime(when)
    facts = dict.fromkeys(FACT_COLUMNS, 0) | {"network_ref": 1, "step": step, "occurred_at": when}
    return FeedEvent(1, 1, FeedPosition(xid, event_id), ReadEvent.of(event, event_id), facts)


START = FeedPosition(100)


def _watcher(start: FeedPosition = START, buffer: int = 1000, flt: EventFilter | None = None) -> Watcher:
    return Watcher(1, flt or EventFilter(), start, buffer, heartbeat_seconds=3600)


async def test_a_batch_resumes_after_its_last_event_or_at_the_position_when_nothing_is_left():
    w = _watcher()
    for i in range(1, BATCH_EVENTS + 6):
        assert w.offer(_feed_event(100, i))
    w.advance(FeedPosition(110))
    first = await w.next_batch()
    assert [r.event_id for r in first.events] == list(range(1, BATCH_EVENTS + 1))
    assert first.resume == FeedPosition(100, BATCH_EVENTS)  # more is buffered: right after the last one sent
    second = await w.next_batch()
    assert len(second.events) == 5
    assert second.resume == FeedPosition(110)  # nothing left: every event up to the position is handled


async def test_events_at_or_before_the_position_are_not_sent_again():
    w = _watcher(FeedPosition(100, 5))
    for event_id in (4, 5, 6):
        w.offer(_feed_event(100, event_id))
    assert [r.event_id for r in (await w.next_batch()).events] == [6]


async def test_filtered_out_events_move_the_position_but_are_not_sent():
    w = _watcher(flt=EventFilter(steps=[pb.CONNECTION_STEP_DHCP]))
    w.offer(_feed_event(101, 1))
    w.offer(_feed_event(101, 2, pb.CONNECTION_STEP_DHCP))
    w.advance(FeedPosition(102))
    batch = await w.next_batch()
    assert [r.event_id for r in batch.events] == [2] and batch.resume == FeedPosition(102)


async def test_a_full_buffer_refuses_and_the_end_resumes_after_the_last_batch_handed_out():
    w = _watcher(buffer=3)
    assert all(w.offer(_feed_event(101, i)) for i in (1, 2, 3))
    sent = await w.next_batch()
    assert all(w.offer(_feed_event(101, i)) for i in (4, 5, 6))
    assert not w.offer(_feed_event(101, 7))  # full: the hub drops it
    w.end(EndReason.TOO_SLOW)
    with pytest.raises(WatchEnded) as ended:
        await w.next_batch()
    assert ended.value.reason is EndReason.TOO_SLOW
    assert ended.value.resume == sent.resume == FeedPosition(101, 3)


async def test_a_quiet_watch_gets_a_heartbeat_at_its_position():
    w = Watcher(1, EventFilter(), FeedPosition(100), 10, heartbeat_seconds=0.01)
    w.advance(FeedPosition(120))
    batch = await w.next_batch()
    assert batch.events == [] and batch.resume == FeedPosition(120)


async def test_catch_up_waits_for_room_instead_of_dropping():
    w = _watcher(buffer=2)
    await w.put(_feed_event(101, 1))
    await w.put(_feed_event(101, 2))
    waiting = asyncio.create_task(w.put(_feed_event(101, 3)))
    await asyncio.sleep(0)  # (lets it reach its wait: a step, not a timing)
    assert not waiting.done()
    assert [r.event_id for r in (await w.next_batch()).events] == [1, 2]
    await asyncio.wait_for(waiting, 5)
    assert [r.event_id for r in (await w.next_batch()).events] == [3]


# --- the gateway ------------------------------------------------------------------------------------------------


def test_the_gateway_routes_the_watch_without_a_timeout_and_streams_it_as_ndjson():
    import yaml

    from connlog.core.settings import Settings
    from connlog.gateway import config

    settings = Settings(database_url="postgresql://x/y", watch_heartbeat_seconds=30)
    envoy = yaml.safe_load(config.render(settings, gateway_port=8080))
    manager = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    [host] = manager["route_config"]["virtual_hosts"]
    [route] = [r for r in host["routes"] if r["match"].get("prefix", "").endswith("/WatchConnectionEvents")]
    assert route["route"] == {"cluster": "query", "timeout": "0s", "idle_timeout": "120s"}
    assert host["routes"].index(route) < next(i for i, r in enumerate(host["routes"])
                                              if r["match"].get("prefix") == "/connlog.api.v1.QueryService/")
    [transcoder] = [f["typed_config"] for f in manager["http_filters"]
                    if f["name"] == "envoy.filters.http.grpc_json_transcoder"]
    assert transcoder["print_options"]["stream_newline_delimited"] is True
