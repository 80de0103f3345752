"""connlog.ingest.worker_process: what a validation worker imports to run its
tasks stays light (each worker's memory is an ingest process's: see the
bench's peak RSS), and its tasks prepare like the service process."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.core.principal import Principal, Role
from connlog.ingest.batches import prepare_events
from connlog.ingest.normalise import IngestWindow
from connlog.ingest.worker_process import prepare_serialized
from tests.support.factories import now, simple_event

_IMPORTED = """
import sys
import connlog.ingest.worker_process
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.fixture(scope="module")
def loaded() -> list[str]:
    """The top-level packages a fresh interpreter holds after importing the module."""
    return subprocess.run([sys.executable, "-c", _IMPORTED], capture_output=True, text=True, check=True,
                          timeout=120).stdout.split()


@pytest.mark.parametrize("library", ["grpc", "asyncpg", "structlog", "pydantic", "prometheus_client", "uvloop"])
def test_a_worker_loads_no_service_library(loaded, library):
    assert "google" in loaded and "connlog" in loaded  # (the check sees what was imported)
    assert library not in loaded


def test_a_serialized_batch_is_prepared_as_in_process():
    events = [simple_event("N_wp", client_id=f"c{i}") for i in range(5)] + [simple_event("N_wp", mac="nope")]
    principal = Principal("k", "t", 1, Role.OPERATOR, None)
    window = IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    data = ingest_pb.StreamIngestConnectionEventsRequest(events=events).SerializeToString()
    prepared = prepare_serialized(data, principal, window)
    assert prepared == prepare_events(events, principal, window)
    assert prepared.rows.row_count == 5 and [p for p, _, _ in prepared.rejected] == [5]
