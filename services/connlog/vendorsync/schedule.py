"""Which clients of a source a sweep polls, in which order, and how long a
sweep takes.

A poll of a source is a *sweep* over its clients. Clients the source lists
are polled every sweep. Clients it discovered (Meraki's network clients
listing) are tiered by when Meraki last saw them (``lastSeen``), and a
client is due once its tier's interval has passed since its last completed
poll (a failed poll does not count: it is tried again next sweep):

==========  =====================  ===========================
tier        last seen              polled
==========  =====================  ===========================
active      within 1 hour          every sweep
recent      within 1 day           at most once an hour
idle        within 7 days          at most every 6 hours
dormant     longer ago, or never   at most once a day
==========  =====================  ===========================

Nothing is lost by polling less often: a client's checkpoint stays where it
was, and its next poll fetches everything since (Meraki keeps 31 days).
Within a sweep the due clients go most recently seen first (listed clients
Meraki has not reported on first of all: they were named on purpose), ties
by name, so a sweep cut short by the budget has served the active ones.

A sweep's time is its requests over the organisation's budget: about
``discovery pages + clients due x requests per client`` requests at
``budget`` per second (``estimate_seconds``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Meraki's network clients listing answers at most this many a page.
LISTING_PAGE = 5000


@dataclass(frozen=True)
class Tier:
    name: str
    seen_within: dt.timedelta | None  # None: any age, or never seen
    every: dt.timedelta  # zero: every sweep


TIERS: tuple[Tier, ...] = (
    Tier("active", dt.timedelta(hours=1), dt.timedelta(0)),
    Tier("recent", dt.timedelta(days=1), dt.timedelta(hours=1)),
    Tier("idle", dt.timedelta(days=7), dt.timedelta(hours=6)),
    Tier("dormant", None, dt.timedelta(days=1)),
)


@dataclass(frozen=True)
class Candidate:
    """A client a source follows, as the schedule sees it."""

    name: str
    listed: bool  # the source names it (else only discovered)
    last_seen: dt.datetime | None  # Meraki's lastSeen, if discovered
    last_polled: dt.datetime | None  # its last completed poll


def tier_of(last_seen: dt.datetime | None, now: dt.datetime) -> Tier:
    """The tier of a discovered client last seen at ``last_seen``."""
    if last_seen is not None:
        age = now - last_seen
        for tier in TIERS:
            if tier.seen_within is not None and age <= tier.seen_within:
                return tier
    return TIERS[-1]


def is_due(client: Candidate, now: dt.datetime, at: dt.datetime | None = None) -> bool:
    """Whether a sweep at ``at`` (default ``now``) polls ``client``, its
    tier as of ``now``."""
    if client.listed or client.last_polled is None:
        return True
    return (at or now) - client.last_polled >= tier_of(client.last_seen, now).every


def plan(clients: Iterable[Candidate], now: dt.datetime) -> list[Candidate]:
    """The clients a sweep at ``now`` polls, in the order it polls them."""
    due = [c for c in clients if is_due(c, now)]
    newest = dt.datetime.max.replace(tzinfo=dt.UTC)
    # (a listed client Meraki has not reported on sorts as seen just now)
    return sorted(due, key=lambda c: (-(c.last_seen or (newest if c.listed else _EPOCH)).timestamp(), c.name))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def listing_pages(clients: int) -> int:
    """Requests one listing of a network of ``clients`` takes."""
    return max(1, math.ceil(clients / LISTING_PAGE))


def estimate_seconds(due: int, requests_per_client: float, budget: float, *, discovery_pages: int = 0) -> float:
    """How long a sweep of ``due`` clients takes at ``budget`` requests/s."""
    if budget <= 0:
        return math.inf
    return (discovery_pages + due * max(requests_per_client, 1.0)) / budget


def requests_per_client(requests: int, clients: int, discovery_pages: int = 0) -> float:
    """Requests a client's poll took on average in a sweep (at least 1)."""
    if clients <= 0:
        return 1.0
    return max(1.0, (requests - discovery_pages) / clients)


def due_count(clients: Sequence[Candidate], now: dt.datetime, at: dt.datetime | None = None) -> int:
    """How many of ``clients`` a sweep at ``at`` polls, their tiers as of
    ``now`` (a client active now counts as active then)."""
    return sum(1 for c in clients if is_due(c, now, at))
