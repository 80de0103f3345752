"""HTTP to vendor APIs: rate budgets, retries with exponential backoff and
jitter, Retry-After, and credential rejections."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import httpx


class CredentialRejected(Exception):
    """The vendor answered 401/403: the credential is not accepted."""


class VendorUnavailable(Exception):
    """The vendor kept failing (timeouts, connection errors, 5xx)."""


class AsyncRateLimiter:
    """Token buckets per budget key; ``acquire`` waits for a token."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, key: str, rate: float) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            while True:
                now = self._clock()
                tokens, last = self._buckets.get(key, (max(rate, 1.0), now))
                tokens = min(max(rate, 1.0), tokens + (now - last) * rate)
                if tokens >= 1:
                    self._buckets[key] = (tokens - 1, now)
                    return
                self._buckets[key] = (tokens, now)
                await asyncio.sleep((1 - tokens) / rate)


class VendorHttp:
    """One vendor session: an httpx client plus retry and rate policy."""

    def __init__(
        self,
        limiter: AsyncRateLimiter,
        budget_key: str,
        rate: float,
        *,
        timeout: float = 30.0,
        attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
    ) -> None:
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
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

    async def request(self, method: str, url: str, *, reject_auth: bool = True, **kwargs) -> httpx.Response:
        """Send with retries; 401/403 raise CredentialRejected (unless
        ``reject_auth`` is False, then they are returned)."""
        last_error = "no attempt"
        attempt = throttled = 0
        while attempt < self._attempts and throttled < 50:
            await self._limiter.acquire(self._budget_key, self._rate)
            self.requests += 1
            try:
                response = await self.client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
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
