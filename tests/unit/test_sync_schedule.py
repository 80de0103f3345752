"""The sweep schedule of vendor-sync (connlog.vendorsync.schedule): tiers by
Meraki's lastSeen, which clients are due, their order, the sweep estimate;
reading Meraki's network clients listing; one client however it is named."""

from __future__ import annotations

import datetime as dt

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.shapes.meraki.sync import discovered
from connlog.store.sync import Checkpoint, ClientIdentity, DiscoveredClient, SourceRecord
from connlog.vendorsync import schedule
from connlog.vendorsync.schedule import Candidate
from connlog.vendorsync.worker import follow_source, sweep_candidates

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@pytest.mark.parametrize(("seen_ago", "tier"), [
    (dt.timedelta(0), "active"),
    (H, "active"),
    (H + dt.timedelta(seconds=1), "recent"),
    (D, "recent"),
    (7 * D, "idle"),
    (7 * D + dt.timedelta(seconds=1), "dormant"),
    (30 * D, "dormant"),
    (None, "dormant"),
    (-H, "active"),  # a clock ahead of ours: seen just now
])
def test_tier_by_last_seen(seen_ago, tier):
    assert schedule.tier_of(None if seen_ago is None else NOW - seen_ago, NOW).name == tier


@pytest.mark.parametrize(("listed", "seen_ago", "polled_ago", "due"), [
    (False, None, None, True),  # never polled: due
    (False, dt.timedelta(minutes=5), dt.timedelta(seconds=1), True),  # active: every sweep
    (False, 2 * H, 59 * dt.timedelta(minutes=1), False),  # recent: once an hour
    (False, 2 * H, H, True),
    (False, 3 * D, 5 * H, False),  # idle: every 6 hours
    (False, 3 * D, 6 * H, True),
    (False, 10 * D, 23 * H, False),  # dormant: once a day
    (False, 10 * D, D, True),
    (False, None, 23 * H, False),  # never seen: dormant
    (True, 10 * D, dt.timedelta(seconds=1), True),  # listed: every sweep whatever its age
    (True, None, dt.timedelta(seconds=1), True),
])
def test_which_clients_are_due(listed, seen_ago, polled_ago, due):
    client = Candidate("c", listed, None if seen_ago is None else NOW - seen_ago,
                       None if polled_ago is None else NOW - polled_ago)
    assert schedule.is_due(client, NOW) is due


def test_due_clients_go_most_recently_seen_first():
    clients = [
        Candidate("idle", False, NOW - 3 * D, None),
        Candidate("active-b", False, NOW - dt.timedelta(minutes=1), None),
        Candidate("listed-unseen", True, None, NOW),
        Candidate("active-a", False, NOW - dt.timedelta(minutes=1), None),
        Candidate("recent-polled", False, NOW - 2 * H, NOW - dt.timedelta(minutes=5)),  # not due
        Candidate("listed-old", True, NOW - 20 * D, NOW),
        Candidate("never-seen", False, None, None),
        Candidate("newest", False, NOW, NOW - dt.timedelta(seconds=1)),
    ]
    assert [c.name for c in schedule.plan(clients, NOW)] == [
        "listed-unseen", "newest", "active-a", "active-b", "idle", "listed-old", "never-seen"]


def test_due_count_keeps_todays_tiers():
    active = Candidate("a", False, NOW, NOW)
    recent = Candidate("r", False, NOW - 2 * H, NOW)
    # an hour on, the active one is still active (due), the recent one due again
    assert schedule.due_count([active, recent], NOW) == 1
    assert schedule.due_count([active, recent], NOW, NOW + H) == 2
    assert schedule.due_count([active, recent], NOW, NOW + dt.timedelta(minutes=30)) == 1


