"""Conversions of vendor records (as each vendor documents them) into the
canonical ConnectionEvent. Each keeps the untouched record in
``vendor_record`` so that the vendor's own shape can be rebuilt exactly."""

from __future__ import annotations


class VendorRecordError(ValueError):
    """A vendor record that cannot be converted; names the vendor key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def integer(record: dict, key: str) -> int | None:
    """An integer value of a vendor record (None when null or absent)."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise VendorRecordError(key, f"expected an integer, got {value!r}")
    return value
