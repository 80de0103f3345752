"""The edge of every gRPC service: one mapping from what went wrong to what
the caller is told.

* A request that cannot be decoded (truncated, not protobuf, a string field
  that is not UTF-8) is ``INVALID_ARGUMENT`` naming the field where it can be
  found, instead of the library's ``INTERNAL``/``UNKNOWN``.
* ``InvalidArgument(field, reason)`` raised anywhere is ``INVALID_ARGUMENT``
  with ``"<field>: <reason>"``.
* A database that cannot be reached (connection refused or lost, server
  shutting down or starting, too many connections, timeouts) is
  ``UNAVAILABLE`` with a ``retry-after`` hint: transient, not a bug.
* Anything else is ``INTERNAL`` with a correlation id; the exception and its
  traceback go to the log under that id, never to the caller.

RPCs of a REST shape (``connlog.shapes.registry``) get the same mapping in
their own format: the shape's error body with the HTTP status (400, 503 with
``Retry-After``, 500 with the correlation id), and ``RestError`` raised by a
handler is answered as given.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import asyncpg
import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from structlog.typing import FilteringBoundLogger

from connlog.shapes.rest import CORRELATION_HEADER, HttpBody, RestError, respond

if TYPE_CHECKING:
    from connlog.shapes.registry import Shape


class InvalidArgument(ValueError):
    """A request field that cannot be honoured; ``field`` is its path as the
    caller named it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Undecodable:
    """Stands for a request message that could not be decoded."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


# Errors that mean "the database is not reachable right now".
_TRANSIENT = (
    asyncpg.PostgresConnectionError,  # class 08: connection lost / refused by the server
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.exceptions.InterfaceError,  # the connection was closed under the query
    asyncpg.exceptions.InternalClientError,  # a connection left mid-protocol by a server that went away
    OSError,  # connection refused, socket gone
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is (for now) out of reach."""
    return isinstance(exc, _TRANSIENT)


def _wire_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes | None]]:
    """(field number, wire type, value) of a serialized message's top level;
    raises ValueError where the bytes are not a message."""
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        result = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            yield number, 0, varint()
        elif wire_type == 1:
            pos += 8
            yield number, 1, None
        elif wire_type == 2:
            length = varint()
            if pos + length > end:
                raise ValueError
            yield number, 2, data[pos:pos + length]
            pos += length
        elif wire_type == 5:
            pos += 4
            yield number, 5, None
        else:
            raise ValueError
        if pos > end:
            raise ValueError


def describe_undecodable(descriptor: Descriptor, data: bytes, prefix: str = "") -> str:
    """Why ``data`` is not a ``descriptor`` message, naming the field where
    one is to blame."""
    try:
        for number, wire_type, value in _wire_fields(data):
            field = descriptor.fields_by_number.get(number)
            if field is None or wire_type != 2 or not isinstance(value, bytes):
                continue
            path = prefix + field.name
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return f"{path}: is not valid UTF-8 text"
            elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
                found = describe_undecodable(field.message_type, value, path + ".")
                if not found.startswith("request"):
                    return found
    except ValueError:
        pass
    return f"request: is not a valid {descriptor.full_name} message"


def _method_input(method: str) -> Descriptor | None:
    """The request type of ``/package.Service/Method``."""
    service, _, name = method.lstrip("/").rpartition("/")
    try:
        return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name].input_type
    except KeyError:
        return None