@pytest.mark.parametrize(("due", "per_client", "budget", "pages", "seconds"), [
    (100, 1.0, 5.0, 1, 20.2),
    (1000, 1.0, 5.0, 1, 200.2),
    (5000, 1.0, 5.0, 1, 1000.2),
    (5000, 1.2, 5.0, 1, 1200.2),
    (5000, 0.5, 5.0, 0, 1000.0),  # at least one request a client
    (0, 1.0, 5.0, 0, 0.0),
    (10, 1.0, 0.0, 0, float("inf")),
])
def test_sweep_estimate(due, per_client, budget, pages, seconds):
    assert schedule.estimate_seconds(due, per_client, budget, discovery_pages=pages) == pytest.approx(seconds)


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (1, 1), (5000, 1), (5001, 2), (12000, 3)])
def test_listing_pages(count, pages):
    assert schedule.listing_pages(count) == pages


@pytest.mark.parametrize(("requests", "count", "listing", "per_client"), [
    (103, 100, 3, 1.0), (250, 100, 50, 2.0), (5, 0, 0, 1.0), (10, 100, 0, 1.0)])
def test_requests_per_client(requests, count, listing, per_client):
    assert schedule.requests_per_client(requests, count, listing) == per_client


@pytest.mark.parametrize(("record", "expected"), [
    ({"id": "k74272e", "mac": "22:33:44:55:66:77", "lastSeen": 1526087474},
     DiscoveredClient("22:33:44:55:66:77", "k74272e", "22:33:44:55:66:77",
                      dt.datetime.fromtimestamp(1526087474, dt.UTC))),
    ({"id": "k1", "mac": "22-33-44-55-66-AA", "lastSeen": "2026-03-01T11:00:00Z"},
     DiscoveredClient("22:33:44:55:66:aa", "k1", "22:33:44:55:66:aa", NOW - H)),
    ({"id": "k2", "mac": None, "lastSeen": None}, DiscoveredClient("k2", "k2", "", None)),
    ({"id": "k3", "mac": "not a mac", "lastSeen": "yesterday"}, DiscoveredClient("k3", "k3", "", None)),
    ({"mac": "22:33:44:55:66:77", "lastSeen": True}, DiscoveredClient("22:33:44:55:66:77", "", "22:33:44:55:66:77",
                                                                      None)),
    ({"id": "", "mac": ""}, None),
    ({"id": "x" * 129}, None),
    ([1, 2], None),
    ("k1", None),
])
def test_reading_the_network_clients_listing(record, expected):
    assert discovered(record) == expected


def _source(clients: list[str]) -> SourceRecord:
    return SourceRecord("s", "t", 1, "", pb.VENDOR_MERAKI, "https://api.meraki.example/api/v1", b"sealed", "N_1", "",
                        clients, 60.0, 0.0, "", "", True, spb.SYNC_SOURCE_STATE_ACTIVE, "", NOW, NOW, True)


def test_a_client_listed_by_id_and_discovered_by_mac_is_one_client():
    mac = "f0:d7:aa:df:59:a2"
    found = {mac: DiscoveredClient(mac, "k1", mac, NOW - H),
             "02:00:00:00:00:02": DiscoveredClient("02:00:00:00:00:02", "k2", "02:00:00:00:00:02", NOW)}
    source = _source(["k1", "k9"])
    clients = follow_source(source, {"k1": ClientIdentity("k1", mac)}, found)
    assert [(c.name, c.names, c.client_id, c.mac) for c in clients] == [
        ("k1", ["k1", mac], "k1", mac), ("k9", ["k9"], "k9", ""), ("02:00:00:00:00:02", ["02:00:00:00:00:02"],
                                                                   "k2", "02:00:00:00:00:02")]
    # the listed client keeps its listed priority and its discovered lastSeen; the
    # last completed poll is the newest of its names' checkpoints
    checkpoints = {"k1": Checkpoint("k1", last_success_at=NOW - H), mac: Checkpoint(mac, last_success_at=NOW - D)}
    assert sweep_candidates(source, clients, found, checkpoints) == [
        Candidate("k1", True, NOW - H, NOW - H), Candidate("k9", True, None, None),
        Candidate("02:00:00:00:00:02", False, NOW, None)]


def test_a_source_discovers_without_clients_or_when_asked():
    assert _source([]).discovers
    assert not _source(["k1"]).discovers
    asked = _source(["k1"])
    asked.discover_clients = True
    assert asked.discovers
