"""The stream RPC's batching (connlog.ingest.servicer): a batch is copied
straight into the table unless the stream's last batch met duplicates."""

from __future__ import annotations

import types

import pytest

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.core.principal import Principal, Role
from connlog.core.settings import Settings
from connlog.ingest.pipeline import StreamBatchOutcome
from connlog.ingest.servicer import IngestServicer
from tests.support.factories import simple_event

PRINCIPAL = Principal("key", "t", 5, Role.OPERATOR, None)


class ScriptedPipeline:
    """Answers each batch with the next number of duplicates of ``script``,
    recording the ``copy_first`` it was asked with."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.copy_first: list[bool] = []

    async def ingest_stream_batch(self, principal, events, first_index=0, *, copy_first=True):
        self.copy_first.append(copy_first)
        duplicate = self.script.pop(0)
        return StreamBatchOutcome(accepted=len(events) - duplicate, duplicate=duplicate, rejected=0, rejections=[])


class FreeAuth:
    async def charge(self, context, principal, events):
        return None


async def _messages(batches: int, size: int):
    for b in range(batches):
        yield ipb.StreamIngestConnectionEventsRequest(
            events=[simple_event("N_1", client_id=f"c{b}-{i}") for i in range(size)])


@pytest.mark.parametrize(("duplicates", "copy_first"), [
    ([0, 0, 0], [True, True, True]),
    ([0, 1, 0, 0], [True, True, False, True]),  # after a batch that met duplicates: staged, then back
    ([2, 2, 0], [True, False, False]),  # a stream sent again: one refused COPY, then straight to the insert
])
async def test_a_batch_after_one_that_met_duplicates_skips_the_direct_copy(duplicates, copy_first):
    settings = Settings(stream_batch_events=2, stream_pipeline_depth=1)
    ctx = types.SimpleNamespace(settings=settings, auth=FreeAuth(), pool=None)
    pipeline = ScriptedPipeline(duplicates)
    servicer = IngestServicer(ctx, pipeline)
    response = await servicer._stream(PRINCIPAL, _messages(len(duplicates), 2), context=None)
    assert pipeline.copy_first == copy_first
    assert (response.accepted_count, response.duplicate_count) == (2 * len(duplicates) - sum(duplicates),
                                                                   sum(duplicates))
