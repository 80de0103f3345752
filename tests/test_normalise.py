"""Normalisation in the ingest worker processes (spawned processes, no
database). The checks of one event are unit tests: tests/unit/test_normalise.py."""

from __future__ import annotations

import datetime as dt

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.principal import Principal, Role
from connlog.ingest.batches import prepare_events
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.workers import NormaliserPool
from tests.support.factories import now, simple_event


async def test_worker_processes_normalise_like_the_service_process():
    """The worker path (spawned processes, serialized batches) gives the
    same prepared batch (COPY rows, networks, access points, rejections) as
    preparing in-process."""
    events = [simple_event("N_w", mac=f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}", when=now() - dt.timedelta(seconds=i))
              for i in range(300)]
    events[7].client.mac_address = "nope"
    events[200].network_id = "bad network"
    events.append(pb.ConnectionEvent.FromString(events[0].SerializeToString()))  # the same event again: one row
    principal = Principal("k", "t", 1, Role.OPERATOR, None)
    window = IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    pool = NormaliserPool(1)
    try:
        await pool.start()
        remote = await pool.prepare(events, principal, window)
    finally:
        pool.close()
    local = prepare_events(events, principal, window)
    assert remote == local
    assert [(p, f) for p, f, _ in remote.rejected] == [(7, "client.mac_address"), (200, "network_id")]
    assert remote.rows.row_count == 298 and remote.rows.networks.keys() == {"N_w"}
