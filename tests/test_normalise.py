"""Normalisation helpers (no database)."""

from __future__ import annotations

import pytest

from connlog.ingest.normalise import FieldError, _ip


@pytest.mark.parametrize(("text", "canonical"), [
    ("10.0.0.17", "10.0.0.17"), (" 10.0.0.17 ", "10.0.0.17"), ("0.0.0.0", "0.0.0.0"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
])
def test_ip_addresses_are_canonical(text, canonical):
    assert _ip(text) == canonical


@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3", "256.1.1.1", "0x1.2.3.4", "1.2.3.4\x00", "١.2.3.4", "host", ""])
def test_bad_ip_addresses_name_the_field(text):
    with pytest.raises(FieldError) as err:
        _ip(text)
    assert err.value.field == "client.ip_address"
