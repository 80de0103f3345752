"""The known events the browser tests look at, relative to now.

Network ``data.network``:
* client A (``MAC_A``, client id ``laptop-ana``): a session in the last two
  hours (association, authentication, DHCP, DNS on the Lobby AP, a roam to
  the Lab AP, failures there, a disassociation), then one event each 3 h,
  6 h, 10 h, 20 h and 3 days ago, so that each interval button shows more;
* client B (client id ``printer-9``, no MAC): events 5 h ago only;
* client D: successes on the Lobby AP and the guest SSID;
* client E: one event 10 minutes ago (the live test adds more).
The Lab AP (serial Q-LAB) fails most, then the Lobby AP.

Network ``data.big_network``: client C with ``BIG`` events in the last two hours."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from google.protobuf import duration_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from tests.support.factories import now, simple_event, ts

MAC_A = "f0:d7:aa:00:00:01"
MAC_C = "f0:d7:aa:00:10:00"
MAC_D = "f0:d7:aa:00:00:02"
MAC_E = "f0:d7:aa:00:00:05"
ID_B = "printer-9"
BIG = 10_000
S, F, I = pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_INFORMATIONAL  # noqa: E741
ASSOC, AUTH, DHCP, DNS = (pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP,
                          pb.CONNECTION_STEP_DNS)
ROAM, DISASSOC = pb.CONNECTION_STEP_ROAM, pb.CONNECTION_STEP_DISASSOCIATION
LOBBY = ("Lobby-AP", "Q-LOBBY")
LAB = ("Lab-AP", "Q-LAB")
HALL = ("Hall-AP", "Q-HALL")
# a failure reason with a comma and quotes, and a specific failure a
# spreadsheet would run as a formula: the CSV must quote the one and defuse the other
QUOTED_REASON = 'EAPOL "4-way" handshake, timeout'
FORMULA = "=HYPERLINK(1)"
# the hours before now of client A's older events, one past each interval's start
OLDER_HOURS = (3, 6, 10, 20, 72)
# how many of client A's events each interval holds
A_RECENT = 9
A_COUNTS = {"2h": A_RECENT, "4h": A_RECENT + 1, "8h": A_RECENT + 2, "12h": A_RECENT + 3, "1d": A_RECENT + 4,
            "1w": A_RECENT + 5}


@dataclass
class Data:
    network: str
    big_network: str
    base: dt.datetime
    macs: list[str] = field(default_factory=lambda: [MAC_A, MAC_D, MAC_E])


def event(network: str, when: dt.datetime, step: int, outcome: int, *, mac: str = "", client_id: str = "",
          ap: tuple[str, str] = LOBBY, ssid: str = "corp", code: int | None = None, reason: str = "",
          sub_code: int | None = None, sub_reason: str = "", dhcp_ms: int | None = None,
          subtype: str = "") -> pb.ConnectionEvent:
    e = simple_event(network, mac=mac, client_id=client_id, when=when, step=step, outcome=outcome, subtype=subtype,
                     radio=pb.Radio(band=pb.BAND_5_GHZ, channel=36, quality_metric=pb.QUALITY_METRIC_RSSI,
                                    quality_value=-58),
                     wlan=pb.Wlan(ssid=ssid, bssid="00:11:22:33:44:55"),
                     access_point=pb.AccessPoint(name=ap[0], serial=ap[1]), source=pb.Source(vendor=pb.VENDOR_MERAKI))
    if code is not None:
        e.failure.code = code
    if reason:
        e.failure.reason = reason
    if sub_code is not None:
        e.failure.sub_code = sub_code
    if sub_reason:
        e.failure.sub_reason = sub_reason
    if dhcp_ms is not None:
        e.timing.dhcp_latency.CopyFrom(duration_pb2.Duration(nanos=dhcp_ms * 1_000_000))
    return e


def recent_a(network: str, base: dt.datetime) -> list[pb.ConnectionEvent]:
    def at(minutes: float) -> dt.datetime:
        return base - dt.timedelta(minutes=minutes)

    first = event(network, at(90), ASSOC, S, mac=MAC_A, client_id="laptop-ana")
    first.timing.association_time.CopyFrom(ts(at(90)))
    first.timing.network_time.CopyFrom(ts(at(90) + dt.timedelta(seconds=2)))
    return [
        first,
        event(network, at(89.9), AUTH, S, mac=MAC_A),
        event(network, at(89.8), DHCP, S, mac=MAC_A, dhcp_ms=120),
        event(network, at(89.7), DNS, S, mac=MAC_A),
        event(network, at(70), ROAM, S, mac=MAC_A, ap=LAB),
        event(network, at(60), AUTH, F, mac=MAC_A, ap=LAB, code=8, reason=QUOTED_REASON, sub_code=41,
              sub_reason="Maximum retries for 3/4 msg reached."),
        event(network, at(50), AUTH, F, mac=MAC_A, ap=LAB, code=8, reason=QUOTED_REASON, sub_code=41,
              sub_reason="Maximum retries for 3/4 msg reached.", subtype=FORMULA),
        event(network, at(45), ASSOC, F, mac=MAC_A, ap=LAB, code=3, reason="Association rejected"),
        event(network, at(40), DISASSOC, I, mac=MAC_A, ap=LAB),
    ]


def big(network: str, base: dt.datetime) -> list[pb.ConnectionEvent]:
    steps = [ASSOC, AUTH, DHCP, DNS, ROAM]
    aps = [LOBBY, LAB, HALL]
    span = 105 * 60.0
    events = []
    for i in range(BIG):
        when = base - dt.timedelta(seconds=5 * 60 + span * (BIG - i) / BIG)
        outcome = F if i % 7 == 0 else I if i % 19 == 0 else S
        events.append(event(network, when, steps[i % len(steps)], outcome, mac=MAC_C, ap=aps[i % 3],
                            code=8 if outcome == F else None, reason="timeout" if outcome == F else "",
                            dhcp_ms=30 + i % 50 if steps[i % len(steps)] == DHCP else None))
    return events


async def send(clients, tenant, events: list[pb.ConnectionEvent]) -> list[str]:
    reply = await clients.ingest.IngestConnectionEvents(ingest_pb.IngestConnectionEventsRequest(events=events),
                                                        metadata=tenant.md())
    assert reply.rejected_count == 0, [r.reason for r in reply.results if r.reason][:3]
    return [r.name for r in reply.results]


async def ingest(clients, tenant) -> Data:
    suffix = secrets.token_hex(3)
    data = Data(f"N_ui_{suffix}", f"N_ui_big_{suffix}", now())
    base, network = data.base, data.network
    events = recent_a(network, base)
    events += [event(network, base - dt.timedelta(hours=h, minutes=30), ASSOC, S, mac=MAC_A) for h in OLDER_HOURS[:-1]]
    events.append(event(network, base - dt.timedelta(hours=OLDER_HOURS[-1]), ASSOC, S, mac=MAC_A))
    events += [event(network, base - dt.timedelta(hours=5, minutes=m), DHCP, S, client_id=ID_B, ap=HALL)
               for m in (0, 10)]
    events += [event(network, base - dt.timedelta(minutes=m), ASSOC, S, mac=MAC_D, ssid="guest") for m in (20, 25, 30)]
    events.append(event(network, base - dt.timedelta(minutes=10), ASSOC, S, mac=MAC_E, ap=HALL))
    await send(clients, tenant, events)
    await send(clients, tenant, big(data.big_network, base))
    return data
