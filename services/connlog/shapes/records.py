"""What every shape's record mapping shares.

A shape's ``records.py`` converts the vendor's records (as the vendor
documents them) into canonical ConnectionEvents, keeping the untouched
record in ``vendor_record`` so that the vendor's own shape can be rebuilt
exactly; its enum tables (``Table``) are read both ways, vendor value ->
canonical value on the way in, canonical value -> vendor value by the
projection on the way out. ``verbatim_record`` is how a projection answers
with the kept record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar, cast

import orjson

from connlog.api.v1 import connection_event_pb2 as pb


class VendorRecordError(ValueError):
    """A vendor record that cannot be converted; names the vendor key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def integer(record: Mapping[str, object], key: str) -> int | None:
    """An integer value of a vendor record (None when null or absent)."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise VendorRecordError(key, f"expected an integer, got {value!r}")
    return value


E = TypeVar("E", bound=int)  # a canonical enum


class Table(Generic[E]):
    """One enum of a vendor's records: each vendor value and the canonical
    value it stands for, one to one. ``canonical`` reads it vendor ->
    canonical (records in, query parameters), ``vendor`` canonical -> vendor
    (projections out)."""

    def __init__(self, pairs: Mapping[str, E]) -> None:
        self.canonical: dict[str, E] = dict(pairs)
        self.vendor: dict[E, str] = {value: key for key, value in self.canonical.items()}
        if len(self.vendor) != len(self.canonical):
            raise ValueError("a vendor table maps one vendor value to one canonical value")

    def to_canonical(self, record: Mapping[str, object], key: str) -> E:
        """The canonical value of ``record[key]`` (0, unspecified, when null
        or absent); ``VendorRecordError`` for a value the table lacks."""
        value = record.get(key)
        if value is None:
            return cast(E, 0)
        if not isinstance(value, str) or value not in self.canonical:
            raise VendorRecordError(key, f"unknown value {value!r}")
        return self.canonical[value]


_JSON = "application/json"


def verbatim_record(record: pb.VendorRecord) -> orjson.Fragment | None:
    """A vendor record's text to answer verbatim, or None to project the
    event instead. Ingest accepts only strict JSON objects for the vendors
    answered verbatim; this cheap look (~0.5 µs) keeps an unfit record stored
    before it did so (not JSON, not an object, markup, NaN, Infinity, a lone
    surrogate) from breaking the whole page. The full parse runs only for a
    text holding a word strict JSON lacks, or a \\u escape."""
    data = record.data
    if not data:
        return None
    content_type = record.content_type
    if content_type != _JSON and content_type.partition(";")[0].strip().lower() != _JSON:
        return None
    if data[0] != "{" or data[-1] != "}":
        text = data.strip()
        if text[:1] != "{" or text[-1:] != "}":
            return None
    if "NaN" in data or "Infinity" in data or "\\u" in data:
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    return orjson.Fragment(data)
