"""Vendor credentials: sealed before they are stored, opened only in memory
by the worker, re-sealed on rotation (``connlog secrets rotate``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from connlog.core.sealing import Sealer, UnsealError
from connlog.store.sync import SourceRecord, SyncStore


def context(source_id: str) -> bytes:
    """The associated data binding a sealed credential to its source."""
    return b"sync_sources.credential:" + source_id.encode()


def seal(sealer: Sealer, source_id: str, credential: str) -> bytes:
    """``credential`` sealed for ``source_id`` (``NoSealingKey`` without a key)."""
    return sealer.seal(credential.encode(), context(source_id))


class CredentialUnavailable(Exception):
    """A source's credential cannot be opened (the message says why, never
    the value)."""


def opened(sealer: Sealer, source: SourceRecord) -> SourceRecord:
    """The source with its credential opened (in memory only)."""
    if source.credential_sealed is None:
        raise CredentialUnavailable(
            "the credential is not sealed yet: vendor-sync seals it at start once a sealing key is configured"
            if source.has_credential else "the source has no credential")
    try:
        plaintext = sealer.open(source.credential_sealed, context(source.source_id))
    except UnsealError as exc:
        raise CredentialUnavailable(f"the stored credential cannot be opened: {exc}") from None
    return dataclasses.replace(source, credential=plaintext.decode())


class ResealRefused(Exception):
    """A credential opens with none of the configured keys: nothing was
    changed. Names the source, never the value."""


@dataclass
class ResealReport:
    resealed: int = 0  # sealed with an older key, now with the first
    sealed_plaintext: int = 0  # plaintext from before sealing, now sealed
    current: int = 0  # already sealed with the first key

    def __str__(self) -> str:
        return (f"re-sealed {self.resealed}, sealed from plaintext {self.sealed_plaintext}, "
                f"already current {self.current}")


async def reseal_all(store: SyncStore, sealer: Sealer, *, rotate: bool) -> ResealReport:
    """In one transaction: seal every plaintext credential left from before
    sealing and clear it; with ``rotate``, also re-seal every credential not
    sealed with the first key. Raises ``ResealRefused`` (changing nothing)
    when a credential opens with none of the keys; ``NoSealingKey`` when
    there is something to seal and no key."""
    report = ResealReport()

    def reseal(source_id: str, sealed: bytes | None, plaintext: str) -> bytes | None:
        if sealed is None:
            report.sealed_plaintext += 1
            return seal(sealer, source_id, plaintext)
        if sealer.sealed_with_current(sealed) or not rotate:
            # (still opened: a value that does not open is refused here, not found later)
            if rotate:
                _open(sealer, source_id, sealed)
                report.current += 1
            return None
        report.resealed += 1
        return sealer.seal(_open(sealer, source_id, sealed), context(source_id))

    await store.reseal(reseal)
    return report


def _open(sealer: Sealer, source_id: str, sealed: bytes) -> bytes:
    try:
        return sealer.open(sealed, context(source_id))
    except UnsealError as exc:
        raise ResealRefused(f"syncSources/{source_id}: {exc}") from None
