"""Secrets sealed at rest: AES-256-GCM (``cryptography``'s AESGCM).

A sealed value is ``version (1 byte) | key id (8 bytes) | nonce (12 bytes) |
ciphertext + tag (16 bytes)``. The key id is the first 8 bytes of the
SHA-256 of the key (domain-separated), so opening picks the right key without
trying each; it tells nothing about the key. The nonce is random (96 bits:
safe for far more values than a deployment will ever seal under one key).
Associated data binds a value to where it is stored (e.g.
``sync_sources.credential:<source_id>``): a value copied to another row (of
another tenant) does not open.

Keys come from ``Settings.secret_keys`` (comma-separated) or
``Settings.secret_keys_file`` (one per line): each the base64 of 32 random
bytes. The first key seals, every key opens (rotation: a new key first,
re-seal, then drop the old one). Error messages never carry key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connlog.core.settings import Settings

FORMAT_VERSION = 1
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER = 1 + KEY_ID_BYTES + NONCE_BYTES
NO_KEY_MESSAGE = "no sealing key configured: set CONNLOG_SECRET_KEYS or CONNLOG_SECRET_KEYS_FILE"


class SealingKeyError(ValueError):
    """The configured keys are missing or malformed (the message names which
    one, by position, never its value)."""


class NoSealingKey(SealingKeyError):
    """Sealing was asked for with no key configured."""

    def __init__(self) -> None:
        super().__init__(NO_KEY_MESSAGE)


class UnsealError(ValueError):
    """A sealed value does not open: unknown key, tampered, moved to another
    row, or not a sealed value at all."""


@dataclass(frozen=True)
class SealingKey:
    key_id: bytes
    aead: AESGCM


def key_id(key: bytes) -> bytes:
    """The public id of a key: 8 bytes of a domain-separated SHA-256."""
    return hashlib.sha256(b"connlog sealing key id\x00" + key).digest()[:KEY_ID_BYTES]


def new_key() -> str:
    """A fresh key, base64 (what ``connlog secrets new-key`` prints)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_keys(lines: list[str], source: str) -> list[bytes]:
    """Decode base64 keys (blank entries and ``#`` comments skipped); raises
    ``SealingKeyError`` naming the entry by position, never its value."""
    keys: list[bytes] = []
    for position, line in enumerate((entry.strip() for entry in lines), start=1):
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise SealingKeyError(f"{source}: key {position} is not base64") from None
        if len(key) != KEY_BYTES:
            raise SealingKeyError(
                f"{source}: key {position} is {len(key)} bytes, must be {KEY_BYTES} (base64 of 32 random bytes)")
        keys.append(key)
    if len({key_id(k) for k in keys}) != len(keys):
        raise SealingKeyError(f"{source}: a key is listed twice")
    return keys


def keys_from_settings(settings: Settings) -> list[bytes]:
    """The configured keys, first (sealing) key first; [] when none is set."""
    if settings.secret_keys is not None and settings.secret_keys_file is not None:
        raise SealingKeyError("set CONNLOG_SECRET_KEYS or CONNLOG_SECRET_KEYS_FILE, not both")
    if settings.secret_keys is not None:
        return parse_keys(settings.secret_keys.get_secret_value().split(","), "CONNLOG_SECRET_KEYS")
    if settings.secret_keys_file is not None:
        path = settings.secret_keys_file
        try:
            text = path.read_text()
        except OSError as exc:
            raise SealingKeyError(f"CONNLOG_SECRET_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
        keys = parse_keys(text.splitlines(), f"CONNLOG_SECRET_KEYS_FILE ({path})")
        if not keys:
            raise SealingKeyError(f"CONNLOG_SECRET_KEYS_FILE ({path}): holds no key")
        return keys
    return []


def write_key_file(path: Path) -> None:
    """Create ``path`` (mode 0600) holding one fresh key; an existing file is
    kept as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")


class Sealer:
    """Seals with the first key, opens with whichever key sealed."""

    def __init__(self, keys: list[bytes]) -> None:
        self._keys = [SealingKey(key_id(k), AESGCM(k)) for k in keys]
        self._by_id = {k.key_id: k for k in self._keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        return cls(keys_from_settings(settings))

    @property
    def can_seal(self) -> bool:
        return bool(self._keys)

    @property
    def sealing_key_id(self) -> bytes | None:
        return self._keys[0].key_id if self._keys else None

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """``plaintext`` sealed with the first key, bound to ``context``."""
        if not self._keys:
            raise NoSealingKey()
        key = self._keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = bytes([FORMAT_VERSION]) + key.key_id + nonce
        return header + key.aead.encrypt(nonce, plaintext, header + context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """The plaintext of ``sealed``; raises ``UnsealError`` saying why not."""
        if len(sealed) < _HEADER + TAG_BYTES or sealed[0] != FORMAT_VERSION:
            raise UnsealError("not a sealed value of a known format")
        kid = sealed[1:1 + KEY_ID_BYTES]
        key = self._by_id.get(kid)
        if key is None:
            raise UnsealError(f"sealed with key id {kid.hex()}, which is not configured"
                              if self._keys else NO_KEY_MESSAGE)
        header = sealed[:_HEADER]
        try:
            return key.aead.decrypt(sealed[1 + KEY_ID_BYTES:_HEADER], sealed[_HEADER:], header + context)
        except InvalidTag:
            raise UnsealError("does not open: altered, or sealed for another row") from None

    def sealed_with_current(self, sealed: bytes) -> bool:
        """Whether ``sealed`` carries the id of the sealing (first) key."""
        return bool(self._keys) and sealed[1:1 + KEY_ID_BYTES] == self._keys[0].key_id
