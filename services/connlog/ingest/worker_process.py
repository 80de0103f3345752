"""What runs in an ingest validation worker process (``connlog.ingest.workers``
starts them): preparing a serialized stream batch for the database, and
ending with the service process.

A worker imports this module to find the function it is given, so it
imports only what preparing a batch needs (protobuf, the normalisation, the
stored row), not the service's gRPC, database or logging libraries: each
worker's memory is that much smaller.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.principal import Principal
from connlog.ingest.batches import PreparedBatch, prepare_events
from connlog.ingest.normalise import IngestWindow

# How often a worker checks that its parent still lives (the fallback for
# platforms without PR_SET_PDEATHSIG).
PARENT_CHECK_SECONDS = 1.0

_PR_SET_PDEATHSIG = 1


def parse_batch(data: bytes) -> RepeatedCompositeFieldContainer[pb.ConnectionEvent]:
    """The events of a serialized batch (a StreamIngestConnectionEventsRequest)."""
    return ingest_pb.StreamIngestConnectionEventsRequest.FromString(data).events


def prepare_serialized(data: bytes, principal: Principal, window: IngestWindow) -> PreparedBatch:
    """In a worker: a serialized batch prepared for the database."""
    return prepare_events(parse_batch(data), principal, window)


def ready() -> int:
    """A no-op task: the worker has started (its pid)."""
    return os.getpid()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """A worker's initializer: end this worker when the service process ends,
    however it ends (kill -9 included), so no worker outlives it."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
