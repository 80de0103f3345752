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
