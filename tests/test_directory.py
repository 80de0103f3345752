"""The client directory (migration 0016, connlog.store.rollups' fold,
connlog.store.directory, connlog.query.directory) on a real database and
through the real services and Envoy: ListNetworks and ListClients answer
exact lists, counts and order after ingest (a duplicate is not counted
twice, a late event moves first seen back), the prefix search in every
form, keyset paging, every bad input as INVALID_ARGUMENT naming its field
(400 over REST), another tenant's network as not found; retention takes
its days out of the directory exactly; the migration backfills the events
stored before it; a fold of a version before it fails instead of leaving
the directory short.

Waiting on the fold: the tests fold the feed themselves
(``connlog.store.rollups.fold`` until caught up: the query service's
maintainer takes turns with it on the watermark lock), never sleep."""

from __future__ import annotations

import datetime as dt
import secrets

import asyncpg
import grpc
import httpx
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as inspb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.store import rollups
from connlog.store.migrate import migrate
from connlog.store.partitions import create_partitions, maintain_partitions
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import ingest

S, F = pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE
ASSOC, AUTH = pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION


async def fold_all(conn: asyncpg.Connection) -> None:
    """Fold every final event into the rollups and the directory now."""
    while not (await rollups.fold(conn, 1 << 40)).caught_up:
        pass


@pytest.fixture
async def conn(pool):
    async with pool.acquire() as connection:
        yield connection


async def list_clients(clients, tenant, network: str, **fields) -> qpb.ListClientsResponse:
    return await clients.query.ListClients(qpb.ListClientsRequest(parent=f"networks/{network}", **fields),
                                           metadata=tenant.md("viewer"))


def rows(reply: qpb.ListClientsResponse) -> list[tuple]:
    return [(c.name.rsplit("/", 1)[1], c.mac_address, c.client_id, c.event_count, c.failure_count)
            for c in reply.clients]


@pytest.fixture
async def world(clients, tenant, conn):
    """One tenant, one network with four clients (MAC, MAC with an id, id
    only, MAC), ingested and folded; the base time ``t``."""
    net = f"N_dir_{secrets.token_hex(3)}"
    t = (now() - dt.timedelta(hours=2)).replace(microsecond=0)
    events = [
        simple_event(net, mac="f0:d7:aa:00:00:01", when=t, step=ASSOC, outcome=S),
        simple_event(net, mac="f0:d7:aa:00:00:01", when=t + dt.timedelta(minutes=1), step=AUTH, outcome=F),
        simple_event(net, mac="f0:d7:aa:00:00:01", when=t + dt.timedelta(minutes=2), step=AUTH, outcome=F),
        simple_event(net, mac="0a:bb:cc:dd:ee:02", client_id="Phone-Ann", when=t + dt.timedelta(minutes=5)),
        simple_event(net, mac="", client_id="k74272e", when=t + dt.timedelta(minutes=10), outcome=F, step=AUTH),
        simple_event(net, mac="AA-BB-CC-00-00-04", when=t + dt.timedelta(minutes=20)),
    ]
    await ingest(clients, tenant, events)
    await fold_all(conn)
    return net, t


async def test_clients_are_listed_most_recent_first_with_exact_counts(clients, tenant, world, conn):
    net, t = world
    reply = await list_clients(clients, tenant, net)
    assert rows(reply) == [
        ("aa:bb:cc:00:00:04", "aa:bb:cc:00:00:04", "", 1, 0),
        ("k74272e", "", "k74272e", 1, 1),
        ("0a:bb:cc:dd:ee:02", "0a:bb:cc:dd:ee:02", "Phone-Ann", 1, 0),
        ("f0:d7:aa:00:00:01", "f0:d7:aa:00:00:01", "", 3, 2),
    ]
    assert reply.next_page_token == ""
    first = reply.clients[3]
    assert first.first_seen_time.ToDatetime(dt.UTC) == t
    assert first.last_seen_time.ToDatetime(dt.UTC) == t + dt.timedelta(minutes=2)
    # a duplicate is not counted twice; a late, earlier event moves first seen back
    await ingest(clients, tenant, [
        simple_event(net, mac="f0:d7:aa:00:00:01", when=t, step=ASSOC, outcome=S),  # the first one again
        simple_event(net, mac="f0:d7:aa:00:00:01", when=t - dt.timedelta(hours=1), step=ASSOC, outcome=F),
    ])
    await fold_all(conn)
    reply = await list_clients(clients, tenant, net, query="f0d7")
    [client] = reply.clients
    assert (client.event_count, client.failure_count) == (4, 3)
    assert client.first_seen_time.ToDatetime(dt.UTC) == t - dt.timedelta(hours=1)
    assert client.last_seen_time.ToDatetime(dt.UTC) == t + dt.timedelta(minutes=2)
    # a newer event moves the client to the front; the id of its latest event is its client id
    await ingest(clients, tenant, [simple_event(net, mac="f0:d7:aa:00:00:01", client_id="laptop-7",
                                                when=t + dt.timedelta(minutes=30))])
    await fold_all(conn)
    reply = await list_clients(clients, tenant, net)
    assert rows(reply)[0] == ("f0:d7:aa:00:00:01", "f0:d7:aa:00:00:01", "laptop-7", 5, 3)


