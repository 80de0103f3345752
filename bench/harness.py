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

import asyncpg
import psutil

from connlog.core.database import DatabaseServer
from connlog.core.settings import Settings
from connlog.devtools.ports import free_ports
from connlog.gateway import process as gateway
from connlog.gateway.config import admin_socket
from connlog.store.partitions import maintain_partitions
from connlog.suite import wait_serving

# A benchmark database like a small production one (an embedded server only:
# a DATABASE_URL server is not ours to tune).
SERVER_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "15min", "work_mem": "16MB"}


class MemorySampler:
    """Peak RSS per named process, sampled every 100 ms in a thread."""

    def __init__(self) -> None:
        self.processes: dict[str, psutil.Process] = {}
        self.peak: dict[str, int] = {}
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
                self.peak[name] = max(self.peak.get(name, 0), rss)
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

    @property
    def ingest_address(self) -> str:
        return f"127.0.0.1:{self.settings.ingest_port}"

    @property
    def query_address(self) -> str:
        return f"127.0.0.1:{self.settings.query_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"


class running_suite:
    """``async with running_suite(...) as suite``: everything up, then down.
    The database is a fresh one (connlog.core.database.DatabaseServer): on
    DATABASE_URL's server if set, else on an embedded server of its own,
    tuned by SERVER_SETTINGS."""

    def __init__(self, retention_days: int = 31) -> None:
        self._retention = retention_days
        self._server: DatabaseServer | None = None
        self.suite: Suite | None = None

    async def __aenter__(self) -> Suite:
        workdir = Path(tempfile.mkdtemp(prefix="connlog-bench-"))
        os.chmod(workdir, 0o755)
        self._server = await asyncio.to_thread(DatabaseServer.start, workdir / "postgres")
        await self._server.configure(**SERVER_SETTINGS)
        url = await self._server.create_database("connlog_bench", migrated=True)
        ingest, query, ingest_metrics, query_metrics, gateway_port = free_ports(5)
        # Envoy's admin socket in a private folder of its own (the work
        # folder is open to the database server's user)
        (workdir / "gateway").mkdir(mode=0o700)
        settings = Settings(
            database_url=url, data_dir=workdir, ingest_port=ingest, query_port=query,
            ingest_metrics_port=ingest_metrics, query_metrics_port=query_metrics, gateway_port=gateway_port,
            gateway_admin_socket=workdir / "gateway" / "admin.sock", retention_days=self._retention,
            log_level="warning",
            db_pool_max_size=8, meraki_rate_limit_per_second=100000, auth_cache_seconds=60,
            # the load comes from a handful of keys: budgets far above it
            key_write_events_per_second=1e9, key_write_burst=1e9,
            device_write_events_per_second=1e9, device_write_burst=1e9,
        )
        conn = await asyncpg.connect(url)
        await maintain_partitions(conn, retention_days=self._retention, ahead_days=7)
        await conn.close()
        suite = Suite(settings, url, workdir=workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
        env |= {"DATABASE_URL": url, **{f"CONNLOG_{k.upper()}": str(v) for k, v in settings.model_dump().items()
                                        if v not in (None, ()) and k != "database_url"}}
        for name in ("ingest", "query"):
            proc = subprocess.Popen([sys.executable, "-m", "connlog", "serve", name], env=env,
                                    start_new_session=True)
            suite.processes[name] = proc
            suite.memory.watch(name, proc.pid)
        await asyncio.gather(wait_serving(suite.ingest_address), wait_serving(suite.query_address))
        envoy = gateway.start(settings, workdir / "envoy.yaml", workdir / "envoy.log")
        suite.processes["envoy"] = envoy
        suite.memory.watch("envoy", envoy.pid)
        await gateway.wait_ready(admin_socket(settings), envoy)
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
