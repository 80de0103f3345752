"""Runs Envoy as a child process in its own session (so a terminal's signals
reach only the supervisor), validates configurations, and holds the
process-group helpers ``connlog up`` supervises every child with.

Every child of the supervisor leads its own session, hence its own process
group (``start_new_session=True``): its process group id is its pid, and
whatever it starts (the ingest service's validation workers) stays in that
group unless it makes a session of its own. Stopping or replacing a child
therefore signals the whole group, so nothing it started outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connlog.core.settings import Settings
from connlog.gateway.config import envoy_binary, prepare_admin_socket, write_config

# Linux: ``prctl(PR_SET_PDEATHSIG, sig)`` then exec the real command, so the
# child gets ``sig`` when the supervisor dies, however it dies (kill -9
# included). The setting survives execve; checking the parent afterwards closes
# the window in which the supervisor died before prctl ran.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[1]), 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    os._exit(1)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def die_with_parent(command: list[str], sig: int = signal.SIGTERM) -> list[str]:
    """``command`` wrapped so that (on Linux) the process gets ``sig`` when
    this process dies; the wrapper execs, so the pid is the command's. The
    parent is the thread that starts the process: start it from the main
    thread. Elsewhere the command is returned unchanged."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(int(sig)), str(os.getpid()), *command]


def exited(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` has exited, without reaping it: while it is an
    unreaped zombie its pid (its process group's id) cannot be reused, so
    ``kill_group`` cannot hit an unrelated group."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return proc.poll() is not None
    except (AttributeError, OSError):  # no waitid/WNOWAIT on this platform
        return proc.poll() is not None
    return info is not None and info.si_pid != 0


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL every process of ``proc``'s group (it leads its own session),
    then reap ``proc``. Once ``proc`` is reaped its pid may belong to someone
    else, so a reaped ``proc``'s group is left alone (``exited`` never reaps)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # cannot happen after SIGKILL, short of a hung kernel
        pass


def stop_group(proc: subprocess.Popen, timeout: float) -> bool:
    """Stop ``proc`` gracefully (SIGTERM to the leader only, so it can finish
    its work with its helpers still there), SIGKILL it after ``timeout``, then
    SIGKILL whatever is left of its group. Returns whether it stopped by
    itself in time."""
    graceful = True
    if not exited(proc):
        try:
            os.kill(proc.pid, signal.SIGTERM)  # not send_signal: it would reap, freeing the group's id
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while not exited(proc):
            if time.monotonic() > deadline:
                graceful = False
                break
            time.sleep(0.05)
    kill_group(proc)
    return graceful


def validate(settings: Settings, config: Path) -> subprocess.CompletedProcess:
    """``envoy --mode validate`` on a configuration file."""
    return subprocess.run(
        [envoy_binary(settings), "--mode", "validate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def exec_envoy(settings: Settings) -> None:
    """Render the configuration into the data directory and replace this
    process with Envoy (``connlog serve gateway``, e.g. in a container)."""
    prepare_admin_socket(settings)
    config = write_config(settings, settings.data_dir / "envoy.yaml")
    binary = envoy_binary(settings)
    os.execv(binary, [binary, "-c", str(config), "--log-level", "info", "--drain-time-s", "5"])


def start(
    settings: Settings, config_path: Path, log_path: Path, *, with_parent: bool = False,
    gateway_port: int | None = None,
) -> subprocess.Popen:
    """Render the configuration and start Envoy in its own session; returns
    the process. ``with_parent``: Envoy gets SIGTERM when this process dies
    (Linux; call from the main thread)."""
    prepare_admin_socket(settings)
    write_config(settings, config_path, gateway_port=gateway_port)
    command = [
        envoy_binary(settings),
        "-c",
        str(config_path),
        "--log-level",
        "warn",
        "--base-id-path",
        str(config_path.with_suffix(".base-id")),
        "--use-dynamic-base-id",
        "--drain-time-s",
        "5",
    ]
    if with_parent:
        command = die_with_parent(command)
    log = open(log_path, "ab")  # handed to the child
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    finally:
        log.close()


async def admin(socket: Path, path: str, *, method: str = "GET", timeout: float = 5.0) -> httpx.Response:
    """A request to Envoy's admin interface, over its Unix socket."""
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://envoy-admin", timeout=timeout) as client:
        return await client.request(method, path)


async def wait_ready(socket: Path, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until Envoy's admin ``/ready`` (on its Unix socket) answers LIVE."""
    import asyncio

    async def ready() -> bool:
        try:
            return (await admin(socket, "/ready", timeout=1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await ready():
        if exited(proc):
            raise RuntimeError("envoy exited before it was ready")
        if loop.time() > deadline:
            raise TimeoutError(f"envoy not ready after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop Envoy (SIGTERM, then SIGKILL after ``timeout``) and anything left
    in its process group."""
    stop_group(proc, timeout)
