"""``connlog sources ...``: manage sync sources through the vendor-sync
service; ``connlog secrets ...``: the keys their credentials are sealed with."""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as sync_pb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sync_grpc
from connlog.core.database import create_pool, resolve_database_url
from connlog.core.sealing import Sealer, SealingKeyError, new_key
from connlog.core.settings import Settings
from connlog.shapes.registry import SHAPES_BY_NAME
from connlog.store.migrate import migrate
from connlog.store.sync import SyncStore
from connlog.vendorsync.credentials import ResealRefused, reseal_all


def _key(settings: Settings, args: argparse.Namespace) -> str:
    if args.key:
        return args.key
    if os.environ.get("CONNLOG_API_KEY"):
        return os.environ["CONNLOG_API_KEY"]
    key_file = settings.data_dir / "admin.key"
    if key_file.exists():
        return key_file.read_text().strip()
    raise SystemExit("connlog sources: no API key (use --key or CONNLOG_API_KEY)")


def _name(source: str) -> str:
    return source if source.startswith("syncSources/") else f"syncSources/{source}"


async def sources_command(settings: Settings, args: argparse.Namespace) -> int:
    address = args.address or f"127.0.0.1:{settings.vendor_sync_port}"
    metadata = (("authorization", f"Bearer {_key(settings, args)}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = sync_grpc.VendorSyncServiceStub(channel)
        try:
            return await _run(stub, args, metadata)
        except grpc.aio.AioRpcError as err:
            print(f"connlog sources: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1


def _print(message: Message) -> None:
    print(MessageToJson(message, indent=2))


async def _run(
    stub: sync_grpc.VendorSyncServiceStub, args: argparse.Namespace, metadata: tuple[tuple[str, str], ...]
) -> int:
    command = args.sources_command
    if command in ("create", "add"):
        source = sync_pb.SyncSource(
            display_name=args.name,
            vendor=SHAPES_BY_NAME[args.vendor].vendor,
            base_url=args.base_url,
            credential=args.credential,
            network_id=args.network,
            vendor_network_id=args.vendor_network,
            clients=args.client,
            rate_limit_per_second=args.rate,
            organization_id=args.organization,
            client_identifier=args.client_identifier,
            discover_clients=args.discover,
        )
        source.poll_interval.FromMilliseconds(int(args.interval * 1000))
        _print(await stub.CreateSyncSource(sync_pb.CreateSyncSourceRequest(sync_source=source), metadata=metadata))
    elif command == "list":
        token = ""
        while True:
            page = await stub.ListSyncSources(sync_pb.ListSyncSourcesRequest(page_token=token), metadata=metadata)
            for source in page.sync_sources:
                print(f"{source.name}  {pb.Vendor.Name(source.vendor):<15} {source.base_url}  "
                      f"network {source.network_id}  clients {len(source.clients)}"
                      f"{' + discovered' if source.discover_clients or not source.clients else ''}  "
                      f"{'enabled' if source.enabled else 'paused'}")
            token = page.next_page_token
            if not token:
                break
    elif command == "get":
        _print(await stub.GetSyncSource(sync_pb.GetSyncSourceRequest(name=_name(args.source)), metadata=metadata))
    elif command == "status":
        _print(await stub.GetSyncSourceStatus(
            sync_pb.GetSyncSourceStatusRequest(name=_name(args.source) + "/status"), metadata=metadata))
    elif command == "run":
        _print(await stub.RunSyncSource(sync_pb.RunSyncSourceRequest(name=_name(args.source), wait=True),
                                        metadata=metadata))
    elif command == "delete":
        await stub.DeleteSyncSource(sync_pb.DeleteSyncSourceRequest(name=_name(args.source)), metadata=metadata)
        print(f"deleted {_name(args.source)}")
    elif command in ("pause", "resume", "set-credential"):
        source = sync_pb.SyncSource(name=_name(args.source))
        if command == "set-credential":
            source.credential, path = args.credential, "credential"
        else:
            source.enabled, path = command == "resume", "enabled"
        _print(await stub.UpdateSyncSource(
            sync_pb.UpdateSyncSourceRequest(sync_source=source, update_mask=field_mask_pb2.FieldMask(paths=[path])),
            metadata=metadata))
    return 0


async def secrets_command(settings: Settings, command: str) -> int:
    """``new-key``: print a fresh sealing key. ``rotate``: re-seal every
    stored credential with the first configured key (and seal any left in
    clear), in one transaction; refuses, changing nothing, if one opens with
    none of the keys."""
    if command == "new-key":
        print(new_key())
        return 0
    try:
        sealer = Sealer.from_settings(settings)
    except SealingKeyError as err:
        print(f"connlog secrets {command}: {err}", file=sys.stderr)
        return 2
    if not sealer.can_seal:
        print(f"connlog secrets {command}: no sealing key configured: set CONNLOG_SECRET_KEYS or "
              "CONNLOG_SECRET_KEYS_FILE", file=sys.stderr)
        return 2
    pool = await create_pool(settings, resolve_database_url(settings), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        try:
            report = await reseal_all(SyncStore(pool), sealer, rotate=True)
        except ResealRefused as err:
            print(f"connlog secrets rotate: nothing changed: {err}; configure the key it was sealed with "
                  "(after the new one) and run again", file=sys.stderr)
            return 1
    finally:
        await pool.close()
    key_id = sealer.sealing_key_id.hex() if sealer.sealing_key_id else ""
    print(f"credentials now sealed with key id {key_id}: {report}")
    return 0
