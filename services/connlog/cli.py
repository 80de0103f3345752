"""The ``connlog`` command."""

from __future__ import annotations

import argparse
import sys

from connlog.core import event_loop
from connlog.core.logging import configure_logging
from connlog.core.settings import Settings
from connlog.shapes.registry import SYNCED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connlog", description="WiFi and network client connection events.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="start the whole suite (database, migrations, services)")

    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=["ingest", "query", "vendor-sync", "gateway"])

    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending migrations and maintain partitions")
    db_sub.add_parser("url", help="print the database URL (starting the embedded server if needed)")
    db_sub.add_parser("stop", help="stop the embedded database server")

    retention = sub.add_parser("retention", help="partition upkeep: days created ahead, expired days dropped")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    retention_run = retention_sub.add_parser(
        "run", help="run retention now, then every CONNLOG_PARTITION_MAINTENANCE_SECONDS until stopped"
    )
    retention_run.add_argument("--once", action="store_true", help="one run, then exit (a CronJob's)")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--tenant", help="tenant (organisation) id; created if new (every role but sync_service)")
    create.add_argument(
        "--role", required=True,
        choices=["viewer", "operator", "administrator", "super_user", "device", "sync_service"],
        help="sync_service: the vendor-sync service's own key (no tenant; CONNLOG_SYNC_SERVICE_KEY)",
    )
    create.add_argument("--device-id", help="the device a device key belongs to")
    create.add_argument("--shape", help="the REST shape a device key writes through (default: zequenze)")
    create.add_argument("--description", default="")
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")

    sources = sub.add_parser("sources", help="manage vendor sync sources (through the vendor-sync service)")
    sources.add_argument("--address", help="vendor-sync service address (default: from settings)")
    sources.add_argument("--key", help="API key (default: $CONNLOG_API_KEY, else the key of 'connlog up')")
    src_sub = sources.add_subparsers(dest="sources_command", required=True)
    src_create = src_sub.add_parser("create", aliases=["add"], help="create a source")
    src_create.add_argument("--vendor", required=True, choices=[shape.name for shape in SYNCED.values()])
    src_create.add_argument("--base-url", required=True)
    src_create.add_argument("--credential", required=True, help="Meraki API key, or Mojo keyId:keyValue")
    src_create.add_argument("--network", required=True, help="connlog network the events go to")
    src_create.add_argument("--vendor-network", default="", help="Meraki network to read (default: --network)")
    src_create.add_argument("--client", action="append", default=[],
                            help="client id or MAC (repeatable); Meraki without any: every client of the network")
    src_create.add_argument("--discover", action="store_true",
                            help="Meraki: also follow every client of the network, discovered")
    src_create.add_argument("--interval", type=float, default=60.0, help="poll interval, seconds")
    src_create.add_argument("--rate", type=float, default=0.0, help="requests/s towards the vendor (0: default)")
    src_create.add_argument("--organization", default="", help="Meraki organisation (shares its rate budget)")
    src_create.add_argument("--client-identifier", default="", help="Mojo client identifier")
    src_create.add_argument("--name", default="")
    src_sub.add_parser("list", help="list sources")
    for verb in ("get", "status", "run", "delete", "pause", "resume"):
        one = src_sub.add_parser(verb, help=f"{verb} a source")
        one.add_argument("source", help="syncSources/<id> or <id>")
    src_cred = src_sub.add_parser("set-credential", help="replace a source's credential")
    src_cred.add_argument("source")
    src_cred.add_argument("credential")

    secrets = sub.add_parser("secrets", help="the keys vendor credentials are sealed with (docs/operations.md)")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True)
    secrets_sub.add_parser("new-key", help="print a fresh sealing key (base64 of 32 random bytes)")
    secrets_sub.add_parser(
        "rotate", help="re-seal every stored credential with the first key of CONNLOG_SECRET_KEYS(_FILE)")

    demo = sub.add_parser("demo", help="load realistic sample data through the ingest service")
    demo.add_argument("--address", help="ingest service address (default: from settings)")
    demo.add_argument("--days", type=int, default=5)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return event_loop.run(_dispatch(args, settings), settings.event_loop) or 0
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "up":
        from connlog.suite import run_suite

        return await run_suite(settings)
    if args.command == "serve":
        if args.service == "gateway":
            from connlog.gateway.process import exec_envoy

            exec_envoy(settings)  # replaces this process
        if args.service == "ingest":
            from connlog.ingest.main import run
        elif args.service == "vendor-sync":
            from connlog.vendorsync.main import run
        else:
            from connlog.query.main import run
        from connlog.core.server import tune_garbage_collector, young_threshold

        tune_garbage_collector(young_threshold(args.service))
        await run(settings)
        return 0
    if args.command == "db":
        from connlog import admin

        return await admin.db_command(settings, args.db_command)
    if args.command == "retention":
        from connlog.store.retention import retention_command

        return await retention_command(settings, once=args.once)
    if args.command == "keys":
        from connlog import admin

        return await admin.keys_command(settings, args)
    if args.command == "sources":
        from connlog.vendorsync.cli import sources_command

        return await sources_command(settings, args)
    if args.command == "secrets":
        from connlog.vendorsync.cli import secrets_command

        return await secrets_command(settings, args.secrets_command)
    if args.command == "demo":
        from connlog.demo import run_demo

        return await run_demo(settings, address=args.address, days=args.days, seed=args.seed)
    print(f"unknown command {args.command}", file=sys.stderr)
    return 2
