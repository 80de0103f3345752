"""Canonical insights -> Meraki's aggregate shapes: ``connectionStats`` (of
a network, per access point, per client) from the connection summary's
per-step counts, and ``failedConnections`` elements from failure events.

The mapping (docs/insights.md, "Meraki aggregate endpoints"):

* ``assoc``, ``auth``, ``dhcp``, ``dns``: the failures (``OUTCOME_FAILURE``)
  at the association, authentication, DHCP and DNS steps;
* ``success``: the successful connections: the successes at the DHCP step
  (the client got an address: what ends Meraki's onboarding) plus the
  successes of whole connection attempts (``CONNECTION_STEP_CONNECTION``:
  Meraki ``connection``, Mojo and Zequenze logs).

Failures of other steps (a whole connection attempt that failed, a roam,
a deauthentication ...) name no onboarding step and are in none of the four
failure counts, nor in ``failedConnections``, which lists exactly the
failures the four counts count.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.shapes.meraki.projection import occurred_at_text
from connlog.store.events import ReadEvent

# Meraki's failure counters (and failedConnections' ``failureStep``) by step,
# in Meraki's key order.
FAILURE_STEPS: dict[int, str] = {
    pb.CONNECTION_STEP_ASSOCIATION: "assoc",
    pb.CONNECTION_STEP_AUTHENTICATION: "auth",
    pb.CONNECTION_STEP_DHCP: "dhcp",
    pb.CONNECTION_STEP_DNS: "dns",
}
# The steps whose successes are successful connections.
SUCCESS_STEPS = frozenset({pb.CONNECTION_STEP_DHCP, pb.CONNECTION_STEP_CONNECTION})


def connection_stats(steps: Iterable[ipb.StepCounts]) -> dict[str, int]:
    """``{"assoc", "auth", "dhcp", "dns", "success"}`` of a group's per-step
    counts (all zero without any)."""
    stats = dict.fromkeys((*FAILURE_STEPS.values(), "success"), 0)
    for counts in steps:
        if counts.step in FAILURE_STEPS:
            stats[FAILURE_STEPS[counts.step]] += counts.failure_count
        if counts.step in SUCCESS_STEPS:
            stats["success"] += counts.success_count
    return stats


def network_stats(groups: list[ipb.ConnectionGroup]) -> dict[str, int]:
    """The network's stats from the summary's groups (one, or none without
    events)."""
    return connection_stats(step for group in groups for step in group.steps)


def device_stats(groups: list[ipb.ConnectionGroup]) -> list[dict[str, object]]:
    """One element per access point with a serial (groups by access point;
    those known by name alone, such as Mojo's, have no Meraki serial and are
    left out), in serial order."""
    return [{"serial": group.key.access_point.serial, "connectionStats": connection_stats(group.steps)}
            for group in groups if group.key.access_point.serial]


def client_stats(groups: list[ipb.ConnectionGroup]) -> list[dict[str, object]]:
    """One element per client with a MAC address (groups by client; a client
    known by id alone has no ``mac`` and is left out), in MAC order."""
    return [{"mac": group.key.client.mac_address, "connectionStats": connection_stats(group.steps)}
            for group in groups if group.key.client.mac_address]


def failure_type(event: pb.ConnectionEvent) -> str | None:
    """failedConnections' ``type``: the failure's reason, else the event's
    subtype (Meraki's own, e.g. ``8021x_auth_fail``), else null."""
    return event.failure.reason or event.subtype or None


def failed_connection(read: ReadEvent) -> dict[str, object]:
    """One failedConnections element of a failure event at an onboarding
    step (``FAILURE_STEPS``)."""
    event = read.event
    wlan = event.wlan
    return {
        "ssidNumber": wlan.ssid_number if wlan.HasField("ssid_number") else None,
        "vlan": None,  # connlog's events carry no VLAN
        "clientMac": event.client.mac_address or None,
        "serial": event.access_point.serial or None,
        "failureStep": FAILURE_STEPS.get(event.step),
        "type": failure_type(event),
        "ts": occurred_at_text(read.occurred_at),
    }


def failed_connections(events: list[ReadEvent]) -> bytes:
    """A bare JSON array of failedConnections elements."""
    return orjson.dumps([failed_connection(read) for read in events])
