"""What a batch of incoming events comes to, before it is stored.

* ``normalise_events``: each event normalised (``StoredEvent``) or refused,
  with its position in the batch;
* ``distinct_events``: the stored events of a batch once each (the same
  event twice in one batch is stored once);
* ``access_point_sightings``: the latest sighting of each access point;
* ``prepare_events``: all of it for a stream batch, the rows already in
  binary COPY form in insert order (``PreparedBatch``): what a worker
  process sends back to the service process (or the service process works
  out itself, for a small batch or without workers), which then only has to
  fill in the network refs and copy bytes to the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.principal import Principal
from connlog.ingest.normalise import FieldError, IngestWindow, normalise
from connlog.store.row import CopyRows, StoredEvent, copy_rows, insert_order

# (position, stored event) for the valid ones; (position, field, reason) for the rest
Normalised = tuple[list[tuple[int, StoredEvent]], list[tuple[int, str, str]]]
# access point serial -> (network id, name, occurred_at) of its latest event
Sightings = dict[str, tuple[str, str, dt.datetime]]


class PreparedBatch(NamedTuple):
    """A stream batch ready to store: its distinct valid events as binary
    COPY rows (which name their networks), their access point sightings, and
    the refused events (position in the batch, field, reason)."""

    rows: CopyRows
    access_points: Sightings
    rejected: list[tuple[int, str, str]]


def normalise_events(
    events: Iterable[pb.ConnectionEvent],
    principal: Principal,
    window: IngestWindow,
) -> Normalised:
    """Normalise a batch of events (in place), keeping their positions."""
    stored, rejected = [], []
    for position, event in enumerate(events):
        try:
            stored.append((position, normalise(event, principal, window)))
        except FieldError as err:
            rejected.append((position, err.field, err.reason))
    return stored, rejected


def distinct_events(normalised: Iterable[tuple[int, StoredEvent]]) -> list[StoredEvent]:
    """The first of each (dedup_key, occurred_at) in batch order."""
    unique: dict[tuple[bytes, dt.datetime], StoredEvent] = {}
    for _, stored in normalised:
        key = (stored.dedup_key, stored.occurred_at)
        if key not in unique:  # else the same event twice in one batch
            unique[key] = stored
    return list(unique.values())


def access_point_sightings(events: Iterable[StoredEvent]) -> Sightings:
    """Each access point's latest event's network, name and time."""
    latest: Sightings = {}
    for event in events:
        serial = event.ap_serial
        if serial:
            seen = latest.get(serial)
            if seen is None or seen[2] < event.occurred_at:
                latest[serial] = (event.network_id, event.ap_name or "", event.occurred_at)
    return latest


def prepare_events(
    events: Iterable[pb.ConnectionEvent], principal: Principal, window: IngestWindow
) -> PreparedBatch:
    """A stream batch normalised, de-duplicated and encoded for COPY."""
    normalised, rejected = normalise_events(events, principal, window)
    distinct = distinct_events(normalised)
    distinct.sort(key=insert_order)
    return PreparedBatch(copy_rows(distinct, principal.tenant_ref), access_point_sightings(distinct), rejected)
