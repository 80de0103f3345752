"""The Zequenze shape's answer: a log is answered (201) with the record as
the device sent it, every documented key in Zequenze's order."""

from __future__ import annotations

import datetime as dt

from connlog.shapes.zequenze.params import ZequenzeLog
from connlog.shapes.zequenze.records import FIELDS


def stored_log(log: ZequenzeLog, event_id: str, created_at: dt.datetime) -> dict[str, object]:
    """The 201 body: every documented key (null where not given), id and
    created_at."""
    body: dict[str, object] = {"id": int(event_id)}
    body |= {name: log.values.get(name) for name in FIELDS}
    body["created_at"] = created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body
