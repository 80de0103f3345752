"""The benchmark report as Markdown."""

from __future__ import annotations

from bench import insights


def _stage(r: dict, name: str) -> str:
    stage = r.get("peak_rss_stage", {}).get(name)
    return f" ({stage})" if stage else ""


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _s(stat: dict, digits: int = 1) -> str:
    return f"{_f(stat['median'], digits)} ({_f(stat['min'], digits)}–{_f(stat['max'], digits)})"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _rollups_after_bulk(bulk: dict) -> str:
    """How long after a bulk load's last event the rollups held every event
    (each baseline waits for it: the fold would take the baseline's CPU)."""
    lag = bulk.get("rollups_caught_up_s")
    if not lag:
        return ""
    return (f"The rollups held every bulk-loaded event {_s(lag, 1)} s after the load's last event was stored "
            "(the rollup maintainer folds while connlog ingests; each COPY baseline starts after that). ")


def _single_event_generators(single: dict) -> str:
    if "grpc_generator_rps" not in single:  # a report of an older run
        return (f"The single-event load generator alone (64 aiohttp clients against Envoy's own 404) made "
                f"{_s(single['generator_rps'], 0)} requests/s. ")
    rest = "wrk (one thread, 64 connections)" if single.get("generator") == "wrk" else "2 aiohttp processes"
    return (
        f"The single-event load generators alone, against Envoy's own answers: REST from {rest} "
        f"{_s(single['generator_rps'], 0)} requests/s "
        f"({single['generator_rps']['median'] / single['rest_rps']['median']:.0f}× the REST rate), gRPC from "
        f"2 processes of 32 callers (4 channels each) {_s(single['grpc_generator_rps'], 0)} calls/s "
        f"({single['grpc_generator_rps']['median'] / single['grpc_rps']['median']:.0f}× the unary rate); their CPU "
        f"per request while connlog was measured: REST {_f(single['rest_generator_cpu_us']['median'], 0)} µs, gRPC "
        f"{_f(single['grpc_generator_cpu_us']['median'], 0)} µs, the baseline's asyncpg client "
        f"{_f(single['baseline_client_cpu_us']['median'], 0)} µs (the machine's 2 cores are shared by every "
        "process). Ingest processes beyond the first share the ingest port (SO_REUSEPORT); the kernel spreads "
        "connections over them, the calls each served are listed per run. "
    )


