"""Waiting for a condition in the tests: polled, with a generous deadline
(never a fixed sleep standing in for synchronisation)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(predicate: Callable[[], Awaitable[bool]], what: str, deadline: float = 60.0) -> None:
    """Return once ``predicate()`` is true; fail naming ``what`` after
    ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
