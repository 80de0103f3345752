"""How long a read replica has been behind (connlog.core.replica.ReplayTracker),
from the replication states the query service's check sees over time."""

from __future__ import annotations

import pytest

from connlog.core.database import ReplicationState
from connlog.core.replica import ReplayTracker


def streaming(received: int, replayed: int) -> ReplicationState:
    return ReplicationState(in_recovery=True, streaming=True, received=received, replayed=replayed)


CUT_OFF = ReplicationState(in_recovery=True, streaming=False, received=100, replayed=100)
PRIMARY = ReplicationState(in_recovery=False, streaming=False, received=None, replayed=None)

# (name, [(time, state seen, lag expected after it)])
CASES = [
    ("caught up: no lag, however long since the last write",
     [(0, streaming(100, 100), 0), (1000, streaming(100, 100), 0)]),
    ("behind since WAL was first seen unreplayed",
     [(0, streaming(100, 100), 0), (10, streaming(200, 100), 0), (12, streaming(300, 150), 2),
      (15, streaming(300, 150), 5)]),
    ("replaying what was pending ends the lag; newer WAL starts a new one",
     [(0, streaming(200, 100), 0), (5, streaming(300, 200), 0), (6, streaming(300, 250), 1),
      (7, streaming(300, 300), 0)]),
    ("paused replay: the lag grows",
     [(0, streaming(200, 100), 0), (30, streaming(900, 100), 30), (60, streaming(1900, 100), 60)]),
    ("no WAL receiver: behind since it stopped hearing from its primary",
     [(0, streaming(100, 100), 0), (3, CUT_OFF, 0), (10, CUT_OFF, 7)]),
    ("heard again: current once it has replayed what it received",
     [(0, CUT_OFF, 0), (4, streaming(300, 200), 4), (6, streaming(400, 300), 0)]),
    ("a promoted server (not in recovery) is current",
     [(0, streaming(200, 100), 0), (50, PRIMARY, 0), (60, streaming(300, 300), 0)]),
]


@pytest.mark.parametrize(("name", "steps"), CASES, ids=[c[0] for c in CASES])
def test_lag(name, steps):
    tracker = ReplayTracker()
    for when, state, lag in steps:
        assert tracker.observe(float(when), state) == pytest.approx(lag), (name, when)
