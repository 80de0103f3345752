"""Run the vendor-sync service alone: ``connlog serve vendor-sync``."""

from __future__ import annotations

from connlog.core.server import serve_until_signalled, start_service
from connlog.core.settings import Settings
from connlog.vendorsync.servicer import register


async def run(settings: Settings) -> None:
    service = await start_service(
        "vendor-sync", settings, register, port=settings.vendor_sync_port,
        metrics_port=settings.vendor_sync_metrics_port,
    )
    await serve_until_signalled(service)
