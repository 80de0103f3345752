"""Starts the suite for a benchmark: a fresh embedded PostgreSQL (or a new
database on DATABASE_URL's server), the ingest and query services as their own
processes, and Envoy; samples every process's memory."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import psutil

from connlog.core.database import DatabaseServer
from connlog.core.settings import Settings
from connlog.devtools.ports import free_ports
from connlog.gateway import process as gateway
from connlog.gateway.config import admin_socket
from connlog.ingest.workers import worker_count
from connlog.store.partitions import maintain_partitions
from connlog.store.rollups import status
from connlog.suite import wait_listening, wait_serving

# A benchmark database like a small production one (an embedded server only:
# a DATABASE_URL server is not ours to tune).
SERVER_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "15min", "work_mem": "16MB"}


class MemorySampler:
    """Peak RSS per named process, sampled every 100 ms in a thread."""

    def __init__(self) -> None:
        self.processes: dict[str, psutil.Process] = {}
        self.peak: dict[str, int] = {}
        self.stage = "start-up"  # the benchmark stage running now (set by its driver)
        self.peak_stage: dict[str, str] = {}  # the stage during which each process peaked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.processes[name] = psutil.Process(pid)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in list(self.processes.items()):
                try:
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
                if rss > self.peak.get(name, 0):
                    self.peak[name] = rss
                    self.peak_stage[name] = self.stage
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


@dataclass
class Suite:
    settings: Settings
    database_url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    memory: MemorySampler = field(default_factory=MemorySampler)
    workdir: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    # each ingest process's metrics port, by its index (they share ingest_port)
    ingest_metrics_ports: list[int] = field(default_factory=list)

    @property
    def ingest_running(self) -> int:
        """Ingest processes running now."""
        return sum(1 for name in self.processes if name.startswith("ingest"))

    async def scale_ingest(self, count: int) -> None:
        """Run ``count`` ingest processes on the ingest port (at most
        ``settings.ingest_processes``, every one bound with SO_REUSEPORT),
        then restart Envoy, so that its upstream connections are made anew
        over the processes now listening (the kernel spreads connections, not
        calls, and Envoy keeps its connections)."""
        if not 1 <= count <= self.settings.ingest_processes:
            raise ValueError(f"1 to {self.settings.ingest_processes} ingest processes, not {count}")
        if count == self.ingest_running:
            return
        while self.ingest_running > count:
            name = ingest_name(self.ingest_running - 1)
            proc = self.processes.pop(name)
            self.memory.processes.pop(name, None)
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
        while self.ingest_running < count:
            await self._start_ingest(self.ingest_running)
        await self.restart_gateway()

    async def _start_ingest(self, index: int) -> None:
        port = self.ingest_metrics_ports[index]
        # process i serves its metrics on ingest_replica_metrics_port + i - 1
        env = {**self.env, "CONNLOG_INGEST_PROCESS_INDEX": str(index)}
        if index:
            env["CONNLOG_INGEST_REPLICA_METRICS_PORT"] = str(port - index + 1)
        proc = subprocess.Popen([sys.executable, "-m", "connlog", "serve", "ingest"], env=env, start_new_session=True)
        self.processes[ingest_name(index)] = proc
        self.memory.watch(ingest_name(index), proc.pid)
        await wait_listening(self.settings.host, port, proc=proc)

    async def restart_gateway(self) -> None:
        old = self.processes.pop("envoy", None)
        if old is not None:
            old.terminate()
            await asyncio.to_thread(old.wait, 30)
        envoy = gateway.start(self.settings, self.workdir / "envoy.yaml", self.workdir / "envoy.log")
        self.processes["envoy"] = envoy
        self.memory.watch("envoy", envoy.pid)
        await gateway.wait_ready(admin_socket(self.settings), envoy)
        await wait_ingest_healthy(self.settings)

    async def ingest_calls(self) -> list[int]:
        """Calls each running ingest process has served so far (its
        ``connlog_rpc_requests`` counter, health checks left out)."""
        counts = []
        async with aiohttp.ClientSession() as http:
            for index in range(self.ingest_running):
                async with http.get(f"http://{self.settings.host}:{self.ingest_metrics_ports[index]}/metrics") as r:
                    text = await r.text()
                counts.append(int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                                      if line.startswith("connlog_rpc_requests_total{")
                                      and 'method="Check"' not in line)))
        return counts

    @property
    def ingest_address(self) -> str:
        return f"127.0.0.1:{self.settings.ingest_port}"

    @property
    def query_address(self) -> str:
        return f"127.0.0.1:{self.settings.query_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"


def ingest_name(index: int) -> str:
    return "ingest" if index == 0 else f"ingest-{index + 1}"


async def wait_ingest_healthy(settings: Settings, timeout: float = 30.0) -> None:
    """Wait until Envoy's active health check finds the ingest service
    healthy: the gateway's /healthz (Envoy answers 503 until then)."""
    from connlog.gateway.config import HEALTH_PATH

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{settings.gateway_port}{HEALTH_PATH}") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the gateway did not find the services healthy")
            await asyncio.sleep(0.1)


