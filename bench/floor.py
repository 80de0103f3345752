"""The gRPC ceiling of this machine: a no-op IngestService.

A grpcio (grpc.aio) server on the loop connlog runs on, in a process of its
own, answering every IngestConnectionEvents call "accepted" without looking
at its event: no authentication, validation, database or metrics. Loaded
exactly as connlog's unary ingest is (the same generator, callers and
requests), its rate is the most any single grpcio server process can serve
on this machine with that load generator; the bench reports it beside the
single-row baseline, so the unary target can be read against what the
stack's own per-call cost leaves."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection

import grpc

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc as igrpc
from connlog.core import event_loop

START_DEADLINE_S = 60.0


class NoOpIngest(igrpc.IngestServiceServicer):
    """Every unary call accepted, nothing done."""

    def __init__(self) -> None:
        self._reply = ipb.IngestConnectionEventsResponse(accepted_count=1)

    async def IngestConnectionEvents(self, request: ipb.IngestConnectionEventsRequest,
                                     context: grpc.aio.ServicerContext) -> ipb.IngestConnectionEventsResponse:
        return self._reply


def _serve(conn: Connection) -> None:
    """The server process: listens on a free loopback port, sends it, serves
    until told to stop (anything received on ``conn``)."""

    async def main() -> None:
        server = grpc.aio.server()
        igrpc.add_IngestServiceServicer_to_server(NoOpIngest(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        conn.send(port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await server.stop(None)

    event_loop.run(main(), "auto")


@asynccontextmanager
async def noop_ingest() -> AsyncIterator[str]:
    """A no-op IngestService in a process of its own; yields its address."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs,), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    try:
        if not await loop.run_in_executor(None, ours.poll, START_DEADLINE_S):
            raise RuntimeError("the no-op IngestService did not start")
        yield f"127.0.0.1:{ours.recv()}"
        ours.send("stop")
    finally:
        await loop.run_in_executor(None, process.join, 30)
        if process.is_alive():
            process.kill()
