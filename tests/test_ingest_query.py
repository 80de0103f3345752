"""Ingest → query against the real services and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import grpc
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from tests.support.factories import full_event, now, simple_event, ts

ACCEPTED, DUPLICATE, REJECTED = ipb.INGEST_STATUS_ACCEPTED, ipb.INGEST_STATUS_DUPLICATE, ipb.INGEST_STATUS_REJECTED


def _unset_fields(message, prefix="") -> list[str]:
    """Fields of ``message`` (recursively) left at their default."""
    unset = []
    for field in message.DESCRIPTOR.fields:
        path = prefix + field.name
        if field.is_repeated:
            if not getattr(message, field.name):
                unset.append(path)
        elif field.message_type is not None:
            if not message.HasField(field.name):
                unset.append(path)
            elif field.message_type.full_name.startswith("connlog."):
                unset += _unset_fields(getattr(message, field.name), path + ".")
        elif field.has_presence:
            if not message.HasField(field.name):
                unset.append(path)
        elif getattr(message, field.name) == field.default_value:
            unset.append(path)
    return unset


async def ingest(clients, tenant, events, role="operator"):
    return await clients.ingest.IngestConnectionEvents(
        ipb.IngestConnectionEventsRequest(events=events), metadata=tenant.md(role)
    )


async def list_all(clients, tenant, role="viewer", **kwargs) -> list[pb.ConnectionEvent]:
    events, token = [], ""
    while True:
        page = await clients.query.ListConnectionEvents(
            qpb.ListConnectionEventsRequest(page_token=token, **kwargs), metadata=tenant.md(role)
        )
        events += page.connection_events
        token = page.next_page_token
        if not token:
            return events


async def test_round_trip_of_every_field(clients, tenant):
    sent = full_event()
    # The sample must really exercise every field, including ones added later.
    assert _unset_fields(sent) == ["tenant_id"]

    reply = await ingest(clients, tenant, [sent])
    [result] = reply.results
    assert result.status == ACCEPTED, result
    got = await clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=result.name), metadata=tenant.md())

    expected = pb.ConnectionEvent()
    expected.CopyFrom(sent)
    # Server-owned and normalised fields:
    expected.name = result.name
    expected.event_id = result.event_id
    expected.tenant_id = tenant.tenant_id
    expected.receive_time.CopyFrom(got.receive_time)
    expected.client.mac_address = "f0:d7:aa:df:59:a2"
    expected.wlan.bssid = "00:11:74:88:af:60"
    expected.radio.protocol = "AC"
    assert got == expected
    assert result.name == f"networks/N_784752235069315754/connectionEvents/{result.event_id}"
    assert got.occur_time.nanos == 90210000  # microseconds kept
    receive = got.receive_time.ToDatetime(tzinfo=dt.UTC)
    assert abs((receive - now()).total_seconds()) < 60
    assert got.vendor_record.data == sent.vendor_record.data  # untouched, byte for byte


async def test_duplicates_are_stored_once(clients, tenant, pool):
    event = simple_event("N_dup", when=now() - dt.timedelta(minutes=5))
    first = await ingest(clients, tenant, [event, event])
    assert [r.status for r in first.results] == [ACCEPTED, DUPLICATE]
    assert first.results[0].event_id == first.results[1].event_id
    again = await ingest(clients, tenant, [event])
    assert again.results[0].status == DUPLICATE
    assert again.results[0].event_id == first.results[0].event_id
    assert (again.accepted_count, again.duplicate_count) == (0, 1)

    # Same vendor event id: the same event even if other facts differ.
    a = simple_event("N_dup", when=now() - dt.timedelta(minutes=4), source=pb.Source(vendor=pb.VENDOR_MERAKI,
                                                                                     vendor_event_id="m-1"))
    b = pb.ConnectionEvent()
    b.CopyFrom(a)
    b.subtype = "changed"
    reply = await ingest(clients, tenant, [a])
    reply_b = await ingest(clients, tenant, [b])
    assert reply_b.results[0].status == DUPLICATE and reply_b.results[0].event_id == reply.results[0].event_id

    # Concurrent ingest of the same batch on several paths: stored once.
    batch = [simple_event("N_dup", mac=f"02:00:00:00:00:{i:02x}", when=now() - dt.timedelta(seconds=i))
             for i in range(50)]

    async def stream():
        async def requests():
            yield ipb.StreamIngestConnectionEventsRequest(events=batch[:25])
            yield ipb.StreamIngestConnectionEventsRequest(events=batch[25:])
        return await clients.ingest.StreamIngestConnectionEvents(requests(), metadata=tenant.md())

    replies = await asyncio.gather(ingest(clients, tenant, batch), ingest(clients, tenant, batch), stream())
    accepted = replies[0].accepted_count + replies[1].accepted_count + replies[2].accepted_count
    assert accepted == 50
    assert replies[2].duplicate_count == 50 - replies[2].accepted_count
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            """SELECT count(*) FROM connection_events e JOIN networks n USING (network_ref)
               JOIN tenants t ON t.tenant_ref = e.tenant_ref
               WHERE t.tenant_id = $1 AND n.network_id = 'N_dup'""",
            tenant.tenant_id,
        )
    assert stored == 1 + 1 + 50


async def test_rejected_events_name_their_field_and_the_rest_is_stored(clients, tenant):
    good = simple_event("N_rej", when=now() - dt.timedelta(minutes=1))
    cases = {
        "network_id": simple_event(""),
        "client": simple_event("N_rej", mac=""),
        "client.mac_address": simple_event("N_rej", mac="not-a-mac"),
        "occur_time": simple_event("N_rej", when=now() - dt.timedelta(days=40)),
        "step": simple_event("N_rej", step=pb.CONNECTION_STEP_UNSPECIFIED),
        "radio.channel": simple_event("N_rej", radio=pb.Radio(channel=999)),
        "location.latitude": simple_event("N_rej", location=pb.Location(latitude=91)),
        "traffic.bytes_in": simple_event("N_rej", traffic=pb.Traffic(bytes_in=-1)),
        "wlan.bssid": simple_event("N_rej", wlan=pb.Wlan(bssid="00:11")),
        "vendor_record.data": simple_event("N_rej", vendor_record=pb.VendorRecord(data="{not json")),
        "tenant_id": simple_event("N_rej", tenant_id="someone-else"),
        "client.ip_address": simple_event("N_rej", client_id="k1",
                                          ),
        "access_network.mcc_mnc": simple_event("N_rej", access_network=pb.AccessNetwork(mcc_mnc="31x")),
    }
    cases["client.ip_address"].client.ip_address = "300.1.1.1"
    future = simple_event("N_rej", when=now() + dt.timedelta(days=3))
    events = [good, *cases.values(), future]
    reply = await ingest(clients, tenant, events)
    assert reply.results[0].status == ACCEPTED
    assert [(r.status, r.field) for r in reply.results[1:-1]] == [(REJECTED, f) for f in cases]
    assert reply.results[-1].status == REJECTED and reply.results[-1].field == "occur_time"
    assert all(r.reason for r in reply.results[1:])
    assert [r.index for r in reply.results] == list(range(len(events)))
    assert (reply.accepted_count, reply.rejected_count) == (1, len(events) - 1)
    stored = await list_all(clients, tenant, parent="networks/N_rej")
    assert [e.name for e in stored] == [reply.results[0].name]


async def test_batch_size_limit(clients, tenant, suite):
    limit = suite.settings.max_batch_events
    events = [simple_event("N_big", mac="02:00:00:00:00:01")] * (limit + 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest(clients, tenant, events)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "events" in err.value.details()


async def test_stream_ingest_reports_positions_across_batches(clients, tenant):
    base = now() - dt.timedelta(hours=2)
    batches = [
        [simple_event("N_s", mac=f"02:00:00:00:{b:02x}:{i:02x}", when=base + dt.timedelta(seconds=i))
         for i in range(10)]
        for b in range(3)
    ]
    batches[1][3] = simple_event("N_s", mac="bad")
    batches[2] = batches[0]  # all duplicates

    async def requests():
        for batch in batches:
            yield ipb.StreamIngestConnectionEventsRequest(events=batch)

    reply = await clients.ingest.StreamIngestConnectionEvents(requests(), metadata=tenant.md())
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (19, 10, 1)
    assert [(r.index, r.status, r.field) for r in reply.results] == [(13, REJECTED, "client.mac_address")]


async def test_long_stream_is_pipelined_in_batches_without_losing_order(clients, tenant, settings):
    """More events than several stream batches: the batches are stored
    concurrently, yet counts, rejected positions and de-duplication across
    batches (the same events again, in reverse order) come out exact."""
    size = settings.stream_batch_events
    total = size * 3 + 123
    base = now() - dt.timedelta(hours=3)
    events = [simple_event("N_pipe", mac=f"02:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00",
                           when=base + dt.timedelta(milliseconds=i)) for i in range(total)]
    bad = {5, size - 1, size, 2 * size + 7, total - 1}
    for i in bad:
        events[i] = simple_event("N_pipe", mac="not-a-mac", when=base)
    again = events[: size + 500][::-1]  # duplicates of the first batches, lock order reversed
    stream = events + again

    async def requests():
        for start in range(0, len(stream), 777):
            yield ipb.StreamIngestConnectionEventsRequest(events=stream[start:start + 777])

    reply = await clients.ingest.StreamIngestConnectionEvents(requests(), metadata=tenant.md())
    bad_again = {total + (size + 500 - 1 - i) for i in bad if i < size + 500}
    assert reply.rejected_count == len(bad) + len(bad_again)
    assert [r.index for r in reply.results] == sorted(bad | bad_again)
    assert reply.accepted_count == total - len(bad)
    assert reply.duplicate_count == size + 500 - len(bad_again)
    listed = await clients.query.ListConnectionEvents(
        qpb.ListConnectionEventsRequest(parent="networks/N_pipe", page_size=1000), metadata=tenant.md())
    assert len(listed.connection_events) == 1000 and listed.next_page_token


@pytest.mark.parametrize("order", [qpb.SORT_ORDER_ASCENDING, qpb.SORT_ORDER_DESCENDING])
async def test_pagination_never_skips_or_repeats_under_concurrent_ingest(clients, tenant, order):
    rng = random.Random(order)
    start = now() - dt.timedelta(days=2)
    span = 2 * 86400 - 60

    def batch(n, tag):
        # Many events share one timestamp, to exercise the (time, id) keyset.
        return [
            simple_event("N_page", mac=f"02:{tag:02x}:00:00:{i // 256:02x}:{i % 256:02x}",
                         when=start + dt.timedelta(seconds=rng.randrange(0, span, 600)))
            for i in range(n)
        ]

    initial = await ingest(clients, tenant, batch(600, 1))
    initial_ids = {r.event_id for r in initial.results}
    assert initial.accepted_count == 600

    seen: list[str] = []
    token = ""
    tag = 2
    while True:
        page = await clients.query.ListConnectionEvents(
            qpb.ListConnectionEventsRequest(parent="networks/N_page", page_size=37, page_token=token, sort_order=order),
            metadata=tenant.md("viewer"),
        )
        seen += [e.event_id for e in page.connection_events]
        times = [(e.occur_time.ToDatetime(), int(e.event_id)) for e in page.connection_events]
        assert times == sorted(times, reverse=order == qpb.SORT_ORDER_DESCENDING)
        token = page.next_page_token
        if not token:
            break
        if tag < 12:  # new events land before and after the cursor while paging
            await ingest(clients, tenant, batch(40, tag))
            tag += 1
    assert len(seen) == len(set(seen)), "an event was repeated"
    assert initial_ids <= set(seen), "an event that existed before paging began was skipped"


async def test_every_filter(clients, tenant):
    rng = random.Random(5)
    base = now() - dt.timedelta(days=1)
    steps = [s for s in pb.ConnectionStep.values() if s]
    events = []
    for i in range(240):
        outcome = rng.choice([pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_INFORMATIONAL])
        event = simple_event(
            rng.choice(["N_f1", "N_f2"]),
            mac=f"02:00:00:00:{rng.randrange(4):02x}:01",
            client_id=rng.choice(["", "k1", "k2"]),
            when=base + dt.timedelta(minutes=i),
            step=rng.choice(steps),
            outcome=outcome,
            severity=rng.choice([1, 2, 3, 4]),
            radio=pb.Radio(band=rng.choice([1, 2, 3])),
            wlan=pb.Wlan(ssid=rng.choice(["corp", "guest"]), ssid_number=rng.choice([0, 1, 14]),
                         bssid=rng.choice(["00:11:74:88:af:60", "00:11:74:88:af:70"])),
            access_point=pb.AccessPoint(name=rng.choice(["ap-1", "ap-2"]), serial=rng.choice(["Q-1", "Q-2"])),
            source=pb.Source(vendor=rng.choice([pb.VENDOR_MERAKI, pb.VENDOR_MOJO])),
        )
        if outcome == pb.OUTCOME_FAILURE:
            event.failure.code = rng.choice([3, 8, 12])
        events.append(event)
    reply = await ingest(clients, tenant, events)
    assert reply.accepted_count == len(events)
    for event, result in zip(events, reply.results, strict=True):
        event.event_id = result.event_id

    def ids(predicate):
        return sorted(int(e.event_id) for e in events if predicate(e))

    mid = base + dt.timedelta(minutes=100)
    cases = [
        ({"parent": "networks/N_f1"}, lambda e: e.network_id == "N_f1"),
        ({"client_id": "k1"}, lambda e: e.client.client_id == "k1"),
        ({"client_mac_address": "02-00-00-00-02-01"}, lambda e: e.client.mac_address == "02:00:00:00:02:01"),
        ({"start_time": ts(mid)}, lambda e: e.occur_time.ToDatetime(tzinfo=dt.UTC) >= mid),
        ({"end_time": ts(mid)}, lambda e: e.occur_time.ToDatetime(tzinfo=dt.UTC) < mid),
        ({"steps": [1, 5]}, lambda e: e.step in (1, 5)),
        ({"outcomes": [pb.OUTCOME_FAILURE]}, lambda e: e.outcome == pb.OUTCOME_FAILURE),
        ({"severities": [2, 4]}, lambda e: e.severity in (2, 4)),
        ({"bands": [pb.BAND_6_GHZ]}, lambda e: e.radio.band == pb.BAND_6_GHZ),
        ({"ssid": "guest"}, lambda e: e.wlan.ssid == "guest"),
        ({"ssid_number": 0}, lambda e: e.wlan.ssid_number == 0),
        ({"access_point_serial": "Q-2"}, lambda e: e.access_point.serial == "Q-2"),
        ({"access_point_name": "ap-1"}, lambda e: e.access_point.name == "ap-1"),
        ({"bssid": "00:11:74:88:AF:70"}, lambda e: e.wlan.bssid == "00:11:74:88:af:70"),
        ({"failure_codes": [8, 12]}, lambda e: e.HasField("failure") and e.failure.code in (8, 12)),
        ({"vendor": pb.VENDOR_MOJO}, lambda e: e.source.vendor == pb.VENDOR_MOJO),
        ({"parent": "networks/N_f2", "steps": [2, 3, 4], "severities": [4], "ssid": "corp"},
         lambda e: e.network_id == "N_f2" and e.step in (2, 3, 4) and e.severity == 4 and e.wlan.ssid == "corp"),
    ]
    for params, predicate in cases:
        params = {"parent": "networks/-", "page_size": 50, **params}
        got = sorted(int(e.event_id) for e in await list_all(clients, tenant, **params))
        expected = ids(predicate)
        assert expected, f"filter {params} has no matching test data"
        assert got == expected, f"filter {params}"


async def test_list_argument_errors(clients, tenant):
    await ingest(clients, tenant, [simple_event("N_args")])
    bad = [
        ({"parent": "nets/N_args"}, "parent"),
        ({"parent": "networks/-", "page_size": 1001}, "page_size"),
        ({"parent": "networks/-", "page_token": "!!!"}, "page_token"),
        ({"parent": "networks/-", "client_mac_address": "xyz"}, "client_mac_address"),
        ({"parent": "networks/-", "steps": [42]}, "steps"),
        ({"parent": "networks/-", "start_time": ts(now()), "end_time": ts(now() - dt.timedelta(hours=1))},
         "end_time"),
    ]
    for params, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(**params), metadata=tenant.md())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, params
        assert err.value.details().startswith(field), (params, err.value.details())

    # A page token only works with the request that produced it.
    for i in range(3):
        await ingest(clients, tenant, [simple_event("N_args", mac=f"02:00:00:00:09:{i:02x}")])
    page = await clients.query.ListConnectionEvents(
        qpb.ListConnectionEventsRequest(parent="networks/N_args", page_size=1), metadata=tenant.md()
    )
    assert page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await clients.query.ListConnectionEvents(
            qpb.ListConnectionEventsRequest(parent="networks/N_args", page_size=1, page_token=page.next_page_token,
                                            ssid="other"),
            metadata=tenant.md(),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in err.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name="events/1"), metadata=tenant.md())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await clients.query.ListConnectionEvents(
            qpb.ListConnectionEventsRequest(parent="networks/N_unknown"), metadata=tenant.md()
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
