"""API keys and who may call what.

A key is ``clk_<key_id>_<secret>``: ``key_id`` is public and looks the key up,
``secret`` is 256 random bits stored only as its SHA-256. Each key belongs to
one tenant and has one role. Callers send ``authorization: Bearer <key>``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from connlog.core.caches import BoundedCache
from connlog.store.accounts import AccountStore, KeyRecord

KEY_PREFIX = "clk"
AUTH_CACHE_MAX_ENTRIES = 10_000  # key ids (answers for unknown ones too): ~0.5 kB each
_CACHED_KEY_ID_MAX = 64  # key ids are 16 hex digits: a longer one (never valid) is not remembered


class Role(str, enum.Enum):  # noqa: UP042 - not StrEnum: its str() and format() differ
    """Key roles: the Mojo roles plus device keys."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMINISTRATOR = "administrator"
    SUPER_USER = "super_user"
    DEVICE = "device"


class Permission(enum.Enum):
    """What an RPC needs."""

    READ_EVENTS = "read_events"
    WRITE_EVENTS = "write_events"
    MANAGE_SOURCES = "manage_sources"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ_EVENTS}),
    Role.OPERATOR: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS}),
    Role.ADMINISTRATOR: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS, Permission.MANAGE_SOURCES}),
    Role.SUPER_USER: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS, Permission.MANAGE_SOURCES}),
    # A device may only push its own events (enforced by the ingest service).
    Role.DEVICE: frozenset({Permission.WRITE_EVENTS}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    key_id: str
    tenant_id: str
    tenant_ref: int
    role: Role
    device_id: str | None

    def can(self, permission: Permission) -> bool:
        return permission in _GRANTS[self.role]


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: ``token`` is shown once and never stored."""

    key_id: str
    token: str


def _hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_token(token: str) -> tuple[str, str] | None:
    """Split ``clk_<key_id>_<secret>``; None when malformed."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(
    accounts: AccountStore,
    *,
    tenant_id: str,
    role: Role,
    device_id: str | None = None,
    description: str = "",
) -> NewKey:
    """Create a key (and its tenant if new)."""
    if (role is Role.DEVICE) != bool(device_id):
        raise ValueError("device keys need a device id, and only device keys have one")
    tenant_ref = await accounts.ensure_tenant(tenant_id)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    await accounts.create_key(
        key_id=key_id,
        tenant_ref=tenant_ref,
        role=role.value,
        device_id=device_id,
        secret_hash=_hash_secret(secret),
        description=description,
    )
    return NewKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}")


class KeyAuthenticator:
    """Checks bearer keys against the store, caching answers briefly."""

    def __init__(self, accounts: AccountStore, cache_seconds: float) -> None:
        self._accounts = accounts
        self._cache_seconds = cache_seconds
        self._cache: BoundedCache[str, tuple[float, KeyRecord | None]] = BoundedCache(
            "auth.keys", AUTH_CACHE_MAX_ENTRIES)

    async def _lookup(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        record = await self._accounts.find_key(key_id)
        if self._cache_seconds > 0 and len(key_id) <= _CACHED_KEY_ID_MAX:
            self._cache[key_id] = (now, record)
        return record

    async def authenticate_token(self, token: str) -> Principal | None:
        """The principal of a key token, or None if unknown or revoked."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        record = await self._lookup(key_id)
        if record is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(record.secret_hash, _hash_secret(secret)):
            return None
        return Principal(record.key_id, record.tenant_id, record.tenant_ref, Role(record.role), record.device_id)

    async def authenticate_rest(
        self, metadata: dict[str, str], *, key_headers: Iterable[str] = (), session_cookie_name: str | None = None
    ) -> Principal | None:
        """The principal of a REST call: ``Authorization: Bearer``, else a key
        in the first of ``key_headers`` sent (a vendor's API-key header), else
        the login session in the cookie ``session_cookie_name``. Each REST
        shape names its own (``connlog.shapes.rest.RestAuth``)."""
        token = bearer_token(metadata.items()) or next(
            (value for name in key_headers if (value := metadata.get(name, "").strip())), "")
        if token:
            return await self.authenticate_token(token)
        session = session_cookie(metadata.get("cookie", ""), session_cookie_name) if session_cookie_name else None
        if session:
            record = await self._accounts.session_key(_hash_secret(session))
            if record is not None and record.revoked_at is None:
                return Principal(record.key_id, record.tenant_id, record.tenant_ref, Role(record.role),
                                 record.device_id)
        return None

    async def login(
        self, key_id: str, key_value: str, client_identifier: str, minutes: int
    ) -> tuple[Principal, str] | None:
        """Exchange a key (its id and its secret, or the whole key as value)
        for a new session id; None if the key is not valid."""
        parsed = parse_token(key_value)
        token = key_value if parsed and parsed[0] == key_id else f"{KEY_PREFIX}_{key_id}_{key_value}"
        principal = await self.authenticate_token(token)
        if principal is None:
            return None
        session = secrets.token_urlsafe(32)
        await self._accounts.create_session(_hash_secret(session), principal.key_id, client_identifier, minutes)
        return principal, session

    async def require(self, context: grpc.aio.ServicerContext, permission: Permission) -> Principal:
        """The caller's principal; aborts the RPC with UNAUTHENTICATED or
        PERMISSION_DENIED otherwise."""
        token = bearer_token(context.invocation_metadata() or ())
        if token is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing API key: send 'authorization: Bearer <key>'")
        principal = await self.authenticate_token(token)
        if principal is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or revoked API key")
        if not principal.can(permission):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.role.value} key may not {permission.value.replace('_', ' ')}",
            )
        return principal


def session_cookie(header: str, cookie: str) -> str | None:
    """The value of the cookie named ``cookie`` in a Cookie header."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == cookie and value:
            return value
    return None


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The key from ``authorization: Bearer <key>`` metadata (pairs, as
    ``invocation_metadata()`` gives them)."""
    for key, value in metadata:
        if key.lower() == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
