"""The benchmark's data shape: deterministic, realistic events."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from connlog.api.v1 import connection_event_pb2 as pb

STEPS = [s for s in pb.ConnectionStep.values() if s]


@dataclass(frozen=True)
class Shape:
    """How the generated data looks."""

    tenants: int
    networks_per_tenant: int
    clients_per_network: int
    events_per_client: int
    days: float

    @property
    def total(self) -> int:
        return self.tenants * self.networks_per_tenant * self.clients_per_network * self.events_per_client

    def describe(self) -> str:
        return (f"{self.tenants} tenant(s) × {self.networks_per_tenant} network(s) × {self.clients_per_network} "
                f"clients × {self.events_per_client} events over {self.days:g} day(s) = {self.total:,} events")


def client_mac(tenant: int, network: int, client: int) -> str:
    n = (tenant << 24) | (network << 16) | client
    return f"02:{(n >> 32) & 255:02x}:{(n >> 24) & 255:02x}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"


def network_id(network: int, generation: int = 0) -> str:
    return f"N_bench{generation}_{network}"


def events_for(shape: Shape, tenant: int, network: int, client: int, *, end: dt.datetime,
               generation: int = 0) -> list[pb.ConnectionEvent]:
    """One client's events, spread over the shape's days up to ``end``."""
    rng = random.Random((tenant, network, client, generation).__hash__())
    span = shape.days * 86400
    step = span / shape.events_per_client
    start = end - dt.timedelta(seconds=span)
    mac = client_mac(tenant, network, client)
    out = []
    for i in range(shape.events_per_client):
        when = start + dt.timedelta(seconds=i * step + rng.random() * step * 0.5)
        failed = rng.random() < 0.15
        event = pb.ConnectionEvent(
            network_id=network_id(network, generation),
            client=pb.Client(client_id=f"k{tenant:02x}{network:02x}{client:04x}", mac_address=mac,
                             ip_address=f"10.{network}.{client >> 8 & 255}.{client & 255}"),
            step=rng.choice(STEPS),
            outcome=pb.OUTCOME_FAILURE if failed else pb.OUTCOME_SUCCESS,
            severity=pb.SEVERITY_BAD if failed else rng.choice([pb.SEVERITY_GOOD, pb.SEVERITY_INFO]),
            subtype="failure" if failed else "success",
            source=pb.Source(vendor=pb.VENDOR_MERAKI),
            radio=pb.Radio(band=pb.BAND_5_GHZ, channel=rng.choice([36, 44, 149]), quality_metric=pb.QUALITY_METRIC_RSSI,
                           quality_value=float(rng.randint(-85, -40))),
            wlan=pb.Wlan(ssid="Corp", ssid_number=0, bssid=f"00:11:22:33:{network & 255:02x}:{rng.randrange(8):02x}"),
            access_point=pb.AccessPoint(name=f"AP-{rng.randrange(8)}",
                                        serial=f"Q2AB-{network:04d}-{rng.randrange(8):04d}"),
        )
        event.occur_time.FromDatetime(when)
        event.timing.duration.FromMilliseconds(rng.randint(1, 900))
        if failed:
            event.failure.code = rng.choice([2, 5, 8, 10, 12])
            event.failure.reason = "EAPOL Handshake Failure"
        out.append(event)
    return out


def all_events(shape: Shape, *, end: dt.datetime, part: int = 0, parts: int = 1, generation: int = 0):
    """Yield every event of the shape (or one of ``parts`` slices), client by client."""
    index = 0
    for tenant in range(shape.tenants):
        for network in range(shape.networks_per_tenant):
            for client in range(shape.clients_per_network):
                if index % parts == part:
                    yield from events_for(shape, tenant, network, client, end=end, generation=generation)
                index += 1
