"""Calls on the vendor-sync service (as a tenant's administrator)."""

from __future__ import annotations

from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as spb_grpc
from tests.support.services import Tenant


async def create(sync: spb_grpc.VendorSyncServiceStub, tenant: Tenant, source: spb.SyncSource) -> spb.SyncSource:
    return await sync.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=source),
                                       metadata=tenant.md("administrator"))


async def run(
    sync: spb_grpc.VendorSyncServiceStub, tenant: Tenant, source: spb.SyncSource
) -> spb.SyncSourceStatus:
    """Run ``source`` now, waiting for the run; its status."""
    reply = await sync.RunSyncSource(spb.RunSyncSourceRequest(name=source.name, wait=True),
                                     metadata=tenant.md("administrator"))
    return reply.status
