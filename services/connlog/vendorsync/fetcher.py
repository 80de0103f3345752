"""What the sync worker needs of a vendor's API: a ``Fetcher``. Each shape
connlog pulls from has one in its ``sync.py`` (``connlog.shapes.registry``
names it); the worker picks it by the source's vendor."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.settings import Settings
from connlog.store.sync import ClientIdentity, DiscoveredClient, SourceRecord
from connlog.vendorsync.identity import FollowedClient
from connlog.vendorsync.vendor_http import VendorHttp


@dataclass
class Page:
    """Records of one vendor page: ``(record, raw text)`` pairs, and how far
    the page covers (everything up to ``covered_to`` has been seen when the
    page is the last one of a poll, or up to its newest record otherwise)."""

    records: list[tuple[Any, str]]
    covered_to: dt.datetime | None
    last: bool


class Fetcher:
    """One source's client records, fetched from the vendor's API and
    converted into canonical events. A shape's fetcher overrides what its
    vendor does differently."""

    # requests per second to the vendor when the source sets no budget
    DEFAULT_RATE = 10.0
    # whether ``identify`` asks the vendor who a client name is
    IDENTIFIES = False
    # whether ``discover`` lists the clients of the source's network
    DISCOVERS = False

    @classmethod
    def default_rate(cls, settings: Settings) -> float:
        """Requests per second to the vendor when the source sets no budget."""
        return cls.DEFAULT_RATE

    @classmethod
    def for_source(cls, http: VendorHttp, source: SourceRecord) -> Fetcher:
        """The fetcher of ``source``, making its requests through ``http``."""
        raise NotImplementedError

    @staticmethod
    def check_source(values: dict) -> None:
        """The vendor's own rules for a source's (validated) values; raises
        ``InvalidArgument`` naming the field that breaks one."""

    async def identify(self, client: str) -> ClientIdentity | None:
        """Who ``client`` (a name the source lists) is, if the vendor says."""
        return None

    def discover(self) -> AsyncIterator[list[DiscoveredClient]]:
        """The clients of the source's network, a page at a time."""
        raise NotImplementedError

    def pages(self, client: str, since: dt.datetime, until: dt.datetime) -> AsyncIterator[Page]:
        """The client's records from ``since`` to ``until``, a page at a time."""
        raise NotImplementedError

    def to_event(self, record: Any, raw: str, *, network_id: str, client: FollowedClient) -> pb.ConnectionEvent:
        """One record of ``client`` as a canonical event of ``network_id``
        (``raw``: its original text); ``VendorRecordError`` when malformed."""
        raise NotImplementedError

    def covered(self, page: Page, events: list[pb.ConnectionEvent]) -> dt.datetime | None:
        """How far a checkpoint may advance once ``page`` (converted into
        ``events``) is ingested; None: not yet."""
        return page.covered_to
