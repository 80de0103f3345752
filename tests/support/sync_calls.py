"""Calls on the vendor-sync service (as a tenant's administrator)."""

from __future__ import annotations

from connlog.api.v1 import vendor_sync_service_pb2 as spb


async def create(sync, tenant, source):
    return await sync.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=source),
                                       metadata=tenant.md("administrator"))


async def run(sync, tenant, source):
    """Run ``source`` now, waiting for the run; its status."""
    reply = await sync.RunSyncSource(spb.RunSyncSourceRequest(name=source.name, wait=True),
                                     metadata=tenant.md("administrator"))
    return reply.status
