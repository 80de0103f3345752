"""``python -m bench [--quick]``: start the suite, load data, measure each
connlog path against its baseline in the same run, write a Markdown + JSON
report (bench/results/) and, for a full run, docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import insights, measure, tail
from bench.data import Shape
from bench.harness import running_suite
from bench.report import markdown
from connlog.core.auth import create_key
from connlog.core.database import create_pool
from connlog.core.logging import configure_logging
from connlog.core.principal import Role
from connlog.store.accounts import AccountStore

ROOT = Path(__file__).resolve().parents[1]

MODES: dict[str, dict[str, Any]] = {
    # events per bulk run = tenants × networks × clients × events per client
    "quick": dict(shape=Shape(2, 2, 25, 1000, 7), repeats=2, unary=3000, samples=30, grow_to=300_000,
                  summaries=dict(calls=20, raw_calls=3, catch_up_timeout=120), read_capacity=500),
    "full": dict(shape=Shape(2, 5, 100, 1000, 14), repeats=3, unary=10000, samples=200, grow_to=10_000_000,
                 summaries=dict(calls=200, raw_calls=5, catch_up_timeout=1800), read_capacity=5000),
}
# The single-event loads run with each of these counts of ingest processes
# (sharing the ingest port: SO_REUSEPORT); everything else with one.
INGEST_PROCESSES = (1, 2)


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "platform": platform.platform()}


async def main(mode: str) -> dict[str, Any]:
    config = MODES[mode]
    shape: Shape = config["shape"]
    report: dict[str, Any] = {"mode": mode, "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": machine(), "data_shape": shape.describe()}
    began = time.perf_counter()
    async with running_suite(ingest_processes=max(INGEST_PROCESSES)) as suite:
        pool = await create_pool(suite.settings, suite.database_url, min_size=1, max_size=2)
        accounts = AccountStore(pool)
        tokens = [(await create_key(accounts, tenant_id=f"bench-{t}", role=Role.OPERATOR)).token
                  for t in range(shape.tenants)]
        device = (await create_key(accounts, tenant_id="bench-0", role=Role.DEVICE, device_id="bench-dev")).token
        await pool.close()
        conn = await asyncpg.connect(suite.database_url)
        report["postgres"] = await conn.fetchval("SHOW server_version")
        await conn.close()

        print(f"[bench] {mode}: {shape.describe()}", flush=True)
        suite.memory.stage = "bulk ingest"
        report["bulk_ingest"] = await measure.bulk_ingest(suite, shape, tokens, config["repeats"])
        print("[bench] bulk ingest done", flush=True)
        suite.memory.stage = "single-event ingest"
        report["single_event_ingest"] = await measure.single_event_ingest(suite, device, tokens[0], config["unary"],
                                                                          config["repeats"], INGEST_PROCESSES)
        print("[bench] single-event ingest done", flush=True)
        suite.memory.stage = "live tail"
        report["live_tail"] = await tail.measure(suite, watchers=100)
        print("[bench] live tail done", flush=True)
        suite.memory.stage = "reads"
        report["storage"] = await measure.stored(suite)
        await measure.analyze(suite)
        report["reads_small"] = await measure.reads(suite, shape, tokens[0], config["samples"], config["repeats"])
        print(f"[bench] reads at {report['storage']['events']:,} events done", flush=True)
        report["read_capacity"] = await measure.read_capacity(suite, shape, tokens[0], config["read_capacity"])
        print("[bench] read capacity done", flush=True)
        report["insights_small"] = await insights.summaries(suite, tokens[0], **config["summaries"])
        print(f"[bench] summaries at {report['storage']['events']:,} events done", flush=True)
        suite.memory.stage = "growing the store"
        await measure.grow(suite, config["grow_to"])
        suite.memory.stage = "reads"
        report["storage_large"] = await measure.stored(suite)
        report["reads_large"] = await measure.reads(suite, shape, tokens[0], config["samples"], config["repeats"])
        print(f"[bench] reads at {report['storage_large']['events']:,} events done", flush=True)
        report["insights_large"] = await insights.summaries(suite, tokens[0], **config["summaries"])
        report["insights_growth"] = insights.growth(report["insights_small"], report["insights_large"])
        print(f"[bench] summaries at {report['storage_large']['events']:,} events done", flush=True)
        report["growth_p50"] = {
            path: report["reads_large"][f"{path}_p50_ms"]["median"] / report["reads_small"][f"{path}_p50_ms"]["median"]
            for path in ("meraki", "grpc", "mojo")}
        report["peak_rss_mb"] = {name: rss / 2**20 for name, rss in suite.memory.peak.items()}
        report["peak_rss_stage"] = dict(suite.memory.peak_stage)
    report["seconds"] = time.perf_counter() - began
    return report


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (under 2 minutes)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md (full runs)")
    args = parser.parse_args()
    configure_logging("warning", "console")
    mode = "quick" if args.quick else "full"
    report = asyncio.run(main(mode))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = report["started"].replace(":", "").replace("-", "")[:15]
    (out / f"{mode}-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(report)
    (out / f"{mode}-{stamp}.md").write_text(text)
    (out / f"latest-{mode}.md").write_text(text)
    (out / f"latest-{mode}.json").write_text(json.dumps(report, indent=2, default=str))
    if mode == "full" and not args.no_docs:
        (ROOT / "docs" / "benchmarks.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
