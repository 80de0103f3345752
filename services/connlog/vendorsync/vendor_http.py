"""HTTP to vendor APIs: rate budgets, retries with exponential backoff and
jitter, Retry-After, credential rejections, and where requests may go.

A session talks to one origin only, its source's base URL (scheme, host,
port): every request, redirect and URL the vendor hands back (Meraki's
``Link``) must be of that origin, so the credential never leaves it. Each
connection goes through ``connlog.vendorsync.egress`` (resolved here, every
address checked, no proxies from the environment)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from connlog.core.caches import BoundedCache
from connlog.vendorsync.egress import EgressPolicy, EgressRefused, VettedTransport

if TYPE_CHECKING:
    from connlog.vendorsync.pacing import Pacer

# Redirects followed (within the origin) before a request is given up.
MAX_REDIRECTS = 5


class CredentialRejected(Exception):
    """The vendor answered 401/403: the credential is not accepted."""


class VendorUnavailable(Exception):
    """The vendor kept failing (timeouts, connection errors, 5xx)."""


class DestinationRefused(VendorUnavailable):
    """vendor-sync may not send this request there (another origin, a
    non-public address, http): never retried, and nothing was sent there."""


class AsyncRateLimiter:
    """Rate budgets per key; ``acquire`` waits for its turn.

    A token bucket (``rate`` per second, bursts of ``max(rate, 1)``) kept as
    one number per key, the time its budget is next free (the "generic cell
    rate algorithm"): a caller reserves its slot and moves that time on
    without awaiting in between, so waiters need no lock and are served in
    order. Budgets live in a bounded cache; an idle one that falls out is
    the same as a fresh one."""

    MAX_KEYS = 10_000

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._free_at: BoundedCache[str, float] = BoundedCache("vendorsync.rate_budgets", max_keys)

    async def acquire(self, key: str, rate: float) -> None:
        interval = 1.0 / rate
        tolerance = (max(rate, 1.0) - 1.0) * interval  # the burst beyond one request
        now = self._clock()
        free_at = max(self._free_at.get(key, now), now)
        slot = max(now, free_at - tolerance)
        self._free_at[key] = free_at + interval
        if slot > now:
            await self._sleep(slot - now)


class VendorHttp:
    """One vendor session with the origin of ``base_url``: an httpx client
    (through the egress policy, redirects followed only within the origin)
    plus retry and rate policy."""

    def __init__(
        self,
        limiter: Pacer,
        budget_key: str,
        rate: float,
        *,
        egress: EgressPolicy,
        base_url: str,
        timeout: float = 30.0,
        attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
    ) -> None:
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                                        transport=VettedTransport(egress))
        self._egress = egress
        self._origin = httpx.URL(base_url)
        self._limiter = limiter
        self._budget_key = budget_key
        self._rate = rate
        self._attempts = attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_after = max_retry_after
        self.requests = 0

    async def close(self) -> None:
        await self.client.aclose()

    def _backoff(self, attempt: int) -> float:
        cap = min(self._backoff_max, self._backoff_base * 2**attempt)
        return random.uniform(cap / 2, cap)  # "equal jitter"

    def check_url(self, url: str | httpx.URL, what: str = "a request") -> httpx.URL:
        """``url`` if this session may call it (the source's origin, allowed
        by the egress policy); else DestinationRefused naming ``what``."""
        try:
            parsed = self._egress.check_url(url)
        except EgressRefused as exc:
            raise DestinationRefused(f"{what} to {_origin_text(url)} refused: {exc}") from None
        origin = self._origin
        if (parsed.scheme, parsed.host, _port(parsed)) != (origin.scheme, origin.host, _port(origin)):
            raise DestinationRefused(f"{what} to another host ({_origin_text(parsed)}, not "
                                     f"{_origin_text(origin)}): refused")
        return parsed

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, following redirects within the origin only (a
        bounded number); the redirect is checked before anything is sent."""
        try:
            response = await self.client.send(request)
            for _ in range(MAX_REDIRECTS):
                target = response.next_request
                if target is None:
                    return response
                await response.aclose()
                self.check_url(target.url, "redirected")
                await self._limiter.acquire(self._budget_key, self._rate)
                self.requests += 1
                response = await self.client.send(target)
            if response.next_request is None:
                return response
            await response.aclose()
            raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects: refused")
        except EgressRefused as exc:  # from the connection itself: nothing was sent
            raise DestinationRefused(f"connecting to {_origin_text(request.url)} refused: {exc}") from None

    async def request(self, method: str, url: str, *, reject_auth: bool = True, **kwargs: Any) -> httpx.Response:
        """Send with retries; 401/403 raise CredentialRejected (unless
        ``reject_auth`` is False, then they are returned); a request, or a
        redirect, anywhere but the source's origin raises DestinationRefused
        (never retried)."""
        self.check_url(url)
        last_error = "no attempt"
        attempt = throttled = 0
        while attempt < self._attempts and throttled < 50:
            await self._limiter.acquire(self._budget_key, self._rate)
            self.requests += 1
            try:
                response = await self._send(self.client.build_request(method, url, **kwargs))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not connect"
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code == 429:
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else self._backoff(attempt)
                await asyncio.sleep(min(wait, self._max_retry_after))
                last_error = "429 Too Many Requests"
                throttled += 1
                continue  # rate limiting is not a failure: no attempt used
            if response.status_code >= 500:
                last_error = f"HTTP {response.status_code}"
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code in (401, 403) and reject_auth:
                raise CredentialRejected(f"HTTP {response.status_code} from {httpx.URL(url).host}")
            return response
        raise VendorUnavailable(f"{method} {httpx.URL(url).copy_with(query=None)}: {last_error}")


def _port(url: httpx.URL) -> int | None:
    return url.port or {"https": 443, "http": 80}.get(url.scheme)


def _origin_text(url: str | httpx.URL) -> str:
    """scheme://host[:port] of ``url`` (never its path, query or userinfo)."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        return str(parsed.copy_with(userinfo=None, path="", query=None, fragment=None)) or "?"
    except (httpx.InvalidURL, ValueError, TypeError):
        return "an invalid URL"
