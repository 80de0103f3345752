"""Parsing and formatting of MAC addresses and resource names."""

from __future__ import annotations

import re

# Every pattern ends in \Z, not $: "$" also matches before a final newline,
# so "N_1\n" would pass for "N_1" (with .match as well as .fullmatch).
_CANONICAL_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_MAC_FORMS = [
    re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}\Z"),  # aa:bb:.. / aa-bb-..
    re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\Z"),  # aabb.ccdd.eeff
    re.compile(r"^[0-9a-f]{12}\Z"),  # aabbccddeeff
]
NETWORK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~-]{0,127}\Z")
_EVENT_NAME = re.compile(r"^networks/([^/]+)/connectionEvents/([0-9]{1,19})\Z")
_NETWORK_NAME = re.compile(r"^networks/([^/]+)\Z")
EVENT_ID_MAX = 2**63 - 1  # event ids are bigint


def normalise_mac(value: str) -> str | None:
    """``value`` as ``aa:bb:cc:dd:ee:ff``, or None if it is not a MAC address."""
    if _CANONICAL_MAC.match(value):
        return value
    text = value.strip().lower()
    if not any(form.match(text) for form in _MAC_FORMS):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def event_name(network_id: str, event_id: int | str) -> str:
    return f"networks/{network_id}/connectionEvents/{event_id}"


def parse_event_name(name: str) -> tuple[str, int] | None:
    """``(network_id, event_id)`` of an event resource name, or None."""
    match = _EVENT_NAME.match(name)
    if not match or not NETWORK_ID.match(match.group(1)) or int(match.group(2)) > EVENT_ID_MAX:
        return None
    return match.group(1), int(match.group(2))


def parse_network_parent(parent: str) -> str | None:
    """The network id of ``networks/{network}`` (``-`` for all), or None."""
    match = _NETWORK_NAME.match(parent)
    if not match:
        return None
    network = match.group(1)
    if network != "-" and not NETWORK_ID.match(network):
        return None
    return network
