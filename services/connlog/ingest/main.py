"""Run the ingest service alone: ``connlog serve ingest``.

With ``ingest_processes`` > 1, each such process (``connlog up`` starts
them, with their ``ingest_process_index``) binds ``ingest_port`` with
SO_REUSEPORT, and serves its metrics on a port of its own
(``ingest_metrics_port`` for process 0, ``ingest_replica_metrics_port + i - 1``
for process i)."""

from __future__ import annotations

from connlog.core.server import serve_until_signalled, start_service
from connlog.core.settings import Settings
from connlog.ingest.servicer import register


def metrics_port(settings: Settings) -> int:
    """Where this ingest process serves ``/metrics``."""
    index = settings.ingest_process_index
    if index == 0:
        return settings.ingest_metrics_port
    base = settings.ingest_replica_metrics_port
    return base + index - 1 if base else 0


async def run(settings: Settings) -> None:
    service = await start_service(
        "ingest", settings, register, port=settings.ingest_port, metrics_port=metrics_port(settings),
        reuse_port=settings.ingest_processes > 1,
    )
    await serve_until_signalled(service)
