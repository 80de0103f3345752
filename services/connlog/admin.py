"""Operator commands that talk to the database directly: migrations and keys."""

from __future__ import annotations

import argparse
import sys

from connlog.core.auth import NewKey, create_key, create_service_key
from connlog.core.database import create_pool, resolve_database_url, stop_embedded
from connlog.core.principal import Role
from connlog.core.settings import Settings
from connlog.shapes import registry
from connlog.store.accounts import AccountStore
from connlog.store.migrate import current_version, migrate
from connlog.store.partitions import maintain_partitions


async def db_command(settings: Settings, command: str) -> int:
    if command == "stop":
        stop_embedded(settings)
        return 0
    url = resolve_database_url(settings)
    if command == "url":
        print(url)
        return 0
    pool = await create_pool(settings, url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
            changes = await maintain_partitions(
                conn, retention_days=settings.retention_days, ahead_days=settings.partitions_ahead_days
            )
            version = await current_version(conn)
    finally:
        await pool.close()
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none"
    print(f"schema version {version}; applied now: {names}")
    print(f"partitions created: {len(changes.created)}, dropped: {len(changes.dropped)}")
    return 0


# The shapes a device key may write through: those whose servicer stores
# events (hosted by the ingest service).
DEVICE_SHAPES = tuple(shape.name for shape in registry.SHAPES if shape.host == registry.INGEST)


async def _create_key(accounts: AccountStore, args: argparse.Namespace) -> NewKey:
    role = Role(args.role)
    if role is Role.SYNC_SERVICE:
        if args.tenant or args.device_id or args.shape:
            raise ValueError("the sync service's key has no tenant, device or shape")
        return await create_service_key(accounts, description=args.description)
    if not args.tenant:
        raise ValueError(f"a {role.value} key needs --tenant")
    if args.shape is not None and args.shape not in DEVICE_SHAPES:
        raise ValueError(f"--shape: a device key writes through one of {', '.join(DEVICE_SHAPES)}")
    return await create_key(accounts, tenant_id=args.tenant, role=role, device_id=args.device_id,
                            description=args.description, shape=args.shape)


async def keys_command(settings: Settings, args: argparse.Namespace) -> int:
    pool = await create_pool(settings, resolve_database_url(settings), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        accounts = AccountStore(pool)
        if args.keys_command == "create":
            try:
                key = await _create_key(accounts, args)
            except ValueError as err:
                print(f"connlog keys create: {err}", file=sys.stderr)
                return 2
            print(key.token)
            print(f"key id {key.key_id}: store the key now, it is not shown again", file=sys.stderr)
            return 0
        if args.keys_command == "list":
            print(f"{'KEY ID':<18}{'TENANT':<20}{'ROLE':<15}{'DEVICE':<16}{'CREATED':<22}{'STATUS':<10}DESCRIPTION")
            for k in await accounts.list_keys(args.tenant):
                status = "revoked" if k.revoked_at else "active"
                device = f"{k.device_id} ({k.shape})" if k.device_id else "-"
                print(
                    f"{k.key_id:<18}{k.tenant_id or '-':<20}{k.role:<15}{device:<16}"
                    f"{k.created_at:%Y-%m-%d %H:%M:%S}   {status:<10}{k.description}"
                )
            return 0
        if args.keys_command == "revoke":
            if await accounts.revoke_key(args.key_id):
                print(f"revoked {args.key_id}")
                return 0
            print(f"connlog keys revoke: no active key {args.key_id}", file=sys.stderr)
            return 1
    finally:
        await pool.close()
    return 2
