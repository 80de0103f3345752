"""Paging Meraki's connectivityEvents through the real Envoy: 10,000 events,
both orders, events arriving meanwhile, both Link-following styles, Meraki's
own Python SDK, and the rate limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import httpx
import meraki
import pytest

from connlog.core.auth import create_key
from connlog.core.principal import Role
from connlog.store.accounts import AccountStore
from tests.support.factories import now
from tests.support.gateway_calls import MERAKI_PATH as PATH
from tests.support.gateway_calls import ingest, key_headers, meraki_event, meraki_get
from tests.support.services import Tenant

TOTAL = 10_000
BASE = now() - dt.timedelta(hours=20)


async def _tenant(pool) -> Tenant:
    import secrets

    tenant_id = f"t-{secrets.token_hex(4)}"
    keys = {}
    for role in (Role.VIEWER, Role.OPERATOR):
        keys[role.value] = (await create_key(AccountStore(pool), tenant_id=tenant_id, role=role)).token
    return Tenant(tenant_id, keys)


@pytest.fixture
async def paged(pool, clients):
    """A tenant with 10,000 events of one client (pairs share a timestamp):
    one per test, so that each test is its own organisation for Meraki's
    per-organisation rate limit (and sees only the events it adds)."""
    tenant = await _tenant(pool)
    events = [meraki_event("N_page", "kp", BASE + dt.timedelta(seconds=5 * (i // 2)), i, captureId=f"c{i}")
              for i in range(TOTAL)]
    for start in range(0, TOTAL, 5000):
        await ingest(clients, tenant, events[start:start + 5000])
    return tenant


def _feeder(clients, tenant):
    """Each call ingests a few new events: some before, some after any cursor."""
    counter = itertools.count()

    async def feed():
        n = next(counter)
        fresh = [meraki_event("N_page", "kp", BASE + dt.timedelta(seconds=7 * (n * 131 + j) % 49000),
                              20000 + n * 10 + j, captureId=f"new{n}-{j}") for j in range(6)]
        await ingest(clients, tenant, fresh)

    return feed


@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("style", ["rfc8288", "meraki-sdk"])
async def test_every_event_exactly_once_while_events_arrive(gateway, clients, paged, order, style):
    feed = _feeder(clients, paged)
    url = f"{gateway.url}{PATH.format(net='N_page', client='kp')}?perPage=1000&sortOrder={order}&timespan=86400"
    seen, pages = [], 0
    async with httpx.AsyncClient() as http:
        while True:
            response = await meraki_get(http, url, headers=key_headers(paged))
            assert response.status_code == 200, response.text
            body = response.json()
            seen += [(e["occurredAt"], e["captureId"]) for e in body]
            links = response.links
            assert {"first", "last"} <= links.keys()
            assert ("prev" in links) == (pages > 0)
            pages += 1
            await feed()
            if "next" not in links:
                break
            link = links["next"]["url"]
            if style == "meraki-sdk":  # the SDK prepends its base_url to a non-meraki.com link
                url = f"{gateway.url}/api/v1{link}"
            else:  # a generic client resolves the link against the request URL
                url = str(response.url.join(link))
    ids = [capture for _, capture in seen]
    assert len(ids) == len(set(ids)), "an event came twice"
    assert {f"c{i}" for i in range(TOTAL)} <= set(ids), "an event was skipped"
    times = [t for t, _ in seen]
    assert times == sorted(times, reverse=order == "descending")
    assert pages >= 10


async def test_prev_and_last_links(gateway, paged):
    url = f"{gateway.url}{PATH.format(net='N_page', client='kp')}"
    window = {"t0": (BASE - dt.timedelta(seconds=1)).timestamp(),
              "t1": (BASE + dt.timedelta(seconds=5 * 1999)).timestamp()}
    async with httpx.AsyncClient() as http:
        everything = []
        response = await meraki_get(http, url, params={"perPage": 1000, **window}, headers=key_headers(paged))
        assert "prev" not in response.links
        first_links = response.links
        while True:
            everything += [e["captureId"] for e in response.json()]
            if "next" not in response.links:
                break
            response = await meraki_get(http, response.links["next"]["url"], headers=key_headers(paged))
        assert len(everything) >= 4000

        last = await meraki_get(http, first_links["last"]["url"], headers=key_headers(paged))
        assert "next" not in last.links and "prev" in last.links
        assert [e["captureId"] for e in last.json()] == everything[-1000:]
        back = await meraki_get(http, last.links["prev"]["url"], headers=key_headers(paged))
        assert [e["captureId"] for e in back.json()] == everything[-2000:-1000]
        assert "next" in back.links
        again = await meraki_get(http, back.links["next"]["url"], headers=key_headers(paged))
        assert [e["captureId"] for e in again.json()] == everything[-1000:]
        start = await meraki_get(http, back.links["first"]["url"], headers=key_headers(paged))
        assert [e["captureId"] for e in start.json()] == everything[:1000]


async def test_meraki_python_sdk_reads_everything(gateway, paged):
    dashboard = meraki.DashboardAPI(
        paged.keys["viewer"], base_url=f"{gateway.url}/api/v1", suppress_logging=True, output_log=False,
        print_console=False, maximum_retries=5, wait_on_rate_limit=True,
    )
    events = await asyncio.to_thread(
        dashboard.wireless.getNetworkWirelessClientConnectivityEvents, "N_page", "kp", total_pages="all",
        perPage=1000, timespan=86400,
    )
    ids = [e["captureId"] for e in events]
    assert len(ids) == len(set(ids))
    assert {f"c{i}" for i in range(TOTAL)} <= set(ids)


async def test_rate_limit_answers_429_with_retry_after(gateway, pool, clients, suite):
    tenant = await _tenant(pool)
    await ingest(clients, tenant, [meraki_event("N_rate", "kr", now() - dt.timedelta(minutes=1))])
    url = f"{gateway.url}{PATH.format(net='N_rate', client='kr')}"
    rate = suite.settings.meraki_rate_limit_per_second
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as http:
        responses, started = [], time.monotonic()
        for _ in range(20):  # bursts of 100 until the limit bites
            responses += await asyncio.gather(*(http.get(url, headers=key_headers(tenant)) for _ in range(100)))
            if any(r.status_code == 429 for r in responses):
                break
        elapsed = time.monotonic() - started
        statuses = [r.status_code for r in responses]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, statuses
        assert set(statuses) == {200, 429}
        # never more than the burst plus the rate over the elapsed time
        assert statuses.count(200) <= rate + rate * elapsed + 1
        for response in limited:
            assert response.headers["retry-after"].isdigit() and int(response.headers["retry-after"]) >= 1
            assert response.json()["errors"]
        await asyncio.sleep(int(limited[0].headers["retry-after"]))
        assert (await http.get(url, headers=key_headers(tenant))).status_code == 200
        # another organisation is not limited by this one's use
        other = await _tenant(pool)
        await ingest(clients, other, [meraki_event("N_rate", "kr", now() - dt.timedelta(minutes=1))])
        await asyncio.gather(*(http.get(url, headers=key_headers(tenant)) for _ in range(100)))
        assert (await http.get(url, headers=key_headers(other))).status_code == 200
