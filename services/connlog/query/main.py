"""Run the query service alone: ``connlog serve query``."""

from __future__ import annotations

from connlog.core.server import serve_until_signalled, start_service
from connlog.core.settings import Settings
from connlog.query.servicer import register


async def run(settings: Settings) -> None:
    service = await start_service(
        "query", settings, register, port=settings.query_port, metrics_port=settings.query_metrics_port,
        read_url=settings.database_read_url,
    )
    await serve_until_signalled(service)
