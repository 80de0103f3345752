"""Run the vendor-sync service alone: ``connlog serve vendor-sync``."""

from __future__ import annotations

from connlog.core.sealing import SealingKeyError
from connlog.core.server import serve_until_signalled, start_service
from connlog.core.settings import Settings
from connlog.vendorsync.servicer import SyncServiceKeyMissing, check_startable, register


async def run(settings: Settings) -> None:
    try:
        check_startable(settings)
    except (SyncServiceKeyMissing, SealingKeyError) as exc:
        raise SystemExit(f"connlog serve vendor-sync: {exc}") from None
    service = await start_service(
        "vendor-sync", settings, register, port=settings.vendor_sync_port,
        metrics_port=settings.vendor_sync_metrics_port,
    )
    await serve_until_signalled(service)
