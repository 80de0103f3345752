"""The suite heals itself: ``connlog up`` restarts a service or Envoy that was
killed while the others keep serving, the ingest worker pool replaces a
killed worker, the database may go away and come back, and nothing the suite
started outlives it. No test waits a fixed time: every wait is a poll with a
generous deadline (tests.support.faults.DEADLINE)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool

import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc, vendor_sync_service_pb2_grpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as vpb
from connlog.core.principal import Principal, Role
from connlog.ingest.batches import prepare_events
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.workers import NormaliserPool
from tests.support.factories import now, simple_event
from tests.support.faults import (
    CHANNEL_OPTIONS,
    SERVICES,
    Load,
    SuiteProcess,
    assert_stored_once,
    data_directory,
    health,
    poll,
    ready,
    running,
    serving,
    spawned_workers,
    start_suite,
    stop_suite,
    stored_counts,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# -- units ----------------------------------------------------------------------

def test_restart_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run():
    from connlog.suite import Backoff, RestartPolicy

    backoff = Backoff(RestartPolicy(base_seconds=0.5, cap_seconds=4.0, stable_seconds=60.0))
    assert [backoff.next_delay(uptime=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.next_delay(uptime=60.0) == 0.5  # it had stayed up: start over
    assert backoff.next_delay(uptime=0.1) == 1.0


def _principal_and_window():
    import datetime as dt

    current = now()
    window = IngestWindow(current - dt.timedelta(days=31), current + dt.timedelta(days=1), 31)
    return Principal("k", "t", 1, Role.OPERATOR, None), window


class _BrokenExecutor:
    """An executor whose every worker has died."""

    submitted = 0

    def submit(self, *args, **kwargs):
        type(self).submitted += 1
        raise BrokenProcessPool("a worker died")

    def shutdown(self, wait=True, cancel_futures=False):
        pass


async def test_worker_pool_gives_up_on_a_pool_that_keeps_breaking(monkeypatch):
    """Bounded: a batch tries the pool and one replacement, then it is
    prepared in-process (the broken pool is replaced for the next batch)."""
    monkeypatch.setattr(NormaliserPool, "_new_executor", lambda self: _BrokenExecutor())
    _BrokenExecutor.submitted = 0
    pool = NormaliserPool(2)
    principal, window = _principal_and_window()
    events = [simple_event("N_pool", client_id=f"c-{i}") for i in range(20)] + [simple_event("N_pool", mac="nope")]
    expected = prepare_events([type(e).FromString(e.SerializeToString()) for e in events], principal, window)
    prepared = await pool.prepare(events, principal, window)
    assert prepared == expected and len(prepared.rejected) == 1 and prepared.rows.row_count == 20
    assert _BrokenExecutor.submitted == 2 and pool.replacements == 2
    prepared = await pool.prepare(events[:3], principal, window)
    assert prepared.rows.row_count == 3 and _BrokenExecutor.submitted == 4 and pool.replacements == 4
    pool.close()


def _alive(proc: psutil.Process | int) -> bool:
    """Running (a psutil.Process is checked against pid reuse too)."""
    try:
        proc = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def test_a_killed_worker_is_replaced_and_its_batch_runs_again():
    # other pools of this test process (the session's ingest service) are not this one's
    others = {worker.pid for worker in spawned_workers(psutil.Process())}
    pool = NormaliserPool(1)
    try:
        await pool.start()
        principal, window = _principal_and_window()
        (victim,) = [w for w in spawned_workers(psutil.Process()) if w.pid not in others]
        victim.kill()
        await poll(lambda: not _alive(victim), "the worker to die")
        events = [simple_event("N_pool", client_id=f"c-{i}") for i in range(300)]
        prepared = await pool.prepare(events, principal, window)
        assert prepared.rows.row_count == 300 and not prepared.rejected
        assert pool.replacements == 1
        prepared = await pool.prepare(events, principal, window)  # and it stays healthy
        assert prepared.rows.row_count == 300 and pool.replacements == 1
    finally:
        pool.close()


_POOL_HOLDER = """
import asyncio, psutil
from connlog.ingest.workers import NormaliserPool