def markdown(r: dict) -> str:
    bulk, single = r["bulk_ingest"], r["single_event_ingest"]
    small, large = r["reads_small"], r["reads_large"]
    m = r["machine"]
    rss = r["peak_rss_mb"]
    lines = [
        "# Benchmarks",
        "",
        f"Run `{'python -m bench --quick' if r['mode'] == 'quick' else 'python -m bench'}` ({r['mode']} mode), "
        f"started {r['started']}, took {r['seconds'] / 60:.1f} min.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}; "
        f"PostgreSQL {r['postgres']} (embedded); {m['platform']}.",
        "",
        f"Data shape: {r['data_shape']} per bulk-ingest run; the store then holds "
        f"{r['storage']['events']:,} events for the first reads and {r['storage_large']['events']:,} for the second "
        "(grown by copying events under new networks and clients in SQL).",
        "",
        "Every figure is the median over the runs, with (min–max); each ratio compares connlog with a baseline "
        "measured in the same run.",
        "",
        "| what | connlog | baseline | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| bulk ingest, events/s | {_s(bulk['connlog_events_per_s'], 0)} (client-streaming gRPC) | "
        f"{_s(bulk['baseline_rows_per_s'], 0)} (asyncpg COPY + INSERT … ON CONFLICT) | "
        f"{_s(bulk['ratio'], 2)} | ≥ 0.6 | {_verdict(bulk['ratio']['median'] >= 0.6)} |",
        f"| single-event gRPC unary ingest, events/s | {_s(single['grpc_rps'], 0)} (64 callers, one event per call) | "
        f"{_s(single['baseline_rps'], 0)} (PostgreSQL single-row INSERT … ON CONFLICT, 64 asyncpg connections) | "
        f"{_s(single['grpc_baseline_ratio'], 2)} | ≥ 1.0 | "
        f"{_verdict(single['grpc_baseline_ratio']['median'] >= 1.0)} |",
        f"| single-event gRPC unary ingest, p50 / p99 ms | {_f(single['grpc_p50_ms']['median'])} / "
        f"{_f(single['grpc_p99_ms']['median'])} | {_f(single['baseline_p50_ms']['median'])} / "
        f"{_f(single['baseline_p99_ms']['median'])} | | p99 < 50 | {_verdict(single['grpc_p99_ms']['median'] < 50)} |",
        f"| single-event REST ingest, events/s | {_s(single['rest_rps'], 0)} (Zequenze POST via Envoy, 64 clients) | "
        f"{_s(single['baseline_rps'], 0)} (the same single-row baseline) | {_s(single['rest_baseline_ratio'], 2)} | "
        f"≥ 0.8 | {_verdict(single['rest_baseline_ratio']['median'] >= 0.8)} |",
        f"| single-event REST ingest, p50 / p99 ms | {_f(single['rest_p50_ms']['median'])} / "
        f"{_f(single['rest_p99_ms']['median'])} | | | p99 < 50 | {_verdict(single['rest_p99_ms']['median'] < 50)} |",
        f"| single-event REST / gRPC unary | | | {_s(single['ratio'], 2)} | | |",
    ]
    if "grpc_floor_rps" in single:  # (not in reports of older runs)
        lines.append(
            f"| the same unary load against a no-op IngestService (grpcio on uvloop, nothing done: the most one "
            f"grpcio server process serves here; `bench/floor.py`), calls/s (p99 ms) | "
            f"{_s(single['grpc_floor_rps'], 0)} ({_f(single['grpc_floor_p99_ms']['median'])}); connlog's unary rate "
            f"is {single['grpc_rps']['median'] / single['grpc_floor_rps']['median']:.2f} of it | the same baseline | "
            f"{_s(single['grpc_floor_baseline_ratio'], 2)} | (ceiling) | |")
    for count, by in sorted((single.get("ingest_processes") or {}).items(), key=lambda item: int(item[0])):
        if int(count) == 1:
            continue
        rest_split = ", ".join("/".join(str(n) for n in split) for split in by["rest_split"])
        grpc_split = ", ".join("/".join(str(n) for n in split) for split in by["grpc_split"])
        lines += [
            f"| single-event gRPC unary, {count} ingest processes on one port, events/s (p50 / p99 ms) | "
            f"{_s(by['grpc_rps'], 0)} ({_f(by['grpc_p50_ms']['median'])} / {_f(by['grpc_p99_ms']['median'])}); "
            f"calls per process {grpc_split} | the same baseline | {_s(by['grpc_baseline_ratio'], 2)} | ≥ 1.0 | "
            f"{_verdict(by['grpc_baseline_ratio']['median'] >= 1.0)} |",
            f"| single-event REST, {count} ingest processes on one port, events/s (p50 / p99 ms) | "
            f"{_s(by['rest_rps'], 0)} ({_f(by['rest_p50_ms']['median'])} / {_f(by['rest_p99_ms']['median'])}); "
            f"calls per process {rest_split} | the same baseline | {_s(by['rest_baseline_ratio'], 2)} | ≥ 0.8 | "
            f"{_verdict(by['rest_baseline_ratio']['median'] >= 0.8)} |",
        ]
    for label, data in ((f"{r['storage']['events']:,}", small), (f"{r['storage_large']['events']:,}", large)):
        lines += [
            f"| Meraki page of {int(data['events_per_page'])} via Envoy at {label} events, p50 / p99 ms | "
            f"{_f(data['meraki_p50_ms']['median'])} / {_f(data['meraki_p99_ms']['median'])} | "
            f"{_f(data['sql_meraki_p50_ms']['median'])} / {_f(data['sql_meraki_p99_ms']['median'])} (same SQL) | "
            f"{_s(data['meraki_ratio'], 2)} | p50 ≤ 5×, p99 < 50 | "
            f"{_verdict(data['meraki_ratio']['median'] <= 5 and data['meraki_p99_ms']['median'] < 50)} |",
            f"| canonical gRPC list of 1000 at {label} events, p50 / p99 ms | "
            f"{_f(data['grpc_p50_ms']['median'])} / {_f(data['grpc_p99_ms']['median'])} | same SQL | "
            f"{_s(data['grpc_ratio'], 2)} | p50 ≤ 5× | {_verdict(data['grpc_ratio']['median'] <= 5)} |",
            f"| Mojo limit=1000 via Envoy at {label} events, p50 / p99 ms | "
            f"{_f(data['mojo_p50_ms']['median'])} / {_f(data['mojo_p99_ms']['median'])} | "
            f"{_f(data['sql_mojo_p50_ms']['median'])} / {_f(data['sql_mojo_p99_ms']['median'])} (same SQL) | "
            f"{_s(data['mojo_ratio'], 2)} | p50 ≤ 5× | {_verdict(data['mojo_ratio']['median'] <= 5)} |",
        ]
    lines += insights.markdown_rows(r)
    capacity = r.get("read_capacity")
    if capacity:
        lines += [
            f"| read capacity of one query process: canonical gRPC lists of a client's latest "
            f"{capacity['page_size']} events, {capacity['concurrency']} callers, {capacity['requests']:,} reads | "
            f"{_f(capacity['reads_per_s'], 0)} reads/s ({_f(capacity['events_per_s'], 0)} events/s); "
            f"{_f(capacity['reads_per_cpu_s'], 0)} reads per CPU-second of the query process | | | "
            "(capacity guide) | |",
        ]
    live = r.get("live_tail")
    if live:
        latency, rates = live["delivery_latency_ms"], live["ingest_events_per_s"]
        watchers = live["watchers"]
        lines += [
            f"| live tail: acknowledgement to receipt, {watchers} watchers, p50 / p99 / max ms | "
            f"{_f(latency['p50'])} / {_f(latency['p99'])} / {_f(latency['max'])} ({latency['pairs']:,} event-watcher "
            f"pairs; every event delivered: {latency['every_event_delivered']}) | | | within 1 s | "
            f"{_verdict(latency['max'] < 1000 and latency['every_event_delivered'])} |",
            f"| ingest events/s with {watchers} open watches receiving none of the load / without | "
            f"{rates[f'with_{watchers}_idle_watchers']:,} / {rates['without_watchers']:,} | | "
            f"{_f(rates['idle_ratio'], 2)} | unchanged by watches | {_verdict(rates['idle_ratio'] >= 0.9)} |",
            f"| ingest events/s with {watchers} watches receiving 1% of the load / without | "
            f"{rates[f'with_{watchers}_watchers']:,} / {rates['without_watchers']:,}; watches with every event "
            f"{rates['watchers_with_every_event']}, dropped {rates['watchers_dropped']} | | "
            f"{_f(rates['ratio'], 2)} | (delivering: CPU shared on this machine) | |",
        ]
    growth = r["growth_p50"]
    lines += [
        f"| read p50 growth, small → large store | Meraki {_f(growth['meraki'], 2)}×, gRPC {_f(growth['grpc'], 2)}×, "
        f"Mojo {_f(growth['mojo'], 2)}× | | | < 1.5× | {_verdict(max(growth.values()) < 1.5)} |",
        "| peak RSS, MB (the stage it was reached in) | "
        + ", ".join(f"{name} {_f(rss.get(name, 0), 0)}{_stage(r, name)}" for name in ("ingest", "query", "envoy"))
        + f" | | | < 250 each | {_verdict(max(rss.values()) < 250)} |",
        f"| storage, bytes/event (table + indexes) | {_f(r['storage']['bytes_per_event'], 0)} at "
        f"{r['storage']['events']:,}; {_f(r['storage_large']['bytes_per_event'], 0)} at "
        f"{r['storage_large']['events']:,} | | | < 600 | {_verdict(r['storage_large']['bytes_per_event'] < 600)} |",
        "",
        f"The load generator alone (building and serializing the same requests, one process per tenant) made "
        f"{_s(bulk['generator_events_per_s'], 0)} events/s, "
        f"{bulk['generator_events_per_s']['median'] / bulk['connlog_events_per_s']['median']:.1f}× what connlog "
        "ingested, so it was not the bottleneck. "
        + _rollups_after_bulk(bulk)
        + _single_event_generators(single)
        + f"Each single-event load sends {single.get('events_per_run', 0):,} events per run; "
        "the single-row baseline inserts the same events, normalised as connlog stores them, into a copy of the "
        "schema (same indexes) in a second database of the same server. Read loads run in their own process. "
        "After each load the table is vacuumed and "
        "analyzed (`VACUUM (ANALYZE)`), as autovacuum soon would.",
        "",
        "What each optimisation bought, the profiles, and why the targets still missed are out of reach on this "
        "machine: [performance.md](performance.md).",
        "",
    ]
    return "\n".join(lines)