def _lenient(
    deserialize: Callable[[bytes], object] | None, descriptor: Descriptor | None
) -> Callable[[bytes], object] | None:
    """``deserialize``, answering an ``Undecodable`` (naming why) for bytes
    that are not a ``descriptor`` message instead of raising."""
    if deserialize is None or descriptor is None:
        return deserialize

    def parse(data: bytes) -> object:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, RuntimeError):
            return Undecodable(describe_undecodable(descriptor, data))

    return parse


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Maps every failure of every RPC to a clear answer (see the module)."""

    def __init__(
        self, log: FilteringBoundLogger, retry_after_seconds: int, on_transient: Callable[[], None] = lambda: None
    ) -> None:
        self._log = log
        self._retry_after = retry_after_seconds
        self._on_transient = on_transient
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}  # one per registered method
        # (imported here: the registry imports the servicers, which import the server, which imports this)
        from connlog.shapes.registry import SHAPES_BY_SERVICE

        self._shapes: dict[str, Shape] = SHAPES_BY_SERVICE

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrap(method, handler)
        self._handlers[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        descriptor = _method_input(method)
        if descriptor is None:  # health, reflection: the library's own
            return handler
        shape = self._shapes.get(method.lstrip("/").rpartition("/")[0])
        deserializer = _lenient(handler.request_deserializer, descriptor)
        fail = self._failure
        # grpc-stubs type a handler's behaviours as the sync API's (taking a
        # grpc.ServicerContext, streams as Iterators); under grpc.aio they are
        # coroutine functions (async generators for streamed responses) taking
        # a grpc.aio.ServicerContext and (streamed requests) an AsyncIterator.

        if handler.unary_unary:
            behavior: Callable[..., Awaitable[object]] = handler.unary_unary

            async def unary(request: object, context: grpc.aio.ServicerContext) -> object:
                try:
                    if isinstance(request, Undecodable):
                        raise InvalidArgument(*request.reason.split(": ", 1))
                    return await behavior(request, context)
                except Exception as exc:
                    return await fail(exc, context, method, shape)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )
        if handler.stream_unary:
            consumer: Callable[..., Awaitable[object]] = handler.stream_unary

            async def checked(requests: AsyncIterator[object]) -> AsyncIterator[object]:
                async for request in requests:
                    if isinstance(request, Undecodable):
                        raise InvalidArgument(*request.reason.split(": ", 1))
                    yield request

            async def stream(requests: AsyncIterator[object], context: grpc.aio.ServicerContext) -> object:
                try:
                    return await consumer(checked(requests), context)
                except Exception as exc:
                    return await fail(exc, context, method, shape)

            return grpc.stream_unary_rpc_method_handler(
                stream, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )
        if handler.unary_stream:
            # (the stub's Iterator is an AsyncIterator under grpc.aio: see above)
            streaming: Callable[..., AsyncIterator[object]] = handler.unary_stream  # type: ignore[assignment]

            async def server_stream(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[object]:
                try:
                    if isinstance(request, Undecodable):
                        raise InvalidArgument(*request.reason.split(": ", 1))
                    async for response in streaming(request, context):
                        yield response
                except Exception as exc:
                    await fail(exc, context, method, None)

            return grpc.unary_stream_rpc_method_handler(
                server_stream, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )
        return handler

    async def _failure(
        self, exc: Exception, context: grpc.aio.ServicerContext, method: str, shape: Shape | None
    ) -> HttpBody:
        """Answer ``exc``: abort the RPC with its status, or (a REST shape's
        RPC) return the shape's error body with its HTTP status."""
        if isinstance(exc, grpc.aio.AbortError) or isinstance(context.code(), grpc.StatusCode):
            raise exc  # the handler chose the answer
        headers: tuple[tuple[str, str], ...] = ()
        if isinstance(exc, RestError):
            if shape is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
            status, message, headers = exc.status, exc.message, exc.headers
            body = exc.body
        else:
            body = None
            if isinstance(exc, InvalidArgument):
                code, status, message = grpc.StatusCode.INVALID_ARGUMENT, 400, str(exc)
            elif is_transient(exc):
                self._on_transient()
                self._log.warning("database unavailable", method=method, error=type(exc).__name__)
                code, status = grpc.StatusCode.UNAVAILABLE, 503
                message = "the database is unavailable; retry later"
                headers = (("retry-after", str(self._retry_after)),)
            elif isinstance(exc, asyncpg.DataError):
                # a value the database refuses (out of its type's range): the
                # request's, since stored data is checked on the way in
                self._log.info("request value refused by the database", method=method, error=type(exc).__name__)
                code, status = grpc.StatusCode.INVALID_ARGUMENT, 400
                message = "request: a value is out of the range the store accepts"
            else:
                correlation = secrets.token_hex(8)
                self._log.error("unexpected error", method=method, correlation_id=correlation, exc_info=exc)
                code, status = grpc.StatusCode.INTERNAL, 500
                message = f"internal error (correlation id {correlation})"
                headers = ((CORRELATION_HEADER, correlation),)
            if shape is None:
                await context.abort(code, message, trailing_metadata=headers)
        return await respond(context, status, body if body is not None else shape.error_body(status, message),
                             headers=headers)
