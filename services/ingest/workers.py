"""Validation on other cores.

One Python process validates and normalises events on one core, which caps a
single ingest process (docs/benchmarks.md has the profile). With
``ingest_workers`` > 0 the batches of a stream are normalised in that many
worker processes while the service's own process receives the stream and
talks to the database. Small batches (single events, REST) stay in-process:
for them the hand-over would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.auth import Principal
from connlog.ingest.normalise import FieldError, IngestWindow, normalise
from connlog.store.events import StoredEvent

# (position, stored event) for the valid ones; (position, field, reason) for the rest
Normalised = tuple[list[tuple[int, StoredEvent]], list[tuple[int, str, str]]]


def normalise_events(events, principal: Principal, window: IngestWindow, passed: dict | None = None) -> Normalised:
    """Normalise a batch of events (in place), keeping their positions."""
    stored, rejected = [], []
    for position, event in enumerate(events):
        try:
            stored.append((position, normalise(event, principal, window, passed)))
        except FieldError as err:
            rejected.append((position, err.field, err.reason))
    return stored, rejected


def _normalise_serialized(data: bytes, principal: Principal, window: IngestWindow) -> Normalised:
    """In a worker: the same, from a serialized batch."""
    return normalise_events(ingest_pb.StreamIngestConnectionEventsRequest.FromString(data).events, principal, window)


def _ready() -> int:
    return os.getpid()


def worker_count(setting: int) -> int:
    """``ingest_workers``: -1 means one per core beyond the first (at most 8)."""
    if setting >= 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, max(0, cores - 1))


class NormaliserPool:
    """Worker processes that normalise serialized batches."""

    def __init__(self, workers: int) -> None:
        # spawn, not fork: the service process runs gRPC and asyncio threads
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self.workers = workers

    async def start(self) -> None:
        """Start every worker now rather than on the first stream."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _ready) for _ in range(self.workers)))

    async def normalise(self, events, principal: Principal, window: IngestWindow) -> Normalised:
        data = ingest_pb.StreamIngestConnectionEventsRequest(events=events).SerializeToString()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _normalise_serialized, data, principal, window)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
