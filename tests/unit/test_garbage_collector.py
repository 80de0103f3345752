"""connlog.core.server.tune_garbage_collector: each service's young-generation
threshold (ingest collects more often: its calls each leave a small cycle)."""

from __future__ import annotations

import gc

import pytest

from connlog.core.server import INGEST_YOUNG_THRESHOLD, READ_YOUNG_THRESHOLD, tune_garbage_collector, young_threshold


@pytest.mark.parametrize(("service", "threshold"), [
    ("ingest", INGEST_YOUNG_THRESHOLD), ("query", READ_YOUNG_THRESHOLD), ("vendor-sync", READ_YOUNG_THRESHOLD)])
def test_each_service_has_its_young_threshold(service, threshold):
    assert young_threshold(service) == threshold
    assert INGEST_YOUNG_THRESHOLD < READ_YOUNG_THRESHOLD


def test_tuning_sets_the_young_threshold_and_freezes_what_exists():
    before = gc.get_threshold()
    try:
        tune_garbage_collector(young_threshold("ingest"))
        assert gc.get_threshold() == (INGEST_YOUNG_THRESHOLD, 20, 20)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
