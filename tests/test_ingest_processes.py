"""Several ``connlog serve ingest`` processes on one port
(``ingest_processes``): every one binds it (SO_REUSEPORT), every one serves
calls made to it, and each has its own metrics port; without the setting a
second process on a taken port fails to start.

No timing: "both serve" is observed through each process's own metrics
(its count of calls), over new connections until each has answered one."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.auth import create_key
from connlog.core.principal import Role
from connlog.core.settings import Settings
from connlog.devtools.ports import free_ports
from connlog.ingest.main import metrics_port
from connlog.store.accounts import AccountStore
from connlog.suite import ServiceProcess, suite_services, wait_listening, wait_serving
from tests.support.factories import simple_event
from tests.support.processes import rpc_calls, service_processes

# New connections tried until each process has answered one: the kernel
# spreads connections at random, so 200 leave each of two processes without
# one with a chance of 2**-199.
CONNECTIONS_MAX = 200


def _env(database_url: str, data_dir: Path, port: int, metrics: int, replica_metrics: int, *, processes: int,
         index: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.update(DATABASE_URL=database_url, CONNLOG_DATA_DIR=str(data_dir), CONNLOG_INGEST_PORT=str(port),
               CONNLOG_INGEST_METRICS_PORT=str(metrics), CONNLOG_INGEST_REPLICA_METRICS_PORT=str(replica_metrics),
               CONNLOG_INGEST_PROCESSES=str(processes), CONNLOG_INGEST_PROCESS_INDEX=str(index),
               CONNLOG_INGEST_WORKERS="0", CONNLOG_LOG_FORMAT="console", CONNLOG_LOG_LEVEL="warning")
    return env


async def test_two_ingest_processes_share_one_port_and_both_serve(database_url, pool, tmp_path):
    port, metrics, replica_metrics = free_ports(3)
    envs = [_env(database_url, tmp_path, port, metrics, replica_metrics, processes=2, index=i) for i in range(2)]
    key = await create_key(AccountStore(pool), tenant_id="t-processes", role=Role.OPERATOR)
    md = (("authorization", f"Bearer {key.token}"),)
    with service_processes("ingest", envs, tmp_path) as procs:
        # each listens on its own metrics port (process 1: the replica base) once its gRPC server runs
        for proc, own in zip(procs, (metrics, replica_metrics), strict=True):
            await wait_listening("127.0.0.1", own, proc=proc)
        assert all(proc.poll() is None for proc in procs)  # the second bind did not fail
        served = [0.0, 0.0]
        for n in range(CONNECTIONS_MAX):
            # a connection of its own each time (no shared subchannel)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                                 options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                reply = await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestConnectionEvents(
                    ipb.IngestConnectionEventsRequest(events=[simple_event("N_shared", client_id=f"k{n}")]),
                    metadata=md)
            assert reply.accepted_count == 1
            served = [rpc_calls(m, "IngestConnectionEvents") for m in (metrics, replica_metrics)]
            if all(served):
                break
        assert all(served), f"calls answered by each process: {served}"
        assert sum(served) == n + 1  # every call answered by one of them, once


async def test_without_ingest_processes_a_second_process_on_the_port_fails_to_start(database_url, tmp_path):
    port, metrics, other_metrics, replica_metrics = free_ports(4)
    first = _env(database_url, tmp_path, port, metrics, replica_metrics, processes=1, index=0)
    second = _env(database_url, tmp_path, port, other_metrics, replica_metrics, processes=1, index=0)
    with service_processes("ingest", [first], tmp_path) as (running,):
        await wait_serving(f"127.0.0.1:{port}", proc=running)
        with service_processes("ingest", [second], tmp_path, "second") as (refused,):
            assert refused.wait(60) != 0  # a port in use is a configuration error
        assert running.poll() is None


def test_connlog_up_runs_one_supervised_process_per_ingest_process_each_with_its_metrics_port():
    settings = Settings(ingest_processes=3, ingest_metrics_port=9101, ingest_replica_metrics_port=9111)
    ingest = [s for s in suite_services(settings) if s.name == "ingest"]
    assert [(s.label, s.port, s.metrics_port, s.env) for s in ingest] == [
        ("ingest", settings.ingest_port, 9101, {"CONNLOG_INGEST_PROCESS_INDEX": "0"}),
        ("ingest-2", settings.ingest_port, 9111, {"CONNLOG_INGEST_PROCESS_INDEX": "1"}),
        ("ingest-3", settings.ingest_port, 9112, {"CONNLOG_INGEST_PROCESS_INDEX": "2"}),
    ]
    assert [s.name for s in suite_services(Settings())] == ["ingest", "query", "vendor-sync"]
    assert metrics_port(settings.model_copy(update={"ingest_process_index": 2, "ingest_replica_metrics_port": 0})) == 0
    assert ServiceProcess("query", 1, 2).env == {}


def test_a_process_index_must_be_below_the_process_count():
    with pytest.raises(ValueError, match="ingest_process_index"):
        Settings(ingest_processes=2, ingest_process_index=2)