async def test_a_clients_name_is_the_parent_its_sessions_take(clients, tenant, world):
    net, _ = world
    reply = await list_clients(clients, tenant, net)
    for client in reply.clients:
        sessions = await clients.insights.ListClientSessions(inspb.ListClientSessionsRequest(parent=client.name),
                                                             metadata=tenant.md("viewer"))
        assert sum(s.event_count for s in sessions.client_sessions) == client.event_count, client.name


@pytest.mark.parametrize(("query", "expected"), [
    ("f0:d7", ["f0:d7:aa:00:00:01"]),
    ("F0D7AA", ["f0:d7:aa:00:00:01"]),
    ("f0-d7-aa-00", ["f0:d7:aa:00:00:01"]),
    ("f0d7.aa00.0001", ["f0:d7:aa:00:00:01"]),
    ("  aa:BB ", ["aa:bb:cc:00:00:04"]),
    ("a", ["aa:bb:cc:00:00:04"]),
    ("0", ["0a:bb:cc:dd:ee:02"]),
    ("phone", ["0a:bb:cc:dd:ee:02"]),  # the id of a MAC client, any case
    ("PHONE-a", ["0a:bb:cc:dd:ee:02"]),
    ("K7427", ["k74272e"]),
    ("k74272e", ["k74272e"]),
    ("k74272ex", []),
    ("bb", []),  # a prefix, not a substring
    ("f0:d7:aa:00:00:01:00", []),  # more than a MAC
    ("%", []),  # LIKE's wildcards are plain characters
    ("_", []),
])
async def test_the_search_matches_a_prefix_of_the_mac_or_of_the_client_id(clients, tenant, world, query, expected):
    net, _ = world
    reply = await list_clients(clients, tenant, net, query=query)
    assert [c.name.rsplit("/", 1)[1] for c in reply.clients] == expected


