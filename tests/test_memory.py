"""Bounded memory: the named caches (``connlog.core.caches``) and an ingest
process that keeps a flat footprint under a flood of rejected events, each
carrying sub-messages never seen before."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys

import grpc
import psutil
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.auth import create_key
from connlog.core.caches import BoundedCache
from connlog.core.principal import Role
from connlog.devtools.ports import free_port
from connlog.store.accounts import AccountStore
from tests.support.factories import now, ts

# --- the cache itself ---------------------------------------------------------


def test_cache_bounds_entries_least_recently_used_first():
    cache = BoundedCache("t", max_entries=3)
    for key in "abc":
        cache[key] = key.upper()
    assert "a" in cache  # a use: "a" is now the most recent
    assert cache.get("b") == "B"  # and then "b"
    cache["d"] = "D"
    assert sorted(cache.keys()) == ["a", "b", "d"]  # "c" was the least recently used
    cache["e"] = "E"
    assert sorted(cache.keys()) == ["b", "d", "e"]
    assert len(cache) == 3 and cache.evictions == 2
    assert cache.get("c") is None and cache.get("c", 0) == 0
    with pytest.raises(KeyError):
        cache["a"]


def test_cache_bounds_bytes_and_skips_what_cannot_fit():
    cache = BoundedCache("t", max_entries=1000, max_bytes=100, sizeof=lambda key, value: len(value))
    for i in range(10):
        cache[i] = b"x" * 30
        assert cache.bytes <= 100
    assert sorted(cache.keys()) == [7, 8, 9] and cache.bytes == 90
    cache[8] = b"y" * 5  # a replaced value gives its bytes back
    assert cache.bytes == 65
    cache["big"] = b"z" * 101  # larger than the whole budget: not kept, nothing evicted for it
    assert "big" not in cache and sorted(cache.keys(), key=str) == [7, 8, 9]
    cache[7] = b"z" * 101  # a key replaced by a value too big to keep is dropped, not kept stale
    assert 7 not in cache and cache.bytes == 35
    assert cache.pop(8) == b"y" * 5 and cache.bytes == 30 and cache.pop(8, None) is None
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0


def test_cache_rejects_nonsense_bounds():
    with pytest.raises(ValueError):
        BoundedCache("t", max_entries=0)
    with pytest.raises(ValueError):
        BoundedCache("t", max_entries=10, max_bytes=100)  # bytes need a sizeof


def _unbounded(obj) -> list[str]:
    return [name for name, value in vars(obj).items() if isinstance(value, (dict, set, list))]


def test_long_lived_state_is_held_in_bounded_caches():
    from connlog.core.auth import KeyAuthenticator
    from connlog.core.metrics import ServiceMetrics
    from connlog.core.settings import Settings
    from connlog.ingest.pipeline import IngestPipeline
    from connlog.vendorsync.vendor_http import AsyncRateLimiter

    # (Meraki's limiter holds no buckets: they are in the database, swept once
    # full: tests/test_shared_budgets.py::test_full_buckets_are_swept)
    holders = [IngestPipeline.__new__(IngestPipeline), KeyAuthenticator(None, 5.0), AsyncRateLimiter()]
    IngestPipeline.__init__(holders[0], Settings(), None, ServiceMetrics("ingest"))
    for holder in holders:
        assert not _unbounded(holder), type(holder).__name__
        assert any(isinstance(value, BoundedCache) for value in vars(holder).values()), type(holder).__name__


async def test_auth_cache_keeps_a_bounded_number_of_keys(monkeypatch):
    from connlog.core import auth

    class Accounts:
        lookups = 0

        async def find_key(self, key_id):
            Accounts.lookups += 1
            return None

    monkeypatch.setattr(auth, "AUTH_CACHE_MAX_ENTRIES", 50)
    authenticator = auth.KeyAuthenticator(Accounts(), cache_seconds=60)
    for i in range(1000):
        assert await authenticator.authenticate_token(f"clk_{i:016x}_secret") is None
    assert len(authenticator._cache) == 50
    await authenticator.authenticate_token(f"clk_{999:016x}_secret")  # still remembered: no lookup
    assert Accounts.lookups == 1000
    await authenticator.authenticate_token(f"clk_{'f' * 5000}_secret")  # never a key id: not remembered
    assert all(len(key) < 100 for key in authenticator._cache.keys())


async def test_vendor_rate_budgets_are_bounded_and_still_pace():
    from connlog.vendorsync.vendor_http import AsyncRateLimiter

    clock, waits = [0.0], []

    async def sleep(seconds):
        waits.append(round(seconds, 6))
        clock[0] += seconds

    limiter = AsyncRateLimiter(clock=lambda: clock[0], max_keys=10, sleep=sleep)
    for _ in range(7):  # 5/s, bursts of 5: five at once, then one every 0.2 s
        await limiter.acquire("org", 5.0)
    assert waits == [0.2, 0.2]
    for i in range(1000):
        await limiter.acquire(f"source-{i}", 5.0)
    assert len(limiter._free_at) == 10 and waits == [0.2, 0.2]


# --- a whole ingest process ---------------------------------------------------

EVENTS = 150_000
PER_MESSAGE = 1_000
PER_STREAM = 15_000
LIMIT_MB = 100


def _rejected_events(start: int, count: int, when) -> list[pb.ConnectionEvent]:
    """Events with a sub-message never seen before (a large, distinct, valid
    failure), valid up to their occurrence time, which is older than the
    retention: every one is rejected after its sub-messages passed
    validation."""
    events = []
    reason = sub_reason = "é" * 1000  # within the 1,024-character limits: ~4 kB
    for i in range(start, start + count):
        events.append(pb.ConnectionEvent(
            network_id="N_mem",
            client=pb.Client(client_id=f"k{i % 50}", mac_address="f0:d7:aa:df:59:a2"),
            occur_time=when,
            step=pb.CONNECTION_STEP_AUTHENTICATION,
            outcome=pb.OUTCOME_FAILURE,
            access_point=pb.AccessPoint(serial="Q2-MEM-0001", name="lobby"),
            failure=pb.Failure(code=8, reason=f"{i:09d} {reason}", sub_reason=sub_reason),
        ))
    return events


async def _stream(stub, md, start: int, count: int) -> ipb.StreamIngestConnectionEventsResponse:
    when = ts(now() - dt.timedelta(days=60))

    async def messages():
        for offset in range(0, count, PER_MESSAGE):
            yield ipb.StreamIngestConnectionEventsRequest(
                events=_rejected_events(start + offset, min(PER_MESSAGE, count - offset), when))

    reply = await stub.StreamIngestConnectionEvents(messages(), metadata=md, timeout=600)
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (0, 0, count)
    assert {r.field for r in reply.results} == {"occur_time"}
    return reply


@pytest.fixture
async def ingest_process(database_url, pool, tmp_path):
    """``connlog serve ingest`` on free ports against the test database;
    validation in-process (no worker processes)."""
    from connlog.suite import wait_serving

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.update(DATABASE_URL=database_url, CONNLOG_INGEST_PORT=str(port), CONNLOG_INGEST_METRICS_PORT=str(free_port()),
               CONNLOG_DATA_DIR=str(tmp_path), CONNLOG_INGEST_WORKERS="0", CONNLOG_LOG_FORMAT="console",
               CONNLOG_LOG_LEVEL="warning")
    log = open(tmp_path / "ingest.log", "wb")  # closed below
    proc = subprocess.Popen([sys.executable, "-m", "connlog", "serve", "ingest"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_serving(f"127.0.0.1:{port}")
        yield proc, f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def test_rejected_events_with_new_sub_messages_do_not_grow_the_ingest_process(ingest_process, pool):
    proc, address = ingest_process
    key = await create_key(AccountStore(pool), tenant_id="t-memory", role=Role.OPERATOR)
    md = (("authorization", f"Bearer {key.token}"),)
    process = psutil.Process(proc.pid)
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        await _stream(stub, md, 0, PER_STREAM)  # warm-up: buffers, arenas, code paths
        baseline = process.memory_info().rss
        peak = baseline
        for start in range(PER_STREAM, PER_STREAM + EVENTS, PER_STREAM):
            await _stream(stub, md, start, PER_STREAM)
            peak = max(peak, process.memory_info().rss)  # after each stream
    growth_mb = (peak - baseline) / 2**20
    print(f"ingest RSS: baseline {baseline / 2**20:.0f} MB, peak growth {growth_mb:.1f} MB over {EVENTS} events")
    assert growth_mb < LIMIT_MB, f"the ingest process grew by {growth_mb:.0f} MB for {EVENTS} rejected events"
