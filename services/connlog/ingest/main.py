"""Run the ingest service alone: ``connlog serve ingest``."""

from __future__ import annotations

from connlog.core.server import serve_until_signalled, start_service
from connlog.core.settings import Settings
from connlog.ingest.servicer import register


async def run(settings: Settings) -> None:
    service = await start_service(
        "ingest", settings, register, port=settings.ingest_port, metrics_port=settings.ingest_metrics_port
    )
    await serve_until_signalled(service)