async def main():
    pool = NormaliserPool(2)
    await pool.start()
    workers = [c.pid for c in psutil.Process().children() if any("spawn_main" in p for p in c.cmdline())]
    print(" ".join(map(str, workers)), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_workers_die_with_their_service_process():
    """kill -9 of the process that owns the pool (not its group): its workers go too."""
    holder = subprocess.Popen([sys.executable, "-c", _POOL_HOLDER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        line = await asyncio.to_thread(holder.stdout.readline)
        workers = [psutil.Process(int(pid)) for pid in line.split()]
        assert len(workers) == 2, line
        holder.kill()
        holder.wait()
        await poll(lambda: not any(_alive(w) for w in workers), "the orphaned workers to exit", deadline=30)
    finally:
        try:
            os.killpg(holder.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        holder.wait()


# -- the suite under faults ------------------------------------------------------

@pytest.fixture(scope="module")
async def faulty():
    with data_directory() as data_dir:
        suite = await start_suite(data_dir, CONNLOG_INGEST_WORKERS="2")
        try:
            yield suite
        finally:
            await stop_suite(suite)


async def _all_ready(suite: SuiteProcess) -> None:
    for name in (*SERVICES, "gateway"):
        try:
            await poll(lambda name=name: ready(suite, name), f"{name} to be ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{suite.output()}") from None


async def _answers(suite: SuiteProcess, name: str, killed: str) -> None:
    """One real request to ``name`` (a fresh connection: no retry, no wait)."""
    if name == "gateway":
        # through Envoy to a backend that is not the one killed
        path = "/v1/networks/-/connectionEvents?pageSize=1" if killed == "vendor-sync" else "/v1/syncSources"
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(suite.gateway_url + path, headers={"Authorization": f"Bearer {suite.key}"})
        assert response.status_code == 200, (name, response.status_code, response.text)
        return
    async with grpc.aio.insecure_channel(suite.address(name), options=CHANNEL_OPTIONS) as channel:
        if name == "ingest":
            reply = await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestConnectionEvents(
                ipb.IngestConnectionEventsRequest(events=[simple_event("N_probe", client_id=secrets.token_hex(4))]),
                metadata=suite.md, timeout=10)
            assert reply.accepted_count == 1
        elif name == "query":
            await query_service_pb2_grpc.QueryServiceStub(channel).ListConnectionEvents(
                qpb.ListConnectionEventsRequest(parent="networks/-", page_size=1), metadata=suite.md, timeout=10)
        else:
            await vendor_sync_service_pb2_grpc.VendorSyncServiceStub(channel).ListSyncSources(
                vpb.ListSyncSourcesRequest(), metadata=suite.md, timeout=10)


async def test_each_process_killed_under_load_comes_back_by_itself(faulty):
    suite = faulty
    await _all_ready(suite)
    network = f"N_load_{secrets.token_hex(3)}"
    names = (*SERVICES, "gateway")
    since = suite.mark()
    async with running(Load(suite, network, prefix="load")) as load:
        for target in names:
            before = {name: suite.pid(name) for name in names}
            assert all(before.values()), before
            orphans = suite.workers() if target == "ingest" else []
            mark = load.batches
            await poll(lambda mark=mark: load.progressed(mark), "the load to flow before the kill")

            os.kill(before[target], signal.SIGKILL)
            # the others keep answering meanwhile
            for other in names:
                if other != target:
                    await _answers(suite, other, killed=target)
            # the supervisor brings it back by itself
            await poll(lambda t=target, b=before: suite.pid(t) not in (None, b[t]), f"{target} to be restarted")
            await poll(lambda t=target: ready(suite, t), f"the restarted {target} to be ready")
            # nobody else was restarted, and nothing of the killed process is left
            assert {n: suite.pid(n) for n in names if n != target} == {n: p for n, p in before.items() if n != target}
            await poll(lambda o=orphans: not any(_alive(w) for w in o), "the killed ingest's workers to exit")
            mark = load.batches
            await poll(lambda mark=mark: load.progressed(mark), f"the load to flow after {target} came back")

    await poll(lambda: {r["process"] for r in suite.logs("process ready again", since)} >= set(names),
               "the supervisor to log every restart")
    exits = {record["process"]: record for record in suite.logs("process exited; restarting", since)}
    assert exits["ingest"]["signal"] == "SIGKILL" and exits["ingest"]["restart_in_seconds"] > 0
    assert load.retries > 0  # the kills did hit the load (ingest and Envoy were in its path)
    assert_stored_once(await stored_counts(suite, network), load.acknowledged)


async def _stream(suite: SuiteProcess, network: str, ids: list[str], messages: int, between=None):
    """One StreamIngestConnectionEvents of ``ids`` in ``messages`` messages;
    ``between(i)`` runs after message ``i`` is handed over."""
    when = now()
    events = [simple_event(network, client_id=cid, when=when) for cid in ids]
    size = -(-len(events) // messages)

    async def requests():
        for i in range(messages):
            yield ipb.StreamIngestConnectionEventsRequest(events=events[i * size:(i + 1) * size])
            if between is not None:
                await between(i)

    async with grpc.aio.insecure_channel(suite.address("ingest"), options=CHANNEL_OPTIONS) as channel:
        return await ingest_service_pb2_grpc.IngestServiceStub(channel).StreamIngestConnectionEvents(
            requests(), metadata=suite.md, timeout=120)


async def test_killed_ingest_worker_does_not_break_streams(faulty):
    suite = faulty
    await _all_ready(suite)
    ingest = suite.pid("ingest")
    since = suite.mark()
    network = f"N_workers_{secrets.token_hex(3)}"
    acknowledged: set[str] = set()
    killed: list[int] = []

    # a worker killed while a stream is being stored (it flushes a 2000-event batch to the workers)
    async def kill_a_worker(i: int) -> None:
        if i == 1:
            victim = (await poll(suite.workers, "ingest workers"))[0]
            killed.append(victim.pid)
            victim.kill()

    ids = [f"during-{i}" for i in range(6000)]
    reply = await _stream(suite, network, ids, messages=6, between=kill_a_worker)
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (6000, 0, 0), reply
    acknowledged.update(ids)

    # a worker killed between streams: the next stream still succeeds, and the one after
    victim = (await poll(lambda: [w for w in suite.workers() if w.pid not in killed], "new ingest workers"))[0]
    victim.kill()
    killed.append(victim.pid)
    await poll(lambda: not _alive(victim), "the worker to die")
    for round_ in range(2):
        ids = [f"after-{round_}-{i}" for i in range(1000)]
        reply = await _stream(suite, network, ids, messages=4)
        assert (reply.accepted_count, reply.rejected_count) == (1000, 0), reply
        acknowledged.update(ids)

    assert suite.pid("ingest") == ingest, "the ingest service was restarted instead of its pool healed"
    assert await serving(suite.address("ingest"))
    assert not {w.pid for w in suite.workers()} & set(killed)
    await poll(lambda: len(suite.logs("validation worker died; worker pool replaced", since)) >= 2,
               "both replacements of the pool logged")
    assert_stored_once(await stored_counts(suite, network), acknowledged)


async def _ingest_one(suite: SuiteProcess, network: str, client_id: str):
    async with grpc.aio.insecure_channel(suite.address("ingest"), options=CHANNEL_OPTIONS) as channel:
        return await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestConnectionEvents(
            ipb.IngestConnectionEventsRequest(events=[simple_event(network, client_id=client_id)]),
            metadata=suite.md, timeout=30)


async def test_crashed_embedded_database_is_restarted_by_the_supervisor(faulty):
    """kill -9 of the postmaster: ``connlog up`` starts the database again
    (same data, same socket) and every service recovers by itself."""
    suite = faulty
    await _all_ready(suite)
    network = f"N_dbcrash_{secrets.token_hex(3)}"
    async with running(Load(suite, network, prefix="dbcrash")) as load:
        mark = load.batches
        await poll(lambda: load.progressed(mark), "the load to flow")
        postmaster = suite.postmaster_pid()
        since = suite.mark()
        os.kill(postmaster, signal.SIGKILL)
        await poll(lambda: suite.postmaster_pid() not in (None, postmaster) and _alive(suite.postmaster_pid()),
                   "the database to be started again")
        for name in SERVICES:
            await poll(lambda name=name: serving(suite.address(name)), f"{name} to serve again")
        mark = load.batches
        await poll(lambda: load.progressed(mark), "the load to flow again")
    assert suite.proc.poll() is None
    await poll(lambda: suite.logs("database restarted", since), "the database's restart logged")
    assert_stored_once(await stored_counts(suite, network), load.acknowledged)


def _connlog_db(suite: SuiteProcess, command: str) -> None:
    """``connlog db stop`` (services/core/database.py stop_embedded: pg_ctl
    stop, fast mode) or ``connlog db url`` (starts the embedded server as
    ``connlog up`` does), with the suite's settings. In a process of its own:
    as root pg_ctl runs as another user, so Python forks rather than vforks,
    and a fork of this process (gRPC threads) has crashed in the child."""
    done = subprocess.run([sys.executable, "-m", "connlog", "db", command], env=suite.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


async def test_database_stop_and_start(faulty):
    """The database stopped cleanly (an operator's ``pg_ctl stop``), then
    started again the way ``connlog up`` starts it: meanwhile the services
    stay up, say NOT_SERVING, answer UNAVAILABLE / 503 with Retry-After; then
    they serve again by themselves and no acknowledged event is lost or
    doubled. The supervisor leaves a cleanly stopped database stopped."""
    suite = faulty
    await _all_ready(suite)
    pids = {name: suite.pid(name) for name in (*SERVICES, "gateway")}
    network = f"N_dbstop_{secrets.token_hex(3)}"
    async with running(Load(suite, network, prefix="dbstop")) as load:
        mark = load.batches
        await poll(lambda: load.progressed(mark), "the load to flow")
        since = suite.mark()
        await asyncio.to_thread(_connlog_db, suite, "stop")

        for name in ("ingest", "query"):
            await poll(lambda name=name: _is(health(suite.address(name)), NOT_SERVING), f"{name} NOT_SERVING")
            assert await health(suite.address(name), "liveness") == SERVING  # alive, just not ready
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _ingest_one(suite, network, "while-down")
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{suite.gateway_url}/v1/networks/-/connectionEvents?pageSize=1",
                                      headers={"Authorization": f"Bearer {suite.key}"})
        assert response.status_code == 503 and response.headers.get("retry-after"), (response, response.text)
        # left stopped: the supervisor noticed, and does not restart it behind the operator's back
        await poll(lambda: suite.logs("database stopped from outside connlog up; left stopped, services report "
                                      "NOT_SERVING until it is started again", since), "the supervisor to notice")
        assert not suite.logs("database postmaster died; restarting", since) and suite.postmaster_pid() is None
        assert suite.proc.poll() is None

        await asyncio.to_thread(_connlog_db, suite, "url")  # started again as connlog up starts it
        for name in SERVICES:
            await poll(lambda name=name: serving(suite.address(name)), f"{name} to serve again")
        mark = load.batches
        await poll(lambda: load.progressed(mark), "the load to flow again")
    reply = await _ingest_one(suite, network, "after")
    assert reply.accepted_count == 1
    load.acknowledged.add("after")
    assert {name: suite.pid(name) for name in pids} == pids  # no service died for want of the database
    assert suite.proc.poll() is None
    assert_stored_once(await stored_counts(suite, network), load.acknowledged)


async def _is(status, expected) -> bool:
    return await status == expected


# -- nothing outlives the suite ----------------------------------------------------

async def test_stopping_the_suite_leaves_no_process():
    with data_directory() as data_dir:
        await _stop_leaves_nothing(data_dir)


async def _stop_leaves_nothing(data_dir):
    suite = await start_suite(data_dir, CONNLOG_INGEST_WORKERS="2")
    seen: dict[int, psutil.Process] = {}
    try:
        await _all_ready(suite)
        await poll(lambda: len(suite.workers()) == 2, "two ingest workers")
        # a crash first: what the killed ingest started must not survive it either
        ingest = suite.pid("ingest")
        seen.update({p.pid: p for p in suite.tree()})
        os.kill(ingest, signal.SIGKILL)
        await poll(lambda: suite.pid("ingest") not in (None, ingest), "ingest to be restarted")
        await poll(lambda: ready(suite, "ingest"), "the restarted ingest to be ready")
        await poll(lambda: len(suite.workers()) == 2, "two new ingest workers")
        seen.update({p.pid: p for p in suite.tree()})
        assert len(seen) >= 10  # supervisor, 3 services, Envoy, workers, database ...
    finally:
        await stop_suite(suite)
    alive = [proc for proc in seen.values() if _alive(proc)]
    assert not alive, [(proc.pid, proc.cmdline()) for proc in alive]
    assert not suite.leftovers()
    assert not (suite.pgdata / "postmaster.pid").exists()


async def test_killing_the_supervisor_takes_its_services_along():
    """kill -9 of ``connlog up`` itself: its services and Envoy get SIGTERM
    (PR_SET_PDEATHSIG), the ingest workers go with their service. The
    database is left running, as ever (``connlog db stop`` stops it)."""
    with data_directory() as data_dir:
        suite = await start_suite(data_dir, CONNLOG_INGEST_WORKERS="1")
        tree: list[psutil.Process] = []
        try:
            await _all_ready(suite)
            await poll(suite.workers, "an ingest worker")
            tree = suite.supervisor().children(recursive=True)
            assert len(tree) >= 5, tree  # three services, Envoy, a worker (and multiprocessing's tracker)
            suite.proc.kill()
            await poll(lambda: not any(_alive(proc) for proc in tree), "the services, Envoy and workers to exit")
        finally:
            for proc in tree:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            await stop_suite(suite, check=False)
            await asyncio.to_thread(_connlog_db, suite, "stop")
        assert not suite.leftovers()
