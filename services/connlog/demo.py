"""``connlog demo``: realistic sample data, loaded through the ingest service.

Three tenants, each with a few networks, access points and a few dozen
clients, over the last ``days`` days: every connection step, successes and
every kind of failure, roams between APs, and the vendor documentation's own
sample records (Mojo logs, the Meraki example event). Storage keeps only the
retention window, so the samples' times are moved to the start of the current
UTC day (the rest of each record is untouched); loading twice on the same day
stores them once.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources

import grpc

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.auth import create_key
from connlog.core.database import create_pool, resolve_database_url
from connlog.core.principal import Role
from connlog.core.settings import Settings
from connlog.shapes.meraki import records as meraki
from connlog.shapes.mojo import records as mojo
from connlog.store.accounts import AccountStore

TENANTS = {
    "acme-retail": ("Acme Retail", ["N_784752235069315754", "L_646829496481105433"]),
    "globex-campus": ("Globex Campus", ["N_123456789012345678", "N_223456789012345678", "N_323456789012345678"]),
    "initech-hq": ("Initech HQ", ["N_923456789012345678"]),
}
SSIDS = [("Corp", 0), ("Guest", 1), ("IoT", 3)]
# (step, outcome, severity, subtype, failure code, failure, sub code, sub failure)
FAILURES = [
    (pb.CONNECTION_STEP_AUTHENTICATION, 8, "EAPOL Handshake Failure", 41, "Maximum retries for 3/4 msg reached."),
    (pb.CONNECTION_STEP_AUTHENTICATION, 8, "EAPOL Handshake Failure", 40, "Maximum retries for 1/4 msg reached."),
    (pb.CONNECTION_STEP_AUTHENTICATION, 5, "802.1X Authentication Failure", 21, "RADIUS server rejected the client."),
    (pb.CONNECTION_STEP_AUTHENTICATION, 5, "802.1X Authentication Failure", 22, "RADIUS server did not respond."),
    (pb.CONNECTION_STEP_ASSOCIATION, 2, "Association Failure", 11, "AP rejected association: too many clients."),
    (pb.CONNECTION_STEP_ASSOCIATION, 2, "Association Failure", 12, "Unsupported data rates."),
    (pb.CONNECTION_STEP_DHCP, 10, "DHCP Failure", 61, "No DHCP offer received."),
    (pb.CONNECTION_STEP_DHCP, 10, "DHCP Failure", 62, "DHCP address pool exhausted."),
    (pb.CONNECTION_STEP_DNS, 12, "DNS Failure", 71, "DNS server did not respond."),
    (pb.CONNECTION_STEP_DEAUTHENTICATION, 14, "Deauthenticated", 81, "Client idle timeout."),
]
SUCCESS_STEPS = [pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP,
                 pb.CONNECTION_STEP_DNS, pb.CONNECTION_STEP_CONNECTION]
SUBTYPES = {pb.CONNECTION_STEP_ASSOCIATION: "association", pb.CONNECTION_STEP_AUTHENTICATION: "wpa_auth",
            pb.CONNECTION_STEP_DHCP: "dhcp_ack", pb.CONNECTION_STEP_DNS: "dns_response",
            pb.CONNECTION_STEP_CONNECTION: "connected", pb.CONNECTION_STEP_ROAM: "fast_roam",
            pb.CONNECTION_STEP_DISASSOCIATION: "client_leaving", pb.CONNECTION_STEP_STICKY: "band_steer",
            pb.CONNECTION_STEP_DEAUTHENTICATION: "deauth"}


@dataclass
class AccessPointInfo:
    name: str
    serial: str
    bssid: str
    channel: int
    band: pb.Band


def _mac(rng: random.Random) -> str:
    octets = [rng.randrange(256) for _ in range(6)]
    octets[0] = octets[0] & 0xFC | 0x02  # locally administered, unicast
    return ":".join(f"{o:02x}" for o in octets)


def _access_points(rng: random.Random, count: int) -> list[AccessPointInfo]:
    aps: list[AccessPointInfo] = []
    for i in range(count):
        band = rng.choice([pb.BAND_2_4_GHZ, pb.BAND_5_GHZ, pb.BAND_5_GHZ, pb.BAND_6_GHZ])
        channel = {pb.BAND_2_4_GHZ: rng.choice([1, 6, 11]), pb.BAND_5_GHZ: rng.choice([36, 44, 149, 157]),
                   pb.BAND_6_GHZ: rng.choice([5, 37, 69])}[band]
        serial = "Q2" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2))
        serial += "-" + "".join(rng.choice("0123456789ABCDEF") for _ in range(4))
        serial += "-" + "".join(rng.choice("0123456789ABCDEF") for _ in range(4))
        aps.append(AccessPointInfo(f"AP-{i + 1:02d}-Floor{i // 3 + 1}", serial, _mac(rng), channel, band))
    return aps


def generate(tenant_id: str, networks: list[str], *, days: int, rng: random.Random,
             end: dt.datetime) -> list[pb.ConnectionEvent]:
    """Synthetic but realistic events of one tenant."""
    events: list[pb.ConnectionEvent] = []
    start = end - dt.timedelta(days=days)
    for network in networks:
        aps = _access_points(rng, rng.randint(4, 8))
        clients = [(f"k{rng.randrange(16**6):06x}", _mac(rng),
                    f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
                   for _ in range(rng.randint(20, 40))]
        for client_id, mac, ip in clients:
            when = start + dt.timedelta(seconds=rng.randrange(3600))
            ap = rng.choice(aps)
            ssid, ssid_number = rng.choice(SSIDS)
            while when < end:
                failed = rng.random() < 0.18
                if failed:
                    step, code, reason, sub_code, sub_reason = rng.choice(FAILURES)
                    outcome, severity = pb.OUTCOME_FAILURE, pb.SEVERITY_BAD
                else:
                    step = rng.choice(SUCCESS_STEPS + [pb.CONNECTION_STEP_ROAM, pb.CONNECTION_STEP_STICKY,
                                                       pb.CONNECTION_STEP_DISASSOCIATION])
                    informational = step in (pb.CONNECTION_STEP_STICKY, pb.CONNECTION_STEP_DISASSOCIATION)
                    outcome = pb.OUTCOME_INFORMATIONAL if informational else pb.OUTCOME_SUCCESS
                    severity = pb.SEVERITY_INFO if outcome == pb.OUTCOME_INFORMATIONAL else pb.SEVERITY_GOOD
                    if step == pb.CONNECTION_STEP_ROAM:
                        ap = rng.choice(aps)
                        severity = rng.choice([pb.SEVERITY_GOOD, pb.SEVERITY_WARN])
                event = pb.ConnectionEvent(
                    network_id=network,
                    client=pb.Client(client_id=client_id, mac_address=mac, ip_address=ip),
                    step=step, subtype=SUBTYPES[step] if not failed else "failure", outcome=outcome, severity=severity,
                    radio=pb.Radio(band=ap.band, channel=ap.channel, protocol=rng.choice(["N", "AC", "AX"]),
                                   quality_metric=pb.QUALITY_METRIC_RSSI, quality_value=float(rng.randint(-85, -40)),
                                   link_speed_mbps=float(rng.choice([72, 144, 300, 433, 866, 1201]))),
                    wlan=pb.Wlan(ssid=ssid, ssid_number=ssid_number, bssid=ap.bssid),
                    access_point=pb.AccessPoint(name=ap.name, serial=ap.serial),
                    source=pb.Source(vendor=rng.choice([pb.VENDOR_MERAKI, pb.VENDOR_MOJO, pb.VENDOR_CONNLOG])),
                )
                event.occur_time.FromDatetime(when)
                event.timing.duration.FromMilliseconds(rng.randint(2, 900))
                if failed:
                    event.failure.code, event.failure.reason = code, reason
                    event.failure.sub_code, event.failure.sub_reason = sub_code, sub_reason
                elif step == pb.CONNECTION_STEP_CONNECTION:
                    event.timing.dhcp_latency.FromMilliseconds(rng.randint(5, 400))
                    event.timing.dns_latency.FromMilliseconds(rng.randint(2, 120))
                    event.timing.aaa_latency.FromMilliseconds(rng.randint(10, 300))
                events.append(event)
                when += dt.timedelta(seconds=rng.randint(60, 3 * 3600))
    return events


def seed_samples(day_start: dt.datetime, network_id: str) -> list[pb.ConnectionEvent]:
    """The vendor documentation's sample records, moved to ``day_start``."""
    samples = resources.files("connlog.devtools").joinpath("samples")
    logs = json.loads(samples.joinpath("mojo_connectionlogs.json").read_text())
    newest = max(log["timestamp"] for entries in logs.values() for log in entries)
    shift = int(day_start.timestamp()) - newest
    events: list[pb.ConnectionEvent] = []
    for entries in logs.values():
        for log in entries:
            log["timestamp"] += shift
            for key in ("associationTimestamp", "authenticationTimestamp", "networkTimestamp"):
                log[key] += shift * 1000
            events.append(mojo.to_event(log, network_id=network_id))
    for record in json.loads(samples.joinpath("meraki_connectivity_events.json").read_text()):
        record = dict(record, occurredAt=day_start.strftime("%Y-%m-%dT%H:%M:%S.") + record["occurredAt"][20:])
        events.append(meraki.to_event(record, network_id=network_id, client_id="k74272e",
                                      mac_address="f0:d7:aa:df:59:a2"))
    return events


