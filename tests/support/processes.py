"""Service processes for tests that need real ones (several on one port,
replicas, a kill -9): started with ``connlog serve``, each logging to a file
of its own, stopped gracefully (SIGTERM, then killed if they hang)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def start_process(service: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``connlog serve <service>`` with ``env``, its output in ``log``."""
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "connlog", "serve", service], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process still running, then wait; kill what hangs."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def service_processes(service: str, envs: list[dict[str, str]], logs: Path,
                      name: str | None = None) -> Iterator[list[subprocess.Popen]]:
    """One ``service`` process per env (logs ``<name>-<n>.log`` in ``logs``),
    stopped on leaving."""
    procs: list[subprocess.Popen] = []
    try:
        for n, env in enumerate(envs):
            procs.append(start_process(service, env, logs / f"{name or service}-{n}.log"))
        yield procs
    finally:
        stop_processes(procs)


def rpc_calls(metrics_port: int, method: str) -> float:
    """The calls of ``method`` a process has answered (its /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("connlog_rpc_requests_total{") and f'method="{method}"' in line)
