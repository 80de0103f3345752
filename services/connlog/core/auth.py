"""API keys and who may call what.

A key is ``clk_<key_id>_<secret>``: ``key_id`` is public and looks the key up,
``secret`` is 256 random bits stored only as its SHA-256. Each key has one
role and belongs to one tenant, except the vendor-sync service's own key
(role ``sync_service``): it has no tenant, and each of its ingest calls names
the sync source it writes for (``SYNC_SOURCE_HEADER``), whose tenant, vendor
and network the call is then held to. Callers send
``authorization: Bearer <key>``.

Answers are cached per key id; every process listens for changed keys
(``watch_key_changes``: a PostgreSQL notification from migration 0007's
trigger) and forgets a revoked key at once, ending its open streams; while
that listener is down, the cache is not used at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import grpc

from connlog.core.budgets import WriteBudgets
from connlog.core.caches import BoundedCache
from connlog.core.logging import get_logger
from connlog.core.principal import WRITE_PERMISSIONS, Permission, Principal, Role
from connlog.store.accounts import AccountStore, KeyChangeListener, KeyRecord

KEY_PREFIX = "clk"
AUTH_CACHE_MAX_ENTRIES = 10_000  # key ids (answers for unknown ones too): ~0.5 kB each
_CACHED_KEY_ID_MAX = 64  # key ids are 16 hex digits: a longer one (never valid) is not remembered
_CHANGE_WAITERS_MAX = 64  # key ids waited on, and waiters per key id (tests)
LIVE_STREAMS_MAX = 10_000  # open ingest streams a process tracks (to end them when their key is revoked)
# The sync service's ingest calls name the sync source (its id) they write for.
SYNC_SOURCE_HEADER = "x-connlog-sync-source"
# The shape a device key writes through unless told otherwise.
DEFAULT_DEVICE_SHAPE = "zequenze"

T = TypeVar("T")


def _principal(record: KeyRecord) -> Principal:
    role = Role(record.role)
    shape = record.shape or (DEFAULT_DEVICE_SHAPE if role is Role.DEVICE else None)
    return Principal(record.key_id, record.tenant_id or "", record.tenant_ref or 0, role, record.device_id, shape)


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
    shape: str | None = None,
) -> NewKey:
    """Create a key of a tenant (and the tenant if new). A device key writes
    through ``shape`` (default: Zequenze's)."""
    if role is Role.SYNC_SERVICE:
        raise ValueError("the sync service's key has no tenant: create it with create_service_key")
    if (role is Role.DEVICE) != bool(device_id):
        raise ValueError("device keys need a device id, and only device keys have one")
    if shape is not None and role is not Role.DEVICE:
        raise ValueError("only device keys have a shape")
    tenant_ref = await accounts.ensure_tenant(tenant_id)
    return await _store_key(accounts, tenant_ref, role, device_id, description,
                            (shape or DEFAULT_DEVICE_SHAPE) if role is Role.DEVICE else None)


async def create_service_key(accounts: AccountStore, *, description: str) -> NewKey:
    """Create a key for the vendor-sync service (role sync_service, no
    tenant): it may only ingest, each call for the sync source it names."""
    return await _store_key(accounts, None, Role.SYNC_SERVICE, None, description, None)


async def _store_key(
    accounts: AccountStore, tenant_ref: int | None, role: Role, device_id: str | None, description: str,
    shape: str | None,
) -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    await accounts.create_key(
        key_id=key_id,
        tenant_ref=tenant_ref,
        role=role.value,
        device_id=device_id,
        secret_hash=_hash_secret(secret),
        description=description,
        shape=shape,
    )
    return NewKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}")


