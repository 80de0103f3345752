"""Who may write what, event by event (connlog.ingest.normalise): a device
key only its own device's events of its shape's vendor; the sync service's
key only events of the sync source its call names (tenant, vendor, network);
and the key registry of device shapes agrees with the shapes registry."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.principal import Principal, Role, SourceScope
from connlog.ingest import normalise as nm
from connlog.ingest.normalise import FieldError
from connlog.shapes import registry
from tests.support.factories import now, simple_event

DEVICE = Principal("k1", "t1", 1, Role.DEVICE, "dev-1", "zequenze")
SCOPE = SourceScope("src-1", 7, "t7", pb.VENDOR_MERAKI, "N_7", True)
SERVICE = Principal("k2", "", 0, Role.SYNC_SERVICE, None)
SYNC = SERVICE.for_source(SCOPE)

Mutation = Callable[[pb.ConnectionEvent], None]


def device_event() -> pb.ConnectionEvent:
    event = simple_event("devices", client_id="dev-1", when=now() - dt.timedelta(minutes=5),
                         source=pb.Source(vendor=pb.VENDOR_ZEQUENZE))
    event.client.reporting_device_id = "dev-1"
    event.vendor_record.CopyFrom(pb.VendorRecord(content_type="application/json", data='{"device": "dev-1"}'))
    return event


def sync_event() -> pb.ConnectionEvent:
    return simple_event("N_7", when=now() - dt.timedelta(minutes=5), source=pb.Source(vendor=pb.VENDOR_MERAKI))


def normalise(event: pb.ConnectionEvent, principal: Principal) -> nm.StoredEvent:
    window = nm.IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    return nm.normalise(event, principal, window)


def setter(path: str, value: object) -> Mutation:
    def apply(event: pb.ConnectionEvent) -> None:
        *parents, name = path.split(".")
        target = event
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return apply


def meraki_record(event: pb.ConnectionEvent) -> None:
    event.source.vendor = pb.VENDOR_MERAKI
    event.vendor_record.data = json.dumps({"type": "assoc", "deviceSerial": "Q2"})


REFUSED: list[tuple[str, Principal, Callable[[], pb.ConnectionEvent], Mutation, str]] = [
    ("device: another client", DEVICE, device_event, setter("client.client_id", "dev-2"), "client.client_id"),
    ("device: no client id (a MAC only)", DEVICE, device_event, setter("client.client_id", ""), "client.client_id"),
    ("device: another reporting device", DEVICE, device_event, setter("client.reporting_device_id", "dev-2"),
     "client.reporting_device_id"),
    ("device: another vendor's record", DEVICE, device_event, meraki_record, "source.vendor"),
    ("device: no vendor (connlog's)", DEVICE, device_event, setter("source.vendor", pb.VENDOR_UNSPECIFIED),
     "source.vendor"),
    ("device: another tenant", DEVICE, device_event, setter("tenant_id", "t2"), "tenant_id"),
    ("device key of an unknown shape", Principal("k1", "t1", 1, Role.DEVICE, "dev-1", "other"), device_event,
     lambda e: None, "source.vendor"),
    ("sync: another network", SYNC, sync_event, setter("network_id", "N_8"), "network_id"),
    ("sync: another vendor", SYNC, sync_event, setter("source.vendor", pb.VENDOR_MOJO), "source.vendor"),
    ("sync: no vendor (connlog's)", SYNC, sync_event, setter("source.vendor", pb.VENDOR_UNSPECIFIED),
     "source.vendor"),
    ("sync: another tenant", SYNC, sync_event, setter("tenant_id", "t1"), "tenant_id"),
    ("sync: no source named", SERVICE, sync_event, lambda e: None, "tenant_id"),
]


@pytest.mark.parametrize(("principal", "make", "mutate", "field"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_writes_outside_the_keys_scope_are_refused(
    principal: Principal, make: Callable[[], pb.ConnectionEvent], mutate: Mutation, field: str
) -> None:
    event = make()
    mutate(event)
    with pytest.raises(FieldError) as err:
        normalise(event, principal)
    assert err.value.field == field


@pytest.mark.parametrize(("principal", "make"), [(DEVICE, device_event), (SYNC, sync_event)], ids=["device", "sync"])
def test_writes_inside_the_keys_scope_are_accepted(
    principal: Principal, make: Callable[[], pb.ConnectionEvent]
) -> None:
    stored = normalise(make(), principal)
    assert stored.vendor == (pb.VENDOR_ZEQUENZE if principal is DEVICE else pb.VENDOR_MERAKI)


def test_a_sync_scope_is_its_sources_tenant() -> None:
    assert (SYNC.tenant_id, SYNC.tenant_ref, SYNC.source) == ("t7", 7, SCOPE)
    with pytest.raises(ValueError):
        DEVICE.for_source(SCOPE)


def test_device_shapes_are_the_ingest_shapes_of_the_registry() -> None:
    ingest_shapes = {shape.name: shape.vendor for shape in registry.SHAPES if shape.host == registry.INGEST}
    assert nm.DEVICE_SHAPE_VENDORS == ingest_shapes
