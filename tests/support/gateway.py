"""A real Envoy in front of test services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from connlog.core.settings import Settings
from connlog.devtools.ports import free_ports


@dataclass
class Gateway:
    """A real Envoy in front of the in-process services."""

    url: str
    admin_socket: Path
    config: Path
    port: int
    pid: int


@contextlib.asynccontextmanager
async def envoy_in_front(settings: Settings, folder: Path, **upstreams: str) -> AsyncIterator[Gateway]:
    """A real Envoy on a free port forwarding to ``upstreams``
    (``ingest``/``query``/``vendor_sync`` = "host:port"), its admin socket in
    ``folder``."""
    from connlog.gateway import process
    from connlog.gateway.config import admin_socket

    [port] = free_ports(1)
    settings = settings.model_copy(update={
        "gateway_port": port,
        "data_dir": folder,
        "gateway_admin_socket": None,
        **{f"gateway_{name}_upstream": address for name, address in upstreams.items()},
    })
    proc = process.start(settings, folder / "envoy.yaml", folder / "envoy.log")
    try:
        await process.wait_ready(admin_socket(settings), proc)
        yield Gateway(f"http://127.0.0.1:{port}", admin_socket(settings), folder / "envoy.yaml", port, proc.pid)
    finally:
        process.stop(proc)
