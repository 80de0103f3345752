"""Pulling Mojo: one client's connection logs from Mojo's documented API,
for the vendor-sync worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.identifiers import normalise_mac
from connlog.core.validation import InvalidArgument
from connlog.shapes.mojo import records as mojo_records
from connlog.store.sync import SourceRecord
from connlog.vendorsync.fetcher import Fetcher, Page
from connlog.vendorsync.identity import FollowedClient
from connlog.vendorsync.jsontext import object_arrays
from connlog.vendorsync.vendor_http import VendorHttp, VendorUnavailable


class MojoFetcher(Fetcher):
    """Mojo's API-key login, then ``GET /V5/devices/clients/connectionlogs``
    from a time, paging backwards by ``totime`` when ``limit`` is reached. A
    checkpoint advances at the end of a poll."""

    LIMIT = 1000

    def __init__(self, http: VendorHttp, base_url: str, credential: str, client_identifier: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        key_id, _, key_value = credential.partition(":")
        self._credentials = {"type": "apikeycredentials", "keyId": key_id, "keyValue": key_value}
        self._client_identifier = client_identifier or "connlog"
        self._logged_in = False
        self.logins = 0

    @classmethod
    def for_source(cls, http: VendorHttp, source: SourceRecord) -> MojoFetcher:
        return cls(http, source.base_url, source.credential, source.client_identifier)

    @staticmethod
    def check_source(values: dict) -> None:
        if ":" not in values.get("credential", ":"):
            raise InvalidArgument("sync_source.credential", "a Mojo credential is keyId:keyValue")
        for client in values.get("clients", []):
            if normalise_mac(client) is None:
                raise InvalidArgument("sync_source.clients", f"Mojo follows clients by MAC; {client!r} is not one")

    async def login(self) -> None:
        url = f"{self._base}/login/key/{quote(self._client_identifier, safe='')}/60"
        response = await self._http.request("POST", url, json=self._credentials)
        if response.status_code != 200:
            raise VendorUnavailable(f"login answered HTTP {response.status_code}")
        self._logged_in = True
        self.logins += 1

    async def _get(self, params: dict[str, str | int]) -> httpx.Response:
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
            params: dict[str, str | int] = {"clientmacaddress": mac, "fromtime": int(since.timestamp()),
                                            "totime": totime, "logtype": "all", "limit": self.LIMIT}
            response = await self._get(params)
            try:
                lists = object_arrays(response.text)
            except ValueError as exc:
                raise VendorUnavailable(f"malformed answer: {exc}") from None
            records = lists.get("successLogs", []) + lists.get("failureLogs", [])
            full = len(records) >= self.LIMIT
            times: list[int] = [r["timestamp"] for r, _ in records if isinstance(r, dict)
                                and isinstance(r.get("timestamp"), int)]
            yield Page(records, until if not full else None, last=not full)
            if not full or not times:
                return
            oldest = min(times)
            if totime != -1 and oldest >= totime:  # more than LIMIT logs in one second: step past it
                oldest = totime - 1
            totime = oldest

    def to_event(self, record: Any, raw: str, *, network_id: str, client: FollowedClient) -> pb.ConnectionEvent:
        return mojo_records.to_event(record, network_id=network_id, raw_text=raw)  # Mojo's records carry the MAC
