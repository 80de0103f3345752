"""Helpers for the fault tests (tests/test_faults.py): ``connlog up`` in its
own process on free ports, its process tree, polling with deadlines, and a
counted ingest load that retries what was not acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.database import embedded_server_url
from connlog.devtools.ports import free_ports
from tests.support.factories import simple_event

# Every wait is a poll against a deadline this generous: the tests never
# depend on how fast the machine is, only on things happening eventually.
DEADLINE = 90.0
POLL = 0.05

SERVICES = ("ingest", "query", "vendor-sync")
# Fresh connections try again at once: the default reconnect backoff (1 s,
# growing) would make recovery look slower than it is.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
)


def spawned_workers(parent: psutil.Process) -> list[psutil.Process]:
    """The multiprocessing (spawn) worker processes among ``parent``'s children."""
    found = []
    for child in parent.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


async def poll(check: Callable[[], Awaitable[object] | object], what: str, deadline: float = DEADLINE) -> object:
    """Call ``check`` (sync or async) until it returns something truthy;
    return that. Fails with ``what`` after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except (grpc.aio.AioRpcError, OSError, psutil.Error) as exc:
            last_error = exc
        if loop.time() > end:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what} (last error: {last_error!r})")
        await asyncio.sleep(POLL)


@dataclass
class SuiteProcess:
    """``connlog up`` running in a subprocess."""

    proc: subprocess.Popen
    key: str
    data_dir: Path
    ports: dict[str, int]
    lines: list[str]
    env: dict[str, str]
    _reader: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------
    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    # -- processes ---------------------------------------------------------
    def supervisor(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def child(self, name: str) -> psutil.Process | None:
        """The running process of a service (``ingest``, ``query``,
        ``vendor-sync``) or of Envoy (``gateway``), a child of the supervisor."""
        for child in self.supervisor().children():
            try:
                cmdline = child.cmdline()
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
            except psutil.Error:
                continue
            if name == "gateway":
                if cmdline and "envoy" in Path(cmdline[0]).name:
                    return child
            elif "serve" in cmdline and cmdline[-1] == name:
                return child
        return None

    def pid(self, name: str) -> int | None:
        child = self.child(name)
        return child.pid if child else None

    def workers(self) -> list[psutil.Process]:
        """The ingest service's validation worker processes."""
        ingest = self.child("ingest")
        return [] if ingest is None else spawned_workers(ingest)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def tree(self) -> list[psutil.Process]:
        """Every process of the suite now: the supervisor's descendants, and
        the embedded database's postmaster with its children."""
        procs = [self.supervisor(), *self.supervisor().children(recursive=True)]
        pid = self.postmaster_pid()
        if pid is not None:
            try:
                postmaster = psutil.Process(pid)
                procs += [postmaster, *postmaster.children(recursive=True)]
            except psutil.Error:
                pass
        return procs

    def leftovers(self) -> list[str]:
        """Processes still running that belong to this suite: found by the
        suite's data directory in their environment or command line (every
        child inherits the environment; PostgreSQL rewrites its own, so it is
        found by its data directory)."""
        marker = str(self.data_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                env = proc.environ() if marker not in cmdline else {}
            except psutil.Error:
                continue
            if marker in cmdline or env.get("CONNLOG_DATA_DIR") == marker:
                found.append(f"{proc.pid} {cmdline[:200]}")
        return found

    # -- logs ----------------------------------------------------------------
    def logs(self, event: str, since: int = 0) -> list[dict]:
        """The supervisor's (and services') JSON log records named ``event``,
        from output line ``since`` on (``mark()``)."""
        records = []
        for line in self.lines[since:]:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    records.append(record)
        return records

    def mark(self) -> int:
        """Where the output is now (for ``logs(since=...)``)."""
        return len(self.lines)

    def output(self) -> str:
        return "".join(self.lines[-200:])


@contextlib.contextmanager
def data_directory() -> Iterator[Path]:
    """A data directory for a suite, outside pytest's temporary root: as
    root the embedded server runs as another user, which must traverse the
    path, and a concurrent pytest session resets its root to 0700."""
    base = Path(tempfile.mkdtemp(prefix="connlog-faults-"))
    os.chmod(base, 0o755)
    try:
        yield base / "data"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def suite_env(data_dir: Path, **extra: str) -> tuple[dict[str, str], dict[str, int]]:
    names = ["ingest", "query", "vendor-sync", "ingest-metrics", "query-metrics", "vendor-sync-metrics",
             "gateway"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.pop("DATABASE_URL", None)  # the embedded server, so that the tests can stop and kill it
    env.update(
        CONNLOG_DATA_DIR=str(data_dir),
        CONNLOG_INGEST_PORT=str(ports["ingest"]),
        CONNLOG_QUERY_PORT=str(ports["query"]),
        CONNLOG_VENDOR_SYNC_PORT=str(ports["vendor-sync"]),
        CONNLOG_INGEST_METRICS_PORT=str(ports["ingest-metrics"]),
        CONNLOG_QUERY_METRICS_PORT=str(ports["query-metrics"]),
        CONNLOG_VENDOR_SYNC_METRICS_PORT=str(ports["vendor-sync-metrics"]),
        CONNLOG_GATEWAY_PORT=str(ports["gateway"]),
        CONNLOG_LOG_FORMAT="json",
        CONNLOG_SHUTDOWN_GRACE_SECONDS="2",
        CONNLOG_AUTH_CACHE_SECONDS="0",
        **extra,
    )
    return env, ports


async def start_suite(data_dir: Path, **extra_env: str) -> SuiteProcess:
    """Start ``connlog up`` and wait for its banner."""
    env, ports = suite_env(data_dir, **extra_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connlog", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    banner = threading.Event()

    def read() -> None:  # drain the pipe for as long as the suite runs, or it blocks
        for line in proc.stdout:
            lines.append(line)
            if "API key" in line:
                banner.set()
        banner.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    suite = SuiteProcess(proc, "", data_dir, ports, lines, env, reader)
    try:
        await poll(lambda: banner.is_set(), "the suite's banner")
        key_lines = [line for line in lines if "API key" in line]
        if not key_lines:
            raise AssertionError("connlog up exited early:\n" + suite.output())
        suite.key = key_lines[0].split("API key", 1)[1].split()[0]
    except BaseException:
        await stop_suite(suite, check=False)
        raise
    return suite


async def stop_suite(suite: SuiteProcess, check: bool = True) -> None:
    """Ctrl-C, then wait for it to exit (killing its tree if it will not)."""
    if suite.proc.poll() is None:
        suite.proc.send_signal(signal.SIGINT)
    try:
        await poll(lambda: suite.proc.poll() is not None, "connlog up to exit")
    finally:
        if suite.proc.poll() is None:
            for proc in [*suite.supervisor().children(recursive=True), suite.supervisor()]:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            suite.proc.wait(10)
        if suite._reader is not None:
            suite._reader.join(10)
    if check:
        assert suite.proc.returncode == 0, suite.output()


# -- answering -----------------------------------------------------------------

async def health(address: str, service: str = "") -> int | None:
    """The health status at ``address`` (a fresh connection), None if it does not answer."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.aio.AioRpcError:
            return None
    return reply.status


async def serving(address: str) -> bool:
    return await health(address) == health_pb2.HealthCheckResponse.SERVING


async def gateway_ready(suite: SuiteProcess) -> bool:
    import httpx

    from connlog.core.settings import Settings
    from connlog.gateway.config import admin_socket
    from connlog.gateway.process import admin

    try:
        async with httpx.AsyncClient(timeout=2) as http:
            ready = await admin(admin_socket(Settings(data_dir=suite.data_dir)), "/ready", timeout=2)
            if ready.status_code != 200:
                return False
            # and it reaches a backend
            answer = await http.get(f"{suite.gateway_url}/v1/syncSources",
                                    headers={"Authorization": f"Bearer {suite.key}"})
            return answer.status_code == 200
    except httpx.HTTPError:
        return False


async def ready(suite: SuiteProcess, name: str) -> bool:
    if name == "gateway":
        return await gateway_ready(suite)
    return await serving(suite.address(name))


# -- the counted load ------------------------------------------------------------

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


@dataclass
class Load:
    """Ingests events with unique client ids (``<prefix>-<n>``) in small
    batches, alternately straight to the ingest service and through Envoy,
    until stopped. At most ``limit`` distinct events: after that it sends the
    same ones again (they must come back as duplicates), so the count stays
    bounded however fast the machine is. A batch that fails with UNAVAILABLE
    (a lost connection is UNAVAILABLE too) is sent again, the same events,
    until acknowledged: de-duplication makes that safe."""

    suite: SuiteProcess
    network: str
    prefix: str
    batch: int = 10
    limit: int = 5_000  # a multiple of batch
    acknowledged: set[str] = field(default_factory=set)
    batches: int = 0
    retries: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def abort(self) -> None:
        """Stop now, whatever its state (the test failed already)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def finish(self) -> None:
        """Stop after the batch in hand is acknowledged; raise what failed."""
        self.stop.set()
        assert self._task is not None
        await self._task

    async def progressed(self, since: int) -> bool:
        if self._task is not None and self._task.done():
            self._task.result()  # raise what stopped it (an AssertionError, which poll does not swallow)
            raise AssertionError("the load stopped early")
        return self.batches > since

    async def _run(self) -> None:
        when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        addresses = [self.suite.address("ingest"), f"127.0.0.1:{self.suite.ports['gateway']}"]
        channels = [grpc.aio.insecure_channel(a, options=CHANNEL_OPTIONS) for a in addresses]
        stubs = [ingest_service_pb2_grpc.IngestServiceStub(c) for c in channels]
        n = 0
        try:
            while not self.stop.is_set():
                ids = [f"{self.prefix}-{n + i}" for i in range(self.batch)]
                events = [simple_event(self.network, client_id=cid, when=when) for cid in ids]
                await self._send(stubs[self.batches % 2], events, ids)
                n = (n + self.batch) % self.limit
        finally:
            for channel in channels:
                await channel.close()

    async def _send(
        self, stub: ingest_service_pb2_grpc.IngestServiceStub, events: list[pb.ConnectionEvent], ids: list[str]
    ) -> None:
        request = ipb.IngestConnectionEventsRequest(events=events)
        pause = 0.02
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while True:
            try:
                reply = await stub.IngestConnectionEvents(request, metadata=self.suite.md, timeout=30)
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE or loop.time() > end:
                    raise AssertionError(f"ingest failed: {err.code()} {err.details()}\n"
                                         + self.suite.output()) from err
                self.retries += 1
                # a client's retry backoff, not a synchronisation
                await asyncio.sleep(pause)
                pause = min(0.5, pause * 2)
                continue
            assert reply.rejected_count == 0, reply
            assert reply.accepted_count + reply.duplicate_count == len(ids), reply
            if ids[0] in self.acknowledged:  # sent again after the limit: nothing new may be stored
                assert reply.duplicate_count == len(ids), reply
            self.acknowledged.update(ids)
            self.batches += 1
            return


@contextlib.asynccontextmanager
async def running(load: Load) -> AsyncIterator[Load]:
    """``load`` running inside the block; finished (its failures raised)
    after it, or aborted if the block fails (its failure is what counts)."""
    load.start()
    try:
        yield load
    except BaseException:
        await load.abort()
        raise
    await load.finish()


async def stored_counts(suite: SuiteProcess, network: str) -> dict[str, int]:
    """client id -> number of stored rows, for one network (SQL on the
    suite's embedded database)."""
    import asyncpg

    url = embedded_server_url(suite.pgdata)
    assert url is not None, "the database is not running"
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT e.client_id, count(*) AS n FROM connection_events e
               JOIN networks n ON n.network_ref = e.network_ref
               WHERE n.network_id = $1 GROUP BY e.client_id""",
            network,
        )
    finally:
        await conn.close()
    return {row["client_id"]: row["n"] for row in rows}


def assert_stored_once(counts: dict[str, int], acknowledged: set[str]) -> None:
    twice = {cid: n for cid, n in counts.items() if n != 1}
    assert not twice, f"stored more than once: {sorted(twice.items())[:10]}"
    missing = acknowledged - counts.keys()
    assert not missing, f"{len(missing)} acknowledged events not stored, e.g. {sorted(missing)[:5]}"
    extra = counts.keys() - acknowledged
    assert not extra, f"{len(extra)} events stored that were never acknowledged, e.g. {sorted(extra)[:5]}"
    # the figure docs/reliability.md quotes (shown with pytest -s)
    print(f"[faults] acknowledged {len(acknowledged)}, stored once {len(counts)}, lost 0, stored twice 0")
