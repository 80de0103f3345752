"""The suite as a user runs it: ``connlog up`` in its own process, and the
``connlog keys`` commands."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import grpc

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc, query_service_pb2_grpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.devtools.ports import free_ports
from tests.support.factories import simple_event


def _env(data_dir, ports, database_url=None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(
        CONNLOG_DATA_DIR=str(data_dir),
        CONNLOG_INGEST_PORT=str(ports[0]),
        CONNLOG_QUERY_PORT=str(ports[1]),
        CONNLOG_INGEST_METRICS_PORT=str(ports[2]),
        CONNLOG_QUERY_METRICS_PORT=str(ports[3]),
        CONNLOG_GATEWAY_PORT=str(ports[4]),
        CONNLOG_VENDOR_SYNC_PORT=str(ports[6]),
        CONNLOG_VENDOR_SYNC_METRICS_PORT=str(ports[7]),
        CONNLOG_LOG_FORMAT="console",
    )
    return env


async def _start(env) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connlog", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    while True:
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            raise AssertionError("connlog up exited early:\n" + "".join(lines))
        lines.append(line)
        if "API key" in line:
            return proc, line.split("API key", 1)[1].split()[0]


async def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    rest = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, rest


async def test_data_survives_a_restart_of_the_suite(tmp_path):
    """Embedded PostgreSQL (or DATABASE_URL's server) and both services, twice."""
    ports = free_ports(8)
    env = _env(tmp_path / "data", ports, os.environ.get("DATABASE_URL"))
    proc, key = await _start(env)
    md = (("authorization", f"Bearer {key}"),)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
            reply = await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestConnectionEvents(
                ipb.IngestConnectionEventsRequest(events=[simple_event("N_restart", client_id="k-restart")]),
                metadata=md,
            )
        name = reply.results[0].name
        assert reply.accepted_count == 1
    finally:
        await _stop(proc)

    proc, key_again = await _start(env)
    try:
        assert key_again == key  # the first start's key is kept in the data dir
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[1]}") as channel:
            event = await query_service_pb2_grpc.QueryServiceStub(channel).GetConnectionEvent(
                qpb.GetConnectionEventRequest(name=name), metadata=md
            )
        assert event.client.client_id == "k-restart"
        # the gateway is up too
        import httpx

        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{ports[4]}/api/v1/networks/N_restart",
                                      headers={"X-Cisco-Meraki-API-Key": key})
            assert response.status_code == 200 and response.json()["id"] == "N_restart"
            # the vendor-sync service is up too, through the gateway's canonical REST
            sources = await http.get(f"http://127.0.0.1:{ports[4]}/v1/syncSources",
                                     headers={"Authorization": f"Bearer {key}"})
            assert sources.status_code == 200 and sources.json() == {}
    finally:
        await _stop(proc)
    if not os.environ.get("DATABASE_URL"):
        assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL left running"


def _connlog(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connlog", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def test_keys_commands(tmp_path, database_url, clients):
    env = _env(tmp_path, free_ports(8), database_url)
    created = _connlog(env, "keys", "create", "--tenant", "cli-tenant", "--role", "viewer", "--description", "ci")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    key_id = token.split("_")[1]
    md = (("authorization", f"Bearer {token}"),)
    await clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/-"), metadata=md)

    listed = _connlog(env, "keys", "list", "--tenant", "cli-tenant")
    assert key_id in listed.stdout and "viewer" in listed.stdout and "active" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout  # never the secret

    bad = _connlog(env, "keys", "create", "--tenant", "cli-tenant", "--role", "device")
    assert bad.returncode == 2 and "device id" in bad.stderr

    revoked = _connlog(env, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _connlog(env, "keys", "list", "--tenant", "cli-tenant").stdout
    try:
        await clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/-"), metadata=md)
        raise AssertionError("revoked key still works")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _connlog(env, "keys", "revoke", key_id).returncode == 1
