"""Reading PostgreSQL's binary COPY format back, for tests (the service only
writes it: connlog.store.row.copy_rows)."""

from __future__ import annotations

import datetime as dt
import struct

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def copy_fields(data: bytes) -> list[list[bytes | None]]:
    """Each row's fields as raw values (None for NULL), checking the framing:
    signature, header, field counts, lengths, trailer, nothing after it."""
    assert data.startswith(SIGNATURE), "no COPY signature"
    flags, extension = struct.unpack_from(">ii", data, len(SIGNATURE))
    assert flags == 0
    at = len(SIGNATURE) + 8 + extension
    rows: list[list[bytes | None]] = []
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            assert at == len(data), "bytes after the trailer"
            return rows
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            if length == -1:
                fields.append(None)
            else:
                assert length >= 0 and at + length <= len(data), "a field runs past the end"
                fields.append(data[at:at + length])
                at += length
        rows.append(fields)


def timestamptz(value: bytes) -> dt.datetime:
    """A timestamptz as COPY sends it (microseconds since 2000-01-01 UTC)."""
    (micros,) = struct.unpack(">q", value)
    return PG_EPOCH + dt.timedelta(microseconds=micros)
