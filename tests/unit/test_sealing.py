"""connlog.core.sealing: AES-256-GCM sealing of secrets at rest, keys from
the settings, rotation order, and errors that never show key material."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from connlog.core.sealing import (
    NO_KEY_MESSAGE,
    NoSealingKey,
    Sealer,
    SealingKeyError,
    UnsealError,
    keys_from_settings,
    new_key,
    write_key_file,
)
from connlog.core.settings import Settings

K1, K2, K3 = (bytes([n]) * 32 for n in (1, 2, 3))
CONTEXT = b"sync_sources.credential:src-a"
SECRET = b"meraki-api-key-0123456789"
# The format, written out (a change to the module must fail here).
VERSION, KEY_ID_LEN, NONCE_LEN, TAG_LEN = 1, 8, 12, 16


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def settings(**fields) -> Settings:
    return Settings(_env_file=None, **fields)


def test_round_trip_and_format():
    sealer = Sealer([K1])
    sealed = sealer.seal(SECRET, CONTEXT)
    assert SECRET not in sealed
    assert len(sealed) == 1 + KEY_ID_LEN + NONCE_LEN + len(SECRET) + TAG_LEN
    assert sealed[0] == VERSION
    assert sealed[1:1 + KEY_ID_LEN] == hashlib.sha256(b"connlog sealing key id\x00" + K1).digest()[:KEY_ID_LEN]
    assert sealer.open(sealed, CONTEXT) == SECRET
    assert sealer.seal(SECRET, CONTEXT) != sealed  # a fresh nonce each time


def _tamper(position: int) -> Callable[[bytes], bytes]:
    def tamper(sealed: bytes) -> bytes:
        index = position % len(sealed)
        return sealed[:index] + bytes([sealed[index] ^ 0x01]) + sealed[index + 1:]
    return tamper


# (what is done to a sealed value or its context, the keys that try to open it, what the error says)
REFUSALS: list[tuple[str, Callable[[bytes], bytes], bytes, list[bytes], str]] = [
    ("another row's context", lambda s: s, b"sync_sources.credential:src-b", [K1], "another row"),
    ("no context", lambda s: s, b"", [K1], "another row"),
    ("a flipped ciphertext byte", _tamper(1 + KEY_ID_LEN + NONCE_LEN), CONTEXT, [K1], "altered"),
    ("a flipped tag byte", _tamper(-1), CONTEXT, [K1], "altered"),
    ("a flipped nonce byte", _tamper(1 + KEY_ID_LEN), CONTEXT, [K1], "altered"),
    ("another key id", _tamper(1), CONTEXT, [K1], "not configured"),
    ("an unknown version", _tamper(0), CONTEXT, [K1], "format"),
    ("truncated", lambda s: s[:1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN - 1], CONTEXT, [K1], "format"),
    ("empty", lambda s: b"", CONTEXT, [K1], "format"),
    ("the plaintext itself", lambda s: SECRET, CONTEXT, [K1], "format"),
    ("a key not configured", lambda s: s, CONTEXT, [K2, K3], "not configured"),
    ("no key at all", lambda s: s, CONTEXT, [], NO_KEY_MESSAGE),
]


@pytest.mark.parametrize(("change", "context", "keys", "says"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_what_does_not_open(change, context, keys, says):
    sealed = change(Sealer([K1]).seal(SECRET, CONTEXT))
    with pytest.raises(UnsealError) as err:
        Sealer(keys).open(sealed, context)
    assert says in str(err.value)


def test_first_key_seals_every_key_opens():
    old = Sealer([K1]).seal(SECRET, CONTEXT)
    both = Sealer([K2, K1])
    assert both.open(old, CONTEXT) == SECRET
    assert not both.sealed_with_current(old)
    new = both.seal(SECRET, CONTEXT)
    assert both.sealed_with_current(new)
    assert Sealer([K2]).open(new, CONTEXT) == SECRET
    with pytest.raises(UnsealError, match="not configured"):
        Sealer([K1]).open(new, CONTEXT)
    assert Sealer([K1, K2]).open(new, CONTEXT) == SECRET  # order matters only for sealing


def test_no_key_seals_nothing():
    sealer = Sealer([])
    assert not sealer.can_seal
    with pytest.raises(NoSealingKey, match="no sealing key configured"):
        sealer.seal(SECRET, CONTEXT)


GOOD = b64(K1)
# (CONNLOG_SECRET_KEYS, the error; None: valid, then the keys in order)
KEY_SETTINGS: list[tuple[str, str, str | list[bytes]]] = [
    ("one key", GOOD, [K1]),
    ("two keys, first seals", f"{b64(K2)},{GOOD}", [K2, K1]),
    ("blanks and spaces", f" {b64(K2)} ,, {GOOD} ", [K2, K1]),
    ("not base64", "not*base64!", "key 1 is not base64"),
    ("second not base64", f"{GOOD},@@@", "key 2 is not base64"),
    ("too short", b64(b"\x01" * 16), "key 1 is 16 bytes, must be 32"),
    ("too long", b64(b"\x01" * 33), "key 1 is 33 bytes, must be 32"),
    ("a passphrase", "correct horse battery staple", "not base64"),
    ("twice", f"{GOOD},{GOOD}", "listed twice"),
]


@pytest.mark.parametrize(("value", "expected"), [r[1:] for r in KEY_SETTINGS], ids=[r[0] for r in KEY_SETTINGS])
def test_keys_from_the_environment(value, expected):
    configured = settings(secret_keys=SecretStr(value))
    if isinstance(expected, list):
        assert keys_from_settings(configured) == expected
        return
    with pytest.raises(SealingKeyError) as err:
        keys_from_settings(configured)
    assert expected in str(err.value)
    assert "CONNLOG_SECRET_KEYS" in str(err.value)
    for part in value.split(","):  # never the key material
        assert not part.strip() or part.strip() not in str(err.value)


def test_keys_from_a_file(tmp_path: Path):
    path = tmp_path / "keys"
    path.write_text(f"# mounted Secret\n{b64(K2)}\n\n{b64(K1)}\n")
    assert keys_from_settings(settings(secret_keys_file=path)) == [K2, K1]
    path.write_text("\n# nothing\n")
    with pytest.raises(SealingKeyError, match="holds no key"):
        keys_from_settings(settings(secret_keys_file=path))
    path.write_text("c2hvcnQ=\n")  # base64 of 5 bytes
    with pytest.raises(SealingKeyError, match="key 1 is 5 bytes") as err:
        keys_from_settings(settings(secret_keys_file=path))
    assert "c2hvcnQ" not in str(err.value)
    with pytest.raises(SealingKeyError, match="cannot read"):
        keys_from_settings(settings(secret_keys_file=tmp_path / "missing"))
    with pytest.raises(SealingKeyError, match="not both"):
        keys_from_settings(settings(secret_keys=SecretStr(GOOD), secret_keys_file=path))
    assert keys_from_settings(settings()) == []


def test_new_key_and_key_file(tmp_path: Path):
    assert len(base64.b64decode(new_key(), validate=True)) == 32
    assert new_key() != new_key()
    path = tmp_path / "sub" / "secret-keys"
    write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    write_key_file(path)  # kept: the credentials sealed with it must stay openable
    assert path.read_text() == first
    (key,) = keys_from_settings(settings(secret_keys_file=path))
    assert Sealer([key]).open(Sealer([key]).seal(SECRET, CONTEXT), CONTEXT) == SECRET
