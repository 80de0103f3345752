"""Pulling Meraki: one client's ``connectivityEvents`` from Meraki's
documented API, and the clients of a network (its network clients listing),
for the vendor-sync worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.identifiers import normalise_mac
from connlog.core.settings import Settings
from connlog.shapes.meraki import records as meraki_records
from connlog.store.sync import ClientIdentity, DiscoveredClient, SourceRecord
from connlog.vendorsync.fetcher import Fetcher, Page
from connlog.vendorsync.identity import FollowedClient
from connlog.vendorsync.jsontext import array_items
from connlog.vendorsync.vendor_http import VendorHttp, VendorUnavailable

MERAKI_LOOKBACK = dt.timedelta(days=31)
# The network clients listing: its largest page, and the most clients one
# listing keeps (a bound on memory; a network has far fewer).
LISTING_PER_PAGE = 5000
MAX_DISCOVERED = 100_000


class MerakiFetcher(Fetcher):
    """``GET /networks/{net}/wireless/clients/{client}/connectivityEvents``,
    ascending from a time, following ``Link: rel=next`` to the end. Asks
    Meraki who each client is first (``identify``), and a checkpoint advances
    with every page."""

    DEFAULT_RATE = 10.0  # Meraki's documented budget per organisation
    IDENTIFIES = True
    DISCOVERS = True

    @classmethod
    def default_rate(cls, settings: Settings) -> float:
        """connlog's share of the organisation's budget (other applications
        use it too): ``sync_meraki_budget_share`` of Meraki's 10 requests/s."""
        return cls.DEFAULT_RATE * settings.sync_meraki_budget_share

    def __init__(self, http: VendorHttp, base_url: str, credential: str, network_id: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json"}
        self._network = network_id

    @classmethod
    def for_source(cls, http: VendorHttp, source: SourceRecord) -> MerakiFetcher:
        return cls(http, source.base_url, source.credential, source.vendor_network_id or source.network_id)

    async def identify(self, client: str) -> ClientIdentity | None:
        """Who ``client`` (an id or a MAC) is: ``GET /networks/{net}/clients/{client}``
        answers its ``id`` and ``mac``. None when the API does not know it (404,
        or another 4xx from an API without this call): then the name is all
        there is. Raises VendorUnavailable when it cannot tell now."""
        url = f"{self._base}/networks/{quote(self._network, safe='')}/clients/{quote(client, safe=':')}"
        response = await self._http.request("GET", url, headers=self._headers)
        if 400 <= response.status_code < 500:
            return None
        if response.status_code != 200:
            raise VendorUnavailable(f"client {client}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise VendorUnavailable(f"client {client}: malformed answer")
        client_id = body.get("id")
        client_id = client_id if isinstance(client_id, str) and 0 < len(client_id) <= 128 else ""
        mac = normalise_mac(body["mac"]) if isinstance(body.get("mac"), str) else None
        if not client_id and not mac:
            raise VendorUnavailable(f"client {client}: the answer has neither an id nor a MAC")
        return ClientIdentity(client_id, mac or "")

    async def discover(self) -> AsyncIterator[list[DiscoveredClient]]:
        """The network's clients of the last 31 days: ``GET /networks/{net}/clients``
        (``timespan`` 31 days, ``perPage`` 5000, following ``Link: rel=next``),
        each with its ``id``, ``mac`` and ``lastSeen`` (epoch seconds or an
        ISO 8601 time); one without either identifier is skipped."""
        url: str | None = f"{self._base}/networks/{quote(self._network, safe='')}/clients"
        params: dict[str, str | int] | None = {"perPage": LISTING_PER_PAGE,
                                               "timespan": int(MERAKI_LOOKBACK.total_seconds())}
        seen = 0
        while url and seen < MAX_DISCOVERED:
            response = await self._http.request("GET", url, params=params, headers=self._headers)
            if response.status_code == 404:
                raise VendorUnavailable(f"network {self._network} not found (404)")
            if response.status_code != 200:
                raise VendorUnavailable(f"network clients: HTTP {response.status_code}: {response.text[:200]}")
            try:
                records = array_items(response.text)[0]
            except ValueError as exc:
                raise VendorUnavailable(f"network clients: malformed page: {exc}") from None
            page = [c for record, _ in records if (c := discovered(record)) is not None][: MAX_DISCOVERED - seen]
            seen += len(page)
            yield page
            next_url = response.links.get("next", {}).get("url")
            url = str(self._http.check_url(response.url.join(next_url), "Link rel=next")) if next_url else None
            params = None

    async def pages(self, client: str, since: dt.datetime, until: dt.datetime) -> AsyncIterator[Page]:
        since = max(since, until - MERAKI_LOOKBACK + dt.timedelta(minutes=5))
        url: str | None = (f"{self._base}/networks/{quote(self._network, safe='')}/wireless/clients/"
               f"{quote(client, safe=':')}/connectivityEvents")
        params: dict[str, str | int] | None = {"perPage": 1000, "sortOrder": "ascending",
                                               "t0": f"{since.timestamp():.6f}", "t1": f"{until.timestamp():.6f}"}
        while url:
            response = await self._http.request("GET", url, params=params, headers=self._headers)
            if response.status_code == 404:
                raise VendorUnavailable(f"network {self._network} or client {client} not found (404)")
            if response.status_code != 200:
                raise VendorUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                records = array_items(response.text)[0]
            except ValueError as exc:
                raise VendorUnavailable(f"malformed page: {exc}") from None
            next_url = response.links.get("next", {}).get("url")
            yield Page(records, until if not next_url else None, last=not next_url)
            # relative or absolute, the next page is at the source's own origin, or refused
            url = str(self._http.check_url(response.url.join(next_url), "Link rel=next")) if next_url else None
            params = None

    def to_event(self, record: Any, raw: str, *, network_id: str, client: FollowedClient) -> pb.ConnectionEvent:
        # Meraki's records name no client: both of its identifiers
        return meraki_records.to_event(record, network_id=network_id, client_id=client.client_id or None,
                                mac_address=client.mac or None, raw_text=raw)

    def covered(self, page: Page, events: list[pb.ConnectionEvent]) -> dt.datetime | None:
        if page.covered_to is None and events:  # a page in the middle: up to its newest event
            return max(e.occur_time.ToDatetime(tzinfo=dt.UTC) for e in events)
        return page.covered_to


def discovered(record: Any) -> DiscoveredClient | None:
    """A client of the network clients listing, named by its MAC (else its
    id); None for a record with neither."""
    if not isinstance(record, dict):
        return None
    client_id = record.get("id")
    client_id = client_id if isinstance(client_id, str) and 0 < len(client_id) <= 128 else ""
    mac = (normalise_mac(record["mac"]) if isinstance(record.get("mac"), str) else None) or ""
    if not client_id and not mac:
        return None
    return DiscoveredClient(mac or client_id, client_id, mac, _seen(record.get("lastSeen")))


def _seen(value: Any) -> dt.datetime | None:
    """Meraki's ``lastSeen``: epoch seconds, or an ISO 8601 time."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None
