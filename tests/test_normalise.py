"""Normalisation helpers (no database)."""

from __future__ import annotations

import pytest

from connlog.ingest.normalise import FieldError, _ip


@pytest.mark.parametrize(("text", "canonical"), [
    ("10.0.0.17", "10.0.0.17"), (" 10.0.0.17 ", "10.0.0.17"), ("0.0.0.0", "0.0.0.0"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
])
def test_ip_addresses_are_canonical(text, canonical):
    assert _ip(text) == canonical


@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3", "256.1.1.1", "0x1.2.3.4", "1.2.3.4\x00", "١.2.3.4", "host", ""])
def test_bad_ip_addresses_name_the_field(text):
    with pytest.raises(FieldError) as err:
        _ip(text)
    assert err.value.field == "client.ip_address"


async def test_worker_processes_normalise_like_the_service_process():
    """The worker path (spawned processes, serialized batches) gives the
    same stored rows and rejections as normalising in-process."""
    import datetime as dt

    from connlog.core.auth import Principal, Role
    from connlog.ingest.normalise import IngestWindow
    from connlog.ingest.workers import NormaliserPool, normalise_events
    from tests.factories import now, simple_event

    events = [simple_event("N_w", mac=f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}", when=now() - dt.timedelta(seconds=i))
              for i in range(300)]
    events[7].client.mac_address = "nope"
    events[200].network_id = "bad network"
    principal = Principal("k", "t", 1, Role.OPERATOR, None)
    window = IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    pool = NormaliserPool(1)
    try:
        await pool.start()
        remote = await pool.normalise(events, principal, window)
    finally:
        pool.close()
    local = normalise_events(events, principal, window, {})
    assert remote == local
    assert [(p, f) for p, f, _ in remote[1]] == [(7, "client.mac_address"), (200, "network_id")]
    assert len(remote[0]) == 298