class running_suite:
    """``async with running_suite(...) as suite``: everything up, then down.
    The database is a fresh one (connlog.core.database.DatabaseServer): on
    DATABASE_URL's server if set, else on an embedded server of its own,
    tuned by SERVER_SETTINGS."""

    def __init__(self, retention_days: int = 31, ingest_processes: int = 1, **overrides: object) -> None:
        self._retention = retention_days
        self._ingest_processes = ingest_processes
        self._overrides = overrides  # further settings (experiments: python -m bench.profile --set)
        self._server: DatabaseServer | None = None
        self.suite: Suite | None = None

    async def __aenter__(self) -> Suite:
        workdir = Path(tempfile.mkdtemp(prefix="connlog-bench-"))
        os.chmod(workdir, 0o755)
        self._server = await asyncio.to_thread(DatabaseServer.start, workdir / "postgres")
        await self._server.configure(**SERVER_SETTINGS)
        url = await self._server.create_database("connlog_bench", migrated=True)
        ingest, query, query_metrics, gateway_port, *ingest_metrics = free_ports(4 + self._ingest_processes)
        # Envoy's admin socket in a private folder of its own (the work
        # folder is open to the database server's user)
        (workdir / "gateway").mkdir(mode=0o700)
        defaults = dict(
            database_url=url, data_dir=workdir, ingest_port=ingest, query_port=query,
            ingest_metrics_port=ingest_metrics[0], query_metrics_port=query_metrics, gateway_port=gateway_port,
            # more than one: every ingest process binds with SO_REUSEPORT
            # (scale_ingest starts the further ones); each keeps the validation
            # workers of a lone process (bulk ingest runs with one process, and
            # its figures stay comparable with earlier runs')
            ingest_processes=self._ingest_processes, ingest_workers=worker_count(-1),
            gateway_admin_socket=workdir / "gateway" / "admin.sock", retention_days=self._retention,
            log_level="warning",
            db_pool_max_size=8, meraki_rate_limit_per_second=100000, auth_cache_seconds=60,
            # the load comes from a handful of keys: budgets far above it
            key_write_events_per_second=1e9, key_write_burst=1e9,
            device_write_events_per_second=1e9, device_write_burst=1e9,
        )
        # an experiment's settings win (python -m bench.profile --set)
        settings = Settings(**(defaults | self._overrides))  # type: ignore[arg-type]
        conn = await asyncpg.connect(url)
        await maintain_partitions(conn, retention_days=self._retention, ahead_days=7)
        await conn.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
        env |= {"DATABASE_URL": url, **{f"CONNLOG_{k.upper()}": str(v) for k, v in settings.model_dump().items()
                                        if v not in (None, ()) and k != "database_url"}}
        suite = Suite(settings, url, workdir=workdir, env=env, ingest_metrics_ports=ingest_metrics)
        proc = subprocess.Popen([sys.executable, "-m", "connlog", "serve", "query"], env=env, start_new_session=True)
        suite.processes["query"] = proc
        suite.memory.watch("query", proc.pid)
        await asyncio.gather(suite._start_ingest(0), wait_serving(suite.query_address))
        await wait_serving(suite.ingest_address)
        await suite.restart_gateway()
        suite.memory.start()
        self.suite = suite
        return suite

    async def __aexit__(self, *exc: object) -> None:
        suite = self.suite
        if suite:
            suite.memory.stop()
            for proc in suite.processes.values():
                proc.terminate()
            for proc in suite.processes.values():
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self._server:
            await self._server.drop_databases()
            await asyncio.to_thread(self._server.stop)
        if suite:
            shutil.rmtree(suite.workdir, ignore_errors=True)


async def caught_up(suite: Suite, timeout: float) -> float:
    """Wait until the rollups hold every stored event; returns the seconds
    waited (raises TimeoutError after ``timeout``)."""
    conn = await asyncpg.connect(suite.database_url)
    began = time.perf_counter()
    try:
        while (await status(conn)).pending:
            if time.perf_counter() - began > timeout:
                raise TimeoutError("the rollups did not catch up")
            await asyncio.sleep(0.5)
        return time.perf_counter() - began
    finally:
        await conn.close()