class LiveStreams:
    """The open streams of each key (bounded), to end them the moment their
    key is revoked."""

    def __init__(self, max_streams: int = LIVE_STREAMS_MAX) -> None:
        self._max = max_streams
        self._count = 0
        self._by_key: dict[str, set[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return self._count

    def count(self, key_id: str) -> int:
        return len(self._by_key.get(key_id, ()))

    def open(self, key_id: str) -> asyncio.Future[None] | None:
        """A future done when ``key_id`` is revoked; None when too many
        streams are open already."""
        if self._count >= self._max:
            return None
        revoked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._by_key.setdefault(key_id, set()).add(revoked)
        self._count += 1
        return revoked

    def close(self, key_id: str, revoked: asyncio.Future[None]) -> None:
        streams = self._by_key.get(key_id)
        if streams is not None and revoked in streams:
            streams.discard(revoked)
            self._count -= 1
            if not streams:
                del self._by_key[key_id]

    def revoke(self, key_id: str) -> None:
        for revoked in self._by_key.get(key_id, ()):
            if not revoked.done():
                revoked.set_result(None)


class KeyAuthenticator:
    """Checks bearer keys against the store, caching answers, and charges
    write budgets.

    The cache is trusted only while this process listens for changed keys
    (``watch_key_changes``): a notification evicts the key at once (and ends
    its open streams); while the listener is down, every call reads the
    store. Without a watch (tools, unit tests) answers are cached for
    ``cache_seconds``."""

    def __init__(self, accounts: AccountStore, cache_seconds: float, budgets: WriteBudgets | None = None) -> None:
        self._accounts = accounts
        self._cache_seconds = cache_seconds
        self._cache: BoundedCache[str, tuple[float, KeyRecord | None]] = BoundedCache(
            "auth.keys", AUTH_CACHE_MAX_ENTRIES)
        self._budgets = budgets
        self._streams = LiveStreams()
        # bumped on every eviction: a look-up that read the store before one
        # does not cache what it read (it may predate the change)
        self._generation = 0
        self._watching = False
        self.listening = False
        self.listener_pid: int | None = None
        self.listener_changed = asyncio.Condition()  # notified when ``listening`` changes (tests wait on it)
        self.streams_changed = asyncio.Condition()  # notified when a stream opens or closes (tests wait on it)
        self._change_waiters: BoundedCache[str, list[asyncio.Future[None]]] = BoundedCache(
            "auth.change_waiters", _CHANGE_WAITERS_MAX)
        self._log = get_logger("auth")

    # --- the cache and its invalidation ---

    def key_changed(self, key_id: str) -> None:
        """Forget ``key_id`` (revoked, changed or deleted) and end its open
        streams."""
        self._generation += 1
        self._cache.pop(key_id, None)
        self._streams.revoke(key_id)
        for waiter in self._change_waiters.pop(key_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def next_change(self, key_id: str) -> asyncio.Future[None]:
        """A future done when this process next hears that ``key_id``
        changed (tests wait on it)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._change_waiters.get(key_id) or []
        self._change_waiters[key_id] = [w for w in waiters if not w.done()][-_CHANGE_WAITERS_MAX:] + [waiter]
        return waiter

    def _forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()

    async def _set_listening(self, listening: bool, pid: int | None) -> None:
        async with self.listener_changed:
            self.listening, self.listener_pid = listening, pid
            self.listener_changed.notify_all()

    async def watch_key_changes(
        self,
        open_listener: Callable[[Callable[[str], None]], Awaitable[KeyChangeListener]],
        *,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        """Run until cancelled: keep a listener for changed keys
        (``open_listener(on_changed)``), reconnecting with backoff when it is
        lost; cached answers are used only while it listens."""
        self._watching = True
        delay = backoff_seconds
        try:
            while True:
                try:
                    listener = await open_listener(self.key_changed)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    self._log.warning("cannot listen for revoked keys: not caching keys",
                                      error=type(exc).__name__, retry_in_seconds=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_backoff_seconds)
                    continue
                delay = backoff_seconds
                self._forget_all()  # whatever changed while nobody listened
                await self._set_listening(True, listener.pid)
                try:
                    await listener.lost.wait()
                    self._log.warning("listener for revoked keys lost: not caching keys until it is back")
                finally:
                    self.listening = False
                    self._forget_all()
                    await listener.close()
                await self._set_listening(False, None)
        finally:
            self.listening = False
            self._watching = False

    async def _lookup(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        use_cache = self._cache_seconds > 0 and (self.listening or not self._watching)
        if use_cache:
            cached = self._cache.get(key_id)
            if cached and now - cached[0] < self._cache_seconds:
                return cached[1]
        generation = self._generation
        record = await self._accounts.find_key(key_id)
        if (use_cache and generation == self._generation and (self.listening or not self._watching)
                and len(key_id) <= _CACHED_KEY_ID_MAX):
            self._cache[key_id] = (now, record)
        return record

    # --- who is calling ---

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
        return _principal(record)

    async def authenticate_rest(
        self, metadata: dict[str, str], *, key_headers: Iterable[str] = (), session_cookie_name: str | None = None
    ) -> Principal | None:
        """The principal of a REST call: ``Authorization: Bearer``, else a key
        in the first of ``key_headers`` sent (a vendor's API-key header), else
        the login session in the cookie ``session_cookie_name`` (read from the
        store on every call: a revoked key's sessions end at once). Each REST
        shape names its own (``connlog.shapes.rest.RestAuth``)."""
        token = bearer_token(metadata.items()) or next(
            (value for name in key_headers if (value := metadata.get(name, "").strip())), "")
        if token:
            return await self.authenticate_token(token)
        session = session_cookie(metadata.get("cookie", ""), session_cookie_name) if session_cookie_name else None
        if session:
            record = await self._accounts.session_key(_hash_secret(session))
            if record is not None and record.revoked_at is None:
                return _principal(record)
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

    async def caller(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller's principal; aborts the RPC with UNAUTHENTICATED
        otherwise."""
        token = bearer_token(context.invocation_metadata() or ())
        if token is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing API key: send 'authorization: Bearer <key>'")
        principal = await self.authenticate_token(token)
        if principal is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or revoked API key")
        return principal

    async def require(
        self, context: grpc.aio.ServicerContext, permission: Permission, *, cost: int | None = None
    ) -> Principal:
        """The caller's principal; aborts the RPC with UNAUTHENTICATED or
        PERMISSION_DENIED otherwise, and with RESOURCE_EXHAUSTED when a write
        (a permission in ``WRITE_PERMISSIONS``, costing ``cost`` or 1) is over
        the key's budget."""
        principal = await self.caller(context)
        if not principal.can(permission):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.role.value} key may not {permission.value.replace('_', ' ')}",
            )
        if permission in WRITE_PERMISSIONS:
            await self.charge(context, principal, 1 if cost is None else cost)
        return principal

    # --- write budgets ---

    async def over_budget(self, principal: Principal, cost: int) -> int | None:
        """Charge ``cost`` to the caller's write budget (shared by every
        replica): None if it was within it, else the seconds after which it
        would be. Raises the store's error when the shared budgets are out of
        reach (answered UNAVAILABLE with Retry-After, never unlimited)."""
        if self._budgets is None:
            return None
        return await self._budgets.charge(principal.key_id, principal.tenant_ref, cost,
                                          device=principal.role is Role.DEVICE)

    async def charge(self, context: grpc.aio.ServicerContext, principal: Principal, cost: int) -> None:
        """Charge a write to the caller's budget; aborts with
        RESOURCE_EXHAUSTED (and ``retry-after`` seconds in the trailing
        metadata) when over it."""
        wait = await self.over_budget(principal, cost)
        if wait is not None:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"write budget of this API key exhausted: retry in {wait} s",
                trailing_metadata=(("retry-after", str(wait)),),
            )

    # --- open streams ---

    @contextlib.asynccontextmanager
    async def live(self, context: grpc.aio.ServicerContext, principal: Principal) -> AsyncIterator[LiveStream]:
        """Register an open stream of ``principal``'s key for as long as the
        block runs: read its messages through the yielded ``LiveStream``,
        which ends the RPC with UNAUTHENTICATED the moment the key is
        revoked."""
        revoked = self._streams.open(principal.key_id)
        if revoked is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open streams: retry later")
        await self._streams_changed()
        try:
            yield LiveStream(context, revoked)
        finally:
            self._streams.close(principal.key_id, revoked)
            revoked.cancel()
            await self._streams_changed()

    async def _streams_changed(self) -> None:
        async with self.streams_changed:
            self.streams_changed.notify_all()

    def live_streams(self, key_id: str | None = None) -> int:
        """How many streams are open (of ``key_id``, or in all)."""
        return len(self._streams) if key_id is None else self._streams.count(key_id)


class LiveStream:
    """Reads a stream's messages until its key is revoked."""

    def __init__(self, context: grpc.aio.ServicerContext, revoked: asyncio.Future[None]) -> None:
        self._context = context
        self._revoked = revoked

    async def _end(self) -> None:
        await self._context.abort(grpc.StatusCode.UNAUTHENTICATED, "the API key was revoked")


    async def messages(self, iterator: AsyncIterator[T]) -> AsyncIterator[T]:
        """``iterator``'s messages; the RPC ends with UNAUTHENTICATED as soon
        as the key is revoked, even while waiting for the next one."""
        messages = aiter(iterator)
        while True:
            if self._revoked.done():
                await self._end()
            read: asyncio.Future[T] = asyncio.ensure_future(anext(messages))
            await asyncio.wait((read, self._revoked), return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                # left to finish with the call (cancelling a read inside
                # gRPC's receive loop would leave its batch dangling)
                read.add_done_callback(_retrieve)
                await self._end()
            try:
                message = read.result()
            except StopAsyncIteration:
                return
            yield message


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


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
