"""``connlog up``: the whole suite on one machine.

Starts the database (embedded PostgreSQL unless ``DATABASE_URL`` is set),
applies migrations, starts each service as its own process, waits until every
one reports SERVING, prints where they listen with a ready-to-use key, and on
Ctrl-C (or SIGTERM) stops them all gracefully, database last.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from connlog.core.auth import Role, create_key
from connlog.core.database import create_pool, resolve_database_url, stop_embedded
from connlog.core.logging import get_logger
from connlog.core.settings import Settings
from connlog.gateway import process as gateway
from connlog.store.accounts import AccountStore
from connlog.store.migrate import migrate

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class ServiceProcess:
    """One service of the suite and where it listens."""

    name: str
    port: int
    metrics_port: int


def suite_services(settings: Settings) -> list[ServiceProcess]:
    return [
        ServiceProcess("ingest", settings.ingest_port, settings.ingest_metrics_port),
        ServiceProcess("query", settings.query_port, settings.query_metrics_port),
        ServiceProcess("vendor-sync", settings.vendor_sync_port, settings.vendor_sync_metrics_port),
    ]


async def prepare_database(settings: Settings, database_url: str) -> str:
    """Apply migrations; return the key file's token for the default tenant,
    creating the tenant and an administrator key on first start."""
    pool = await create_pool(settings, database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        key_file = settings.data_dir / "admin.key"
        if key_file.exists():
            return key_file.read_text().strip()
        key = await create_key(
            AccountStore(pool), tenant_id=DEFAULT_TENANT, role=Role.ADMINISTRATOR, description="created by connlog up"
        )
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.token + "\n")
        return key.token
    finally:
        await pool.close()


async def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Wait until the gRPC health service at ``address`` reports SERVING."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} did not become healthy in {timeout:.0f}s")
            await asyncio.sleep(0.2)


def _spawn(service: ServiceProcess, env: dict[str, str]) -> subprocess.Popen:
    # Own session: a Ctrl-C in the terminal reaches only the supervisor, which
    # then stops each service in order.
    return subprocess.Popen(
        [sys.executable, "-m", "connlog", "serve", service.name], env=env, start_new_session=True
    )


async def run_suite(settings: Settings) -> int:
    """Run the suite until a signal or until a service dies."""
    log = get_logger("suite")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = settings.database_url is None
    database_url = resolve_database_url(settings)
    log.info("database ready", embedded=embedded, data_dir=str(settings.data_dir.resolve()))
    token = await prepare_database(settings, database_url)

    env = {**os.environ, "DATABASE_URL": database_url}
    services = suite_services(settings)
    processes: dict[str, subprocess.Popen] = {}
    envoy: subprocess.Popen | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    exit_code = 0
    try:
        for service in services:
            processes[service.name] = _spawn(service, env)
        await asyncio.gather(*(wait_serving(f"{settings.host}:{s.port}") for s in services))
        envoy = gateway.start(settings, settings.data_dir / "envoy.yaml", settings.data_dir / "envoy.log")
        processes["gateway"] = envoy
        await gateway.wait_ready(settings.gateway_admin_port, envoy)
        _print_banner(settings, services, token)
        while not stop.is_set():
            dead = [name for name, proc in processes.items() if proc.poll() is not None]
            if dead:
                log.error("service exited", services=dead)
                exit_code = 1
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                pass
    finally:
        if envoy is not None:
            await asyncio.to_thread(gateway.stop, envoy)
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in processes.items():
            try:
                await asyncio.to_thread(proc.wait, settings.shutdown_grace_seconds + 10)
            except subprocess.TimeoutExpired:
                log.warning("service did not stop in time; killing it", service=name)
                proc.kill()
        if embedded:
            await asyncio.to_thread(stop_embedded, settings)
        log.info("suite stopped")
    return exit_code


def _print_banner(settings: Settings, services: list[ServiceProcess], token: str) -> None:
    lines = ["", "connlog is up:"]
    for s in services:
        lines.append(
            f"  {s.name:<11} gRPC {settings.host}:{s.port}   metrics http://{settings.host}:{s.metrics_port}/metrics"
        )
    lines += [
        f"  gateway  http://{settings.host}:{settings.gateway_port}  (Meraki /api/v1, Mojo /V5, Zequenze, /v1, gRPC)"
        f"   admin http://127.0.0.1:{settings.gateway_admin_port}",
        f"  data     {settings.data_dir.resolve()}",
        f"  API key  {token}   (administrator of tenant '{DEFAULT_TENANT}', also in {settings.data_dir / 'admin.key'})",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