async def test_paging_walks_every_client_once_in_order(clients, tenant, world, conn):
    net, t = world
    # three more clients seen at the same instant (ties: by name, descending)
    await ingest(clients, tenant, [simple_event(net, mac=f"02:00:00:00:00:{i:02x}", when=t + dt.timedelta(hours=1))
                                   for i in range(3)])
    await fold_all(conn)
    everyone = [c.name for c in (await list_clients(clients, tenant, net)).clients]
    assert [n.rsplit("/", 1)[1] for n in everyone[:3]] == ["02:00:00:00:00:02", "02:00:00:00:00:01",
                                                          "02:00:00:00:00:00"]
    for size in (1, 2, 6, 7):
        seen, token, pages = [], "", 0
        while True:
            reply = await list_clients(clients, tenant, net, page_size=size, page_token=token)
            seen += [c.name for c in reply.clients]
            pages += 1
            token = reply.next_page_token
            if not token:
                break
        assert seen == everyone and len(seen) == 7, size
        assert pages == -(-7 // size), size
    # a search pages too
    first = await list_clients(clients, tenant, net, query="02:00", page_size=2)
    rest = await list_clients(clients, tenant, net, query="02:00", page_size=2, page_token=first.next_page_token)
    assert [c.name for c in [*first.clients, *rest.clients]] == everyone[:3] and not rest.next_page_token


async def test_networks_are_listed_with_their_latest_event(clients, tenant, world, conn):
    net, t = world
    other = f"N_dir_{secrets.token_hex(3)}"
    await ingest(clients, tenant, [simple_event(other, when=t - dt.timedelta(days=1))])
    await fold_all(conn)
    reply = await clients.query.ListNetworks(qpb.ListNetworksRequest(), metadata=tenant.md("viewer"))
    got = {n.network_id: n for n in reply.networks}
    assert set(got) == {net, other} and not reply.next_page_token
    assert [n.network_id for n in reply.networks] == sorted(got)
    assert got[net].name == f"networks/{net}" and got[net].display_name == net
    assert got[net].last_event_time.ToDatetime(dt.UTC) == t + dt.timedelta(minutes=20)
    assert got[other].last_event_time.ToDatetime(dt.UTC) == t - dt.timedelta(days=1)
    first = await clients.query.ListNetworks(qpb.ListNetworksRequest(page_size=1), metadata=tenant.md("viewer"))
    second = await clients.query.ListNetworks(qpb.ListNetworksRequest(page_size=1, page_token=first.next_page_token),
                                              metadata=tenant.md("viewer"))
    assert [n.network_id for n in [*first.networks, *second.networks]] == sorted(got)
    assert not second.next_page_token


async def test_a_network_before_its_events_are_folded_has_no_latest_event(clients, tenant, pool):
    net = f"N_dir_{secrets.token_hex(3)}"
    await pool.execute("INSERT INTO networks (tenant_ref, network_id, name) "
                       "SELECT tenant_ref, $2, 'Head office' FROM tenants WHERE tenant_id = $1", tenant.tenant_id, net)
    reply = await clients.query.ListNetworks(qpb.ListNetworksRequest(), metadata=tenant.md("viewer"))
    [network] = reply.networks
    assert (network.network_id, network.display_name) == (net, "Head office")
    assert not network.HasField("last_event_time")
    assert not (await list_clients(clients, tenant, net)).clients


BAD_CLIENT_REQUESTS = [
    (dict(parent="networks/-"), "parent"),
    (dict(parent="networks/a/b"), "parent"),
    (dict(parent="nets/N_1"), "parent"),
    (dict(parent="networks/N_1", page_size=-1), "page_size"),
    (dict(parent="networks/N_1", page_size=1001), "page_size"),
    (dict(parent="networks/N_1", page_token="garbage"), "page_token"),
    (dict(parent="networks/N_1", query="x" * 129), "query"),
    (dict(parent="networks/N_1", query="ab\x00"), "query"),
    (dict(parent="networks/N_1", query="ab\ncd"), "query"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_CLIENT_REQUESTS)
async def test_bad_input_is_invalid_argument_naming_the_field(clients, tenant, fields, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.query.ListClients(qpb.ListClientsRequest(**fields), metadata=tenant.md("viewer"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: "), caught.value.details()


async def test_a_page_token_is_bound_to_its_request(clients, tenant, world):
    net, _ = world
    first = await list_clients(clients, tenant, net, page_size=1)
    for other in (dict(query="f0"), dict(parent=f"networks/{net}x")):
        request = qpb.ListClientsRequest(**{"parent": f"networks/{net}", "page_token": first.next_page_token, **other})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.query.ListClients(request, metadata=tenant.md("viewer"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("page_token: ")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.query.ListNetworks(qpb.ListNetworksRequest(page_token=first.next_page_token),
                                         metadata=tenant.md("viewer"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # another page size is the same request
    assert (await list_clients(clients, tenant, net, page_size=3, page_token=first.next_page_token)).clients


async def test_another_tenants_network_is_not_found_and_its_clients_unseen(clients, tenant, make_tenant, world):
    net, _ = world
    other = await make_tenant()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_clients(clients, other, net)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await clients.query.ListNetworks(qpb.ListNetworksRequest(), metadata=other.md("viewer"))).networks
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.query.ListNetworks(qpb.ListNetworksRequest(), metadata=tenant.md("device"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_rest_through_the_gateway(clients, tenant, world, gateway):
    net, t = world
    headers = {"Authorization": f"Bearer {tenant.keys['viewer']}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        response = await http.get("/v1/networks", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"networks": [{
            "name": f"networks/{net}", "networkId": net, "displayName": net,
            "lastEventTime": (t + dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
        response = await http.get(f"/v1/networks/{net}/clients", params={"query": "F0:D7", "pageSize": 5},
                                  headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"clients": [{
            "name": f"networks/{net}/clients/f0:d7:aa:00:00:01", "macAddress": "f0:d7:aa:00:00:01",
            "firstSeenTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastSeenTime": (t + dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventCount": "3", "failureCount": "2"}]}
        response = await http.get(f"/v1/networks/{net}/clients", params={"query": "k7"}, headers=headers)
        assert [c["clientId"] for c in response.json()["clients"]] == ["k74272e"]
        first = (await http.get(f"/v1/networks/{net}/clients", params={"pageSize": 3}, headers=headers)).json()
        rest = (await http.get(f"/v1/networks/{net}/clients", params={"pageSize": 3,
                                                                     "pageToken": first["nextPageToken"]},
                               headers=headers)).json()
        assert len(first["clients"]) + len(rest["clients"]) == 4 and "nextPageToken" not in rest
        # the name a client is listed by reads its sessions over REST too
        name = first["clients"][0]["name"]
        response = await http.get(f"/v1/{name}/sessions", headers=headers)
        assert response.status_code == 200 and response.json()["clientSessions"], response.text
        for params, field in (({"pageSize": "1001"}, "page_size"), ({"query": "a\u0001"}, "query"),
                              ({"pageToken": "x"}, "page_token")):
            response = await http.get(f"/v1/networks/{net}/clients", params=params, headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["message"].startswith(f"{field}: "), response.text
        response = await http.get("/v1/networks/N_nobody_here/clients", headers=headers)
        assert response.status_code == 404, response.text
        response = await http.get("/v1/networks", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401, response.text


# --- retention and the migration (a database of their own) --------------------------------------------------

DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)


def at(hours: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours)


async def insert(conn: asyncpg.Connection, when: dt.datetime, *, mac: str | None = "02:00:00:00:00:01",
                 client_id: str | None = None, outcome: int = S) -> None:
    await conn.execute(
        """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome, severity,
               band, vendor, client_mac, client_id, payload)
           VALUES (1, 1, $1, $2, 1, $3, 0, 0, 1, $4::macaddr, $5, '')""",
        when, secrets.token_bytes(8), outcome, mac, client_id)


async def directory(conn: asyncpg.Connection) -> list[tuple]:
    return [tuple(r) for r in await conn.fetch(
        """SELECT client_key, events, failures, first_seen_at, last_seen_at FROM client_directory
           ORDER BY client_key""")]


@pytest.fixture
async def own_db(pg_server):
    url = await pg_server.create_database(migrated=True)
    conn = await asyncpg.connect(url)
    await create_partitions(conn, [(DAY + dt.timedelta(days=d)).date() for d in range(-1, 3)])
    await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1')")
    await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1')")
    yield conn
    await conn.close()


async def test_retention_takes_the_dropped_days_out_of_the_directory(own_db):
    conn = own_db
    await insert(conn, at(1), outcome=F)  # client 1: day 0 and day 1
    await insert(conn, at(2))
    await insert(conn, at(30))
    await insert(conn, at(3), mac=None, client_id="only-day-0", outcome=F)  # gone with day 0
    await insert(conn, at(26), mac="02:00:00:00:00:02")  # day 1 only
    await fold_all(conn)
    await insert(conn, at(5), mac="02:00:00:00:00:03")  # not folded yet: gone with day 0, never counted
    assert await directory(conn) == [
        ("02:00:00:00:00:01", 3, 1, at(1), at(30)),
        ("02:00:00:00:00:02", 1, 0, at(26), at(26)),
        ("only-day-0", 1, 1, at(3), at(3)),
    ]
    # the first day expires (retention of 1 day, two days later)
    await maintain_partitions(conn, retention_days=1, ahead_days=1, now=at(48) + dt.timedelta(minutes=1))
    assert await directory(conn) == [
        ("02:00:00:00:00:01", 1, 0, at(30), at(30)),
        ("02:00:00:00:00:02", 1, 0, at(26), at(26)),
    ]
    assert await conn.fetchval("SELECT count(*) FROM client_directory_days WHERE day < $1", at(24)) == 0
    await fold_all(conn)
    assert [key for key, *_ in await directory(conn)] == ["02:00:00:00:00:01", "02:00:00:00:00:02"]
    # the directory is still the fold of the events kept
    expected = await directory(conn)
    await conn.execute("TRUNCATE client_directory, client_directory_days")
    await conn.execute("UPDATE connection_rollup_watermark SET xid = 0")
    await conn.execute("TRUNCATE connection_rollups, connection_rollups_daily")
    await fold_all(conn)
    assert await directory(conn) == expected


async def test_the_migration_backfills_the_folded_events_and_stops_older_folds(pg_server):
    url = await pg_server.create_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, up_to=15)
        await create_partitions(conn, [DAY.date()])
        await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1')")
        await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1')")
        await insert(conn, at(1), outcome=F)
        await insert(conn, at(2), client_id="kid")
        await insert(conn, at(3), mac=None, client_id="kid")
        old_fold = rollups.FOLD.replace("connection_rollups_hourly_key", "connection_rollups_hour_key")
        old_fold = old_fold[:old_fold.index("), clients AS")] + old_fold[old_fold.index("), hours AS"):]
        old_fold = old_fold.replace(",\n       (SELECT count(*) FROM directory) AS clients, (SELECT count(*) FROM "
                                    "client_days) AS client_days", "")
        await conn.execute(old_fold, 0, 1 << 40)  # the version before folds the first three
        await conn.execute("UPDATE connection_rollup_watermark SET xid = pg_current_xact_id()::text::bigint")
        await insert(conn, at(4))  # above the watermark: the fold's, not the migration's
        assert 16 in [m.version for m in await migrate(conn)]
        assert await directory(conn) == [("02:00:00:00:00:01", 2, 1, at(1), at(2)), ("kid", 1, 0, at(3), at(3))]
        assert await conn.fetchval("SELECT client_id FROM client_directory WHERE client_key = '02:00:00:00:00:01'") \
            == "kid"
        with pytest.raises(asyncpg.UndefinedObjectError):  # a fold of the version before now fails
            await conn.execute(old_fold, 0, 1 << 40)
        await fold_all(conn)
        assert await directory(conn) == [("02:00:00:00:00:01", 3, 1, at(1), at(4)), ("kid", 1, 0, at(3), at(3))]
    finally:
        await conn.close()
