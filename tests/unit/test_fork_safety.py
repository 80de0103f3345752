"""Importing connlog turns gRPC's fork handlers off, so a process forking to
exec while its gRPC threads are busy (pg_ctl as the database's user, in the
services and in the test suite) gets children that reach their exec.

Each case runs in a fresh interpreter: gRPC reads the setting when it is first
imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A gRPC server answering eight callers without pause while another thread
# forks (preexec_fn rules out vfork, as ``user=`` does for pg_ctl) and execs
# /bin/true 200 times; prints how many children did not exit 0. With gRPC's
# fork handlers on, about one child in six dies before its exec here.
FORK_UNDER_LOAD = """
import connlog
import asyncio, subprocess
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main() -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    done = asyncio.Event()

    async def caller() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                await stub.Check(health_pb2.HealthCheckRequest())

    def fork_and_exec() -> int:
        codes = [subprocess.run(["/bin/true"], preexec_fn=lambda: None).returncode for _ in range(200)]
        return sum(code != 0 for code in codes)

    callers = [asyncio.create_task(caller()) for _ in range(8)]
    failed = await asyncio.to_thread(fork_and_exec)
    done.set()
    await asyncio.gather(*callers)
    await server.stop(None)
    print(failed)

asyncio.run(main())
"""


def _environment_without_the_setting() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "GRPC_ENABLE_FORK_SUPPORT"}


@pytest.mark.parametrize(("given", "seen"), [(None, "false"), ("true", "true"), ("0", "0")])
def test_importing_connlog_turns_the_handlers_off_unless_the_environment_says(given, seen):
    env = _environment_without_the_setting()
    if given is not None:
        env["GRPC_ENABLE_FORK_SUPPORT"] = given
    out = subprocess.run([sys.executable, "-c", "import connlog, os; print(os.environ['GRPC_ENABLE_FORK_SUPPORT'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == seen


def test_children_forked_while_grpc_is_busy_reach_their_exec():
    out = subprocess.run([sys.executable, "-c", FORK_UNDER_LOAD], env=_environment_without_the_setting(),
                         capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "0"


def test_the_test_process_itself_runs_with_the_handlers_off():
    # tests/__init__.py imports connlog before any test module imports grpc.
    assert os.environ["GRPC_ENABLE_FORK_SUPPORT"] == "false"
