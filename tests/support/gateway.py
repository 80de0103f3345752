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
    admin_port: int
    config: Path


@contextlib.asynccontextmanager
async def envoy_in_front(settings: Settings, folder: Path, **upstreams: str) -> AsyncIterator[Gateway]:
    """A real Envoy on free ports forwarding to ``upstreams``
    (``ingest``/``query``/``vendor_sync`` = "host:port")."""
    from connlog.gateway import process

    port, admin_port = free_ports(2)
    settings = settings.model_copy(update={
        "gateway_port": port,
        "gateway_admin_port": admin_port,
        **{f"gateway_{name}_upstream": address for name, address in upstreams.items()},
    })
    proc = process.start(settings, folder / "envoy.yaml", folder / "envoy.log")
    try:
        await process.wait_ready(admin_port, proc)
        yield Gateway(f"http://127.0.0.1:{port}", admin_port, folder / "envoy.yaml")
    finally:
        process.stop(proc)
