"""``python -m bench.revocation [--rounds N]``: how long after a key is
revoked every process refuses it.

Starts the suite's processes (ingest, query, Envoy) as the bench does, with
a 60 s key cache (so a refusal within the round can only come from the
revocation notice, not the cache's expiry). Each round creates an operator
key, uses it once on each path (cached everywhere), revokes it through the
store, and then calls each path back to back until it answers
UNAUTHENTICATED, timing from the revoking commit. Reports the median and the
worst over the rounds, per path and for the slowest path of each round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
import httpx

from bench.harness import Suite, running_suite
from bench.measure import percentile
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc as igrpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import query_service_pb2_grpc as qgrpc
from connlog.core.auth import create_key
from connlog.core.database import create_pool
from connlog.core.principal import Role
from connlog.store.accounts import AccountStore

DEADLINE_S = 10.0


async def _grpc_ok(stub: qgrpc.QueryServiceStub, token: str) -> bool:
    try:
        await stub.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/-", page_size=1),
                                        metadata=(("authorization", f"Bearer {token}"),), timeout=5)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return False
        raise
    return True


async def _ingest_ok(stub: igrpc.IngestServiceStub, token: str) -> bool:
    try:  # an empty batch: authenticated, then nothing to store
        await stub.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(),
                                          metadata=(("authorization", f"Bearer {token}"),), timeout=5)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return False
        raise
    return True


async def _rest_ok(http: httpx.AsyncClient, token: str) -> bool:
    response = await http.get("/v1/networks/-/connectionEvents", params={"pageSize": 1},
                              headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        return False
    response.raise_for_status()
    return True


async def _refused_after(check, token: str, revoked_at: float) -> float:
    while await check(token):
        if time.perf_counter() - revoked_at > DEADLINE_S:
            return float("inf")
    return time.perf_counter() - revoked_at


async def measure(suite: Suite, rounds: int) -> dict[str, object]:
    pool = await create_pool(suite.settings, suite.database_url, min_size=1, max_size=2)
    accounts = AccountStore(pool)
    paths: dict[str, list[float]] = {"query gRPC": [], "ingest gRPC": [], "gateway REST (query)": []}
    worst: list[float] = []
    async with grpc.aio.insecure_channel(suite.query_address) as channel, \
            grpc.aio.insecure_channel(suite.ingest_address) as ingest_channel, \
            httpx.AsyncClient(base_url=suite.gateway_url, timeout=10) as http:
        stub = qgrpc.QueryServiceStub(channel)
        ingest = igrpc.IngestServiceStub(ingest_channel)
        checks = {"query gRPC": lambda t: _grpc_ok(stub, t), "ingest gRPC": lambda t: _ingest_ok(ingest, t),
                  "gateway REST (query)": lambda t: _rest_ok(http, t)}
        for _ in range(rounds):
            key = await create_key(accounts, tenant_id="bench-revocation", role=Role.OPERATOR)
            for check in checks.values():
                assert await check(key.token)
            await accounts.revoke_key(key.key_id)
            revoked_at = time.perf_counter()
            times = await asyncio.gather(*(_refused_after(check, key.token, revoked_at) for check in checks.values()))
            for name, seconds in zip(checks, times, strict=True):
                paths[name].append(seconds)
            worst.append(max(times))
    await pool.close()
    ms = {name: {"p50_ms": round(percentile(v, 50) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
          for name, v in paths.items()}
    return {"rounds": rounds, "paths": ms, "slowest_path_p50_ms": round(percentile(worst, 50) * 1000, 1),
            "slowest_path_max_ms": round(max(worst) * 1000, 1)}


async def main(rounds: int) -> None:
    async with running_suite() as suite:
        print(json.dumps(await measure(suite, rounds), indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    asyncio.run(main(parser.parse_args().rounds))
