"""A fake ``grpc.aio.ServicerContext`` for calling servicer methods directly,
in unit tests (no server, no channel, no network).

Why not grpc-testing (``grpc_testing``): it drives only synchronous
servicers. It calls the method in a thread and takes what it returns as the
response; an ``async def`` method returns a coroutine, which it reports as
the response with status OK, never awaited, so the method body (and its
``await context.abort(...)``) never runs. Its own ServicerContext's ``abort``
is synchronous besides. connlog's servicers are ``grpc.aio`` servicers, so
their unit tests call the coroutine themselves with this context.

``abort`` raises ``Aborted`` carrying the status code and details, as the
real context raises (an internal) ``AbortError`` the runtime turns into the
RPC's status; ``call`` runs a servicer method and returns its response or the
``Aborted`` it raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc
from grpc import aio

# grpc.aio's own MetadataType
Metadata = aio.Metadata | Sequence[tuple[str, str | bytes]]


class Aborted(Exception):
    """The RPC ended with ``code`` and ``details`` (``context.abort``)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata = ()) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata)


class FakeServicerContext(aio.ServicerContext):
    """The server side of one unary RPC, as a servicer sees it."""

    def __init__(self, metadata: Metadata = (), *, peer: str = "ipv4:127.0.0.1:50000",
                 timeout: float | None = None) -> None:
        self._metadata = aio.Metadata(*metadata)
        self._peer = peer
        self._timeout = timeout
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._trailing = aio.Metadata()
        self.initial_metadata: Metadata | None = None
        self._callbacks: list[Callable[[Any], None]] = []

    # --- what servicers read ------------------------------------------------------------------------------------
    def invocation_metadata(self) -> aio.Metadata | None:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict:
        return {}

    # grpc.aio says float, and returns None without a deadline (as here)
    def time_remaining(self) -> float | None:  # type: ignore[override]
        return self._timeout

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return self._code is not None

    # --- how servicers end the RPC ------------------------------------------------------------------------------
    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> NoReturn:
        if code is grpc.StatusCode.OK:
            raise ValueError("abort() needs a status other than OK")  # as grpc.aio says
        self._code, self._details, self._trailing = code, details, aio.Metadata(*trailing_metadata)
        raise Aborted(code, details, trailing_metadata)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self._trailing = aio.Metadata(*trailing_metadata)

    # grpc.aio says StatusCode and str, and returns None for what was not set
    # (connlog's edge and metrics tell an abort by it): so does this fake.
    def code(self) -> grpc.StatusCode | None:  # type: ignore[override]
        return self._code

    def details(self) -> str | None:  # type: ignore[override]
        return self._details

    def trailing_metadata(self) -> aio.Metadata:
        return self._trailing

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        self.initial_metadata = tuple(initial_metadata)

    def set_compression(self, compression: grpc.Compression) -> None:
        pass

    def disable_next_message_compression(self) -> None:
        pass

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    # --- streaming: not what this fake is for ------------------------------------------------------------------
    async def read(self) -> NoReturn:
        raise NotImplementedError("FakeServicerContext serves unary RPCs only")

    async def write(self, message: Any) -> NoReturn:
        raise NotImplementedError("FakeServicerContext serves unary RPCs only")


async def call(method: Callable[[Any, aio.ServicerContext], Awaitable[Any]], request: Any,
               metadata: Metadata = ()) -> Any:
    """``method(request, context)`` with a fresh FakeServicerContext: the
    response, or the ``Aborted`` that ended the RPC (returned, not raised)."""
    context = FakeServicerContext(metadata)
    try:
        return await method(request, context)
    except Aborted as aborted:
        return aborted
