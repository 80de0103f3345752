"""Fetching one client's records from Meraki's and Mojo's documented APIs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connlog.core.identifiers import normalise_mac
from connlog.store.sync import ClientIdentity
from connlog.vendorsync.vendor_http import CredentialRejected, VendorHttp, VendorUnavailable
from connlog.vendorsync.jsontext import array_items, object_arrays

MERAKI_LOOKBACK = dt.timedelta(days=31)


@dataclass
class Page:
    """Records of one vendor page: ``(record, raw text)`` pairs, and how far
    the page covers (everything up to ``covered_to`` has been seen when the
    page is the last one of a poll, or up to its newest record otherwise)."""

    records: list[tuple[Any, str]]
    covered_to: dt.datetime | None
    last: bool


class MerakiFetcher:
    """``GET /networks/{net}/wireless/clients/{client}/connectivityEvents``,
    ascending from a time, following ``Link: rel=next`` to the end."""

    def __init__(self, http: VendorHttp, base_url: str, credential: str, network_id: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json"}
        self._network = network_id

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

    async def pages(self, client: str, since: dt.datetime, until: dt.datetime) -> AsyncIterator[Page]:
        since = max(since, until - MERAKI_LOOKBACK + dt.timedelta(minutes=5))
        url = (f"{self._base}/networks/{quote(self._network, safe='')}/wireless/clients/"
               f"{quote(client, safe=':')}/connectivityEvents")
        params: dict | None = {"perPage": 1000, "sortOrder": "ascending", "t0": f"{since.timestamp():.6f}",
                               "t1": f"{until.timestamp():.6f}"}
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
            if next_url and not next_url.startswith("http"):
                next_url = str(response.url.join(next_url))
            url, params = next_url, None
            yield Page(records, until if not url else None, last=not url)


class MojoFetcher:
    """Mojo's API-key login, then ``GET /V5/devices/clients/connectionlogs``
    from a time, paging backwards by ``totime`` when ``limit`` is reached."""

    LIMIT = 1000

    def __init__(self, http: VendorHttp, base_url: str, credential: str, client_identifier: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        key_id, _, key_value = credential.partition(":")
        self._credentials = {"type": "apikeycredentials", "keyId": key_id, "keyValue": key_value}
        self._client_identifier = client_identifier or "connlog"
        self._logged_in = False
        self.logins = 0

    async def login(self) -> None:
        url = f"{self._base}/login/key/{quote(self._client_identifier, safe='')}/60"
        response = await self._http.request("POST", url, json=self._credentials)
        if response.status_code != 200:
            raise VendorUnavailable(f"login answered HTTP {response.status_code}")
        self._logged_in = True
        self.logins += 1

    async def _get(self, params: dict):
        if not self._logged_in:
            await self.login()
        url = f"{self._base}/V5/devices/clients/connectionlogs"
        response = await self._http.request("GET", url, params=params, reject_auth=False)
        if response.status_code in (401, 403):  # the session expired: log in again, once
            await self.login()
            response = await self._http.request("GET", url, params=params)
        if response.status_code != 200:
            raise VendorUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        return response

    async def pages(self, client: str, since: dt.datetime, until: dt.datetime) -> AsyncIterator[Page]:
        mac = normalise_mac(client) or client
        totime = -1
        while True:
            params = {"clientmacaddress": mac, "fromtime": int(since.timestamp()), "totime": totime,
                      "logtype": "all", "limit": self.LIMIT}
            response = await self._get(params)
            try:
                lists = object_arrays(response.text)
            except ValueError as exc:
                raise VendorUnavailable(f"malformed answer: {exc}") from None
            records = lists.get("successLogs", []) + lists.get("failureLogs", [])
            full = len(records) >= self.LIMIT
            times = [r.get("timestamp") for r, _ in records if isinstance(r, dict)
                     and isinstance(r.get("timestamp"), int)]
            yield Page(records, until if not full else None, last=not full)
            if not full or not times:
                return
            oldest = min(times)
            if totime != -1 and oldest >= totime:  # more than LIMIT logs in one second: step past it
                oldest = totime - 1
            totime = oldest


__all__ = ["CredentialRejected", "MerakiFetcher", "MojoFetcher", "Page", "VendorUnavailable"]
