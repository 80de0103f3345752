"""Validation on other cores.

One Python process validates and normalises events on one core, which caps a
single ingest process (docs/benchmarks.md has the profile). With
``ingest_workers`` > 0 the batches of a stream are prepared in that many
worker processes (normalised, de-duplicated and encoded as binary COPY rows:
``connlog.ingest.batches.prepare_events``) while the service's own process
receives the stream and copies the prepared bytes to the database. Small
batches (single events, REST) stay in-process: for them the hand-over would
cost more than it saves.

The pool heals itself: when a worker dies (killed, out of memory) the
executor is broken for good, so the pool replaces it with a new one and runs
the failed batch again (preparing is pure, so running it twice is safe). If
the new executor breaks too, that batch is prepared in-process. Workers die
with the service process: ``PR_SET_PDEATHSIG`` on Linux, and a thread that
watches the parent everywhere.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.logging import get_logger
from connlog.core.principal import Principal
from connlog.ingest.batches import PreparedBatch, prepare_events
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.worker_process import die_with_parent, parse_batch, prepare_serialized, ready

# New executors one batch may cause before it is prepared in-process.
REPLACEMENTS_PER_BATCH = 1


def worker_count(setting: int, processes: int = 1) -> int:
    """``ingest_workers``: -1 means the cores beyond the ingest processes
    (``ingest_processes``) shared out among them: one per core beyond the
    first for a single process (at most 8)."""
    if setting >= 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, max(0, cores - processes) // processes)


class NormaliserPool:
    """Worker processes that prepare serialized batches."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.replacements = 0  # executors replaced because a worker died
        self._closed = False
        self._log = get_logger("ingest")
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the service process runs gRPC and asyncio threads.
        # Workers are started from the event loop's thread (submit), which
        # lives as long as the process, so PR_SET_PDEATHSIG fires only when
        # the process ends.
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )

    async def start(self) -> None:
        """Start every worker now rather than on the first stream."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, ready) for _ in range(self.workers)))

    def _replace(self, broken: ProcessPoolExecutor, error: BaseException) -> None:
        """Replace ``broken`` unless a concurrent batch already did."""
        if self._executor is not broken:
            return
        self._executor = self._new_executor()
        self.replacements += 1
        broken.shutdown(wait=False, cancel_futures=True)  # its workers are already gone or terminated
        self._log.warning(
            "validation worker died; worker pool replaced", error=str(error), replacements=self.replacements
        )

    async def prepare(
        self, events: Sequence[pb.ConnectionEvent], principal: Principal, window: IngestWindow
    ) -> PreparedBatch:
        data = ingest_pb.StreamIngestConnectionEventsRequest(events=events).SerializeToString()
        loop = asyncio.get_running_loop()
        for _ in range(1 + REPLACEMENTS_PER_BATCH):
            executor = self._executor
            try:
                return await loop.run_in_executor(executor, prepare_serialized, data, principal, window)
            except BrokenProcessPool as err:
                if self._closed:
                    raise
                self._replace(executor, err)
        self._log.warning("worker pool broke again; batch prepared in-process", events=len(events))
        return prepare_events(parse_batch(data), principal, window)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
