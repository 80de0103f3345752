"""``python -m bench.profile [--processes N] [--events N] [--kind grpc|rest|bulk]``:
start the suite, run the single-event load (gRPC unary or Zequenze POST via
Envoy, 64 callers) or the bulk load (two tenants streaming, as in the bench's
bulk stage, ``--events`` in all) long enough to profile, record the ingest
process(es) and their validation workers with py-spy (``pip install py-spy``)
and print where their time goes:
the share of samples in each of a list of parts of the single-event path
(inclusive), and the top functions by own time. The raw stacks are kept in
bench/results/profile-<kind>.txt (collapsed: one stack and its count a line)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import measure
from bench.harness import running_suite
from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.auth import create_key
from connlog.core.database import create_pool
from connlog.core.logging import configure_logging
from connlog.core.principal import Role
from connlog.store.accounts import AccountStore

ROOT = Path(__file__).resolve().parents[1]

# Parts of the single-event path: a sample counts for a part when one of its
# frames' function (or file:function) contains the text.
PARTS = {
    "idle (selector wait)": ("EpollSelector.select (",),
    "servicer: IngestConnectionEvents": ("IngestConnectionEvents (connlog/ingest/servicer.py",),
    "servicer: Zequenze": ("connlog/shapes/zequenze",),
    "auth (caller / authenticate)": ("caller (connlog/core/auth.py", "authenticate_rest", "authenticate_token"),
    "write budget (charge)": ("charge (connlog/core/auth.py",),
    "pipeline.ingest_batch": ("ingest_batch (connlog/ingest/pipeline.py",),
    "normalise": ("normalise_events",),
    "group commit (waiting excluded)": ("connlog/ingest/group_commit.py",),
    "store.insert_group": ("insert_group",),
    "asyncpg": ("asyncpg/",),
    "result messages (IngestResult, event_name)": ("IngestResult", "event_name"),
    "observability interceptor (metrics, logs)": ("timed (connlog/core/metrics.py",),
    "metrics observe": ("observe (connlog/core/metrics.py", "prometheus_client"),
    "edge interceptor": ("connlog/core/edge.py",),
    "logging": ("structlog",),
    "grpc (aio server, C-core glue)": ("grpc/_cython", "grpc/aio", "_cygrpc", "grpc_core", "cygrpc"),
    "socket writes (asyncio transports)": ("_SelectorSocketTransport.write",),
    "stream: ingest_stream_batch": ("ingest_stream_batch (connlog/ingest/pipeline.py",),
    "stream: worker hand-over (serialize, wait, results)": ("normalise (connlog/ingest/workers.py",),
    "stream: insert_copied": ("insert_copied",),
    "stream: access points": ("_record_access_points",),
    "stream: receiving messages": ("_stream (connlog/ingest/servicer.py",),
}


def cpu_by_role(ingest: list[int], load: list[int], workers: Sequence[int] = ()) -> dict[str, float]:
    """CPU seconds used so far by every process of the machine, by role."""
    import psutil

    used: collections.Counter[str] = collections.Counter()
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        cmdline = " ".join(proc.info["cmdline"] or ())
        name = proc.info["name"] or ""
        if proc.info["pid"] in workers:
            role = "ingest validation worker(s)"
        elif proc.info["pid"] in ingest:
            role = "ingest process(es)"
        elif proc.info["pid"] in load or name == "wrk":
            role = "load generators"
        elif "postgres" in name or "postgres" in cmdline.split(" ", 1)[0]:
            role = "PostgreSQL"
        elif "envoy" in name:
            role = "Envoy"
        elif "connlog serve" in cmdline or "-m connlog serve" in cmdline:
            role = "other connlog services"
        else:
            role = "everything else"
        used[role] += times.user + times.system
    return dict(used)


def cpu_table(before: dict[str, float], after: dict[str, float], seconds: float, requests: int) -> str:
    lines = ["| process | CPU (cores) | CPU per request, µs |", "|---|---|---|"]
    for role in sorted(after, key=lambda r: -(after[r] - before.get(r, 0.0))):
        used = after[role] - before.get(role, 0.0)
        lines.append(f"| {role} | {used / seconds:.2f} | {used / requests * 1e6:,.0f} |")
    return "\n".join(lines)


def summarise(raw: Path, top: int = 25) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stacks.append((stack.split(";"), int(count)))
    # the main thread only: a service's event loop (run as ``-m``), else (a
    # spawned worker) the root frame with the most samples
    roots: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        roots[frames[0]] += count
    main_root = next((root for root in roots if root.startswith("_run_module_as_main")),
                     roots.most_common(1)[0][0] if roots else "")
    stacks = [(frames, count) for frames, count in stacks if frames[0] == main_root]
    total = sum(n for _, n in stacks) or 1
    lines = [f"{total} samples of the main thread", "", "| part | share of samples (inclusive) |", "|---|---|"]
    for part, needles in PARTS.items():
        n = sum(count for frames, count in stacks if any(needle in f for f in frames for needle in needles))
        lines.append(f"| {part} | {100 * n / total:.1f}% |")
    own: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
    lines += ["", "| own time, function | share |", "|---|---|"]
    lines += [f"| `{name[:110]}` | {100 * n / total:.1f}% |" for name, n in own.most_common(top)]
    return "\n".join(lines)


async def main(kind: str, processes: int, events: int, native: bool, record: bool, overrides: dict[str, str]) -> str:
    async with running_suite(ingest_processes=processes, **overrides) as suite:
        await suite.scale_ingest(processes)
        pool = await create_pool(suite.settings, suite.database_url, min_size=1, max_size=2)
        accounts = AccountStore(pool)
        operator = (await create_key(accounts, tenant_id="bench-0", role=Role.OPERATOR)).token
        device = (await create_key(accounts, tenant_id="bench-0", role=Role.DEVICE, device_id="bench-dev")).token
        await pool.close()
        serialized = []
        for i in range(events):
            event = pb.ConnectionEvent(network_id="N_unary", client=pb.Client(client_id=f"p{i}"),
                                       step=pb.CONNECTION_STEP_CONNECTION)
            event.occur_time.GetCurrentTime()
            serialized.append(event.SerializeToString())
        pids = [proc.pid for name, proc in suite.processes.items() if name.startswith("ingest")]
        if kind == "bulk":
            import psutil

            pids += [child.pid for pid in list(pids) for child in psutil.Process(pid).children(recursive=True)
                     if "python" in child.name()]
        raws = [ROOT / "bench" / "results" / f"profile-{kind}-{n}.txt" for n in range(len(pids))]
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if kind == "bulk":
            return await _bulk(suite, events, pids, raws, spy, native, record)
        with ProcessPoolExecutor(max_workers=measure.LOAD_PROCESSES) as executor:
            # warm up (caches, connections), then the profiled load
            if kind == "grpc":
                await measure.spread_load(executor, "grpc", suite.ingest_address, operator, serialized[:2000])
            else:
                await measure.rest_load(executor, "rest", suite.gateway_url, device, 9, 2000)
            recorders = [subprocess.Popen(
                [spy, "record", "-f", "raw", "-r", "250", "-o", str(raw), "-p", str(pid), *(["--native"] if native
                                                                                         else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid, raw in zip(pids, raws, strict=True)]
            await asyncio.sleep(1.0)
            load_pids = [p.pid for p in executor._processes.values()] if executor._processes else []
            cpu_before = cpu_by_role(pids, load_pids)
            began = time.perf_counter()
            if kind == "grpc":
                result = await measure.spread_load(executor, "grpc", suite.ingest_address, operator,
                                                   serialized[2000:])
            else:
                result = await measure.rest_load(executor, "rest", suite.gateway_url, device, 10, events - 2000)
            seconds = time.perf_counter() - began
            cpu_after = cpu_by_role(pids, load_pids)
            for recorder in recorders:
                recorder.send_signal(2)  # py-spy writes its output on SIGINT
            for recorder in recorders:
                recorder.wait(60)
        rate = result["requests"] / result["seconds"]
        head = (f"{kind}: {result['requests']} events in {seconds:.1f} s, {rate:,.0f}/s, p50 "
                f"{measure._p(result, 50):.1f} ms, p99 {measure._p(result, 99):.1f} ms, errors {result['errors']}, "
                f"{processes} ingest process(es)")
        cpu = cpu_table(cpu_before, cpu_after, seconds, result["requests"])
        return "\n\n".join([head, cpu, *(summarise(raw) for raw in raws)])


async def _bulk(suite, events: int, pids: list[int], raws: list[Path], spy: str, native: bool, record: bool) -> str:
    """Two tenants streaming their events (the bench's bulk shape), recorded
    (unless not ``record``: then only the CPU each kind of process used)."""
    import datetime as dt

    from bench.data import Shape
    from bench.load import stream_ingest

    pool = await create_pool(suite.settings, suite.database_url, min_size=1, max_size=2)
    tokens = [(await create_key(AccountStore(pool), tenant_id=f"bulk-{t}", role=Role.OPERATOR)).token
              for t in range(2)]
    await pool.close()
    shape = Shape(2, 2, 25, max(1, events // 100), 7)
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).timestamp()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=2) as executor:
        start_at = time.time() + 3 + shape.total / 200_000
        recorders = [subprocess.Popen(
            [spy, "record", "-f", "raw", "-r", "250", "-o", str(raw), "-p", str(pid), *(["--native"] if native
                                                                                     else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid, raw in zip(pids, raws, strict=True)
            if record]
        work = [loop.run_in_executor(executor, stream_ingest, suite.ingest_address, tokens[t], shape, t, end, 1,
                                     start_at) for t in range(2)]
        load_pids = [p.pid for p in executor._processes.values()] if executor._processes else []
        await asyncio.sleep(max(0.0, start_at - time.time()))  # the generators build their requests first
        workers = pids[1:]  # the service process's children
        cpu_before = cpu_by_role(pids, load_pids, workers)
        results = await asyncio.gather(*work)
        cpu_after = cpu_by_role(pids, load_pids, workers)
        for recorder in recorders:
            recorder.send_signal(2)
        for recorder in recorders:
            recorder.wait(60)
    accepted = sum(r[0] for r in results)
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    head = f"bulk: {accepted} of {shape.total} events accepted in {seconds:.1f} s, {accepted / seconds:,.0f}/s"
    # (from the generators' start to the last answer: a few ms more than ``seconds``)
    cpu = cpu_table(cpu_before, cpu_after, seconds, accepted).replace("per request", "per event")
    profiles = [f"process {pid}:\n\n" + summarise(raw) for pid, raw in zip(pids, raws, strict=True) if record]
    return "\n\n".join([head, cpu, *profiles])


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--kind", choices=("grpc", "rest", "bulk"), default="grpc")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--events", type=int, default=22_000)
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    parser.add_argument("--no-record", dest="record", action="store_false",
                        help="bulk: no py-spy (it takes a share of the 2 cores); the CPU table only")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="a setting of the suite (e.g. group_commit_lanes=1), repeatable")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    configure_logging("warning", "console")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    print(asyncio.run(main(args.kind, args.processes, args.events, args.native, args.record, overrides)))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
