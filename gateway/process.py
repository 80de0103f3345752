"""Runs Envoy as a child process in its own session (so a terminal's signals
reach only the supervisor), and validates configurations."""

from __future__ import annotations

import subprocess
from pathlib import Path

from connlog.core.settings import Settings
from connlog.gateway.config import envoy_binary, write_config


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
    import os

    config = write_config(settings, settings.data_dir / "envoy.yaml")
    binary = envoy_binary(settings)
    os.execv(binary, [binary, "-c", str(config), "--log-level", "info", "--drain-time-s", "5"])


def start(settings: Settings, config_path: Path, log_path: Path, **ports: int) -> subprocess.Popen:
    """Render the configuration and start Envoy; returns the process."""
    write_config(settings, config_path, **ports)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [
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
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()


async def wait_ready(admin_port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until Envoy's admin ``/ready`` answers LIVE."""
    import asyncio
    import urllib.request

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(ready):
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited with code {proc.returncode}")
        if loop.time() > deadline:
            raise TimeoutError(f"envoy not ready after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop Envoy by its PID (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
