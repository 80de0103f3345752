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