async def run_demo(settings: Settings, *, address: str | None, days: int, seed: int) -> int:
    address = address or f"{settings.host}:{settings.ingest_port}"
    pool = await create_pool(settings, resolve_database_url(settings), min_size=1, max_size=2)
    try:
        accounts = AccountStore(pool)
        keys = {}
        for tenant_id, (name, _networks) in TENANTS.items():
            await accounts.ensure_tenant(tenant_id, name)
            keys[tenant_id] = (await create_key(accounts, tenant_id=tenant_id, role=Role.OPERATOR,
                                                description="connlog demo")).token
    finally:
        await pool.close()
    now = dt.datetime.now(dt.UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        for tenant_id, (name, networks) in TENANTS.items():
            events = generate(tenant_id, networks, days=min(days, settings.retention_days), rng=rng, end=now)
            events += seed_samples(day_start, networks[0])

            async def batches(
                events: list[pb.ConnectionEvent] = events,
            ) -> AsyncIterator[ingest_pb.StreamIngestConnectionEventsRequest]:
                for i in range(0, len(events), 2000):
                    yield ingest_pb.StreamIngestConnectionEventsRequest(events=events[i:i + 2000])

            try:
                reply = await stub.StreamIngestConnectionEvents(
                    batches(), metadata=(("authorization", f"Bearer {keys[tenant_id]}"),), timeout=300)
            except grpc.aio.AioRpcError as err:
                print(f"connlog demo: the ingest service at {address} is not reachable ({err.code().name}): "
                      "start the suite with 'connlog up' first")
                return 1
            print(f"{tenant_id:<15} {name:<15} networks {len(networks)}  accepted {reply.accepted_count:>6}  "
                  f"duplicate {reply.duplicate_count:>5}  rejected {reply.rejected_count}")
            print(f"{'':<15} operator key: {keys[tenant_id]}")
    return 0
