"""connlog.core.identifiers: MAC addresses and resource names."""

from __future__ import annotations

import pytest

from connlog.core.identifiers import (
    NETWORK_ID,
    event_name,
    normalise_mac,
    parse_event_name,
    parse_network_parent,
)

CANONICAL = "f0:d7:aa:df:59:a2"
EVENT_ID_MAX = 2**63 - 1  # event ids are bigint


@pytest.mark.parametrize(("text", "mac"), [
    pytest.param(CANONICAL, CANONICAL, id="canonical"),
    pytest.param("F0:D7:AA:DF:59:A2", CANONICAL, id="upper case"),
    pytest.param("F0:d7:Aa:dF:59:a2", CANONICAL, id="mixed case"),
    pytest.param("f0-d7-aa-df-59-a2", CANONICAL, id="dashes"),
    pytest.param("F0-D7-AA-DF-59-A2", CANONICAL, id="dashes, upper case"),
    pytest.param("f0d7.aadf.59a2", CANONICAL, id="Cisco dotted"),
    pytest.param("F0D7.AADF.59A2", CANONICAL, id="Cisco dotted, upper case"),
    pytest.param("f0d7aadf59a2", CANONICAL, id="bare hex"),
    pytest.param("F0D7AADF59A2", CANONICAL, id="bare hex, upper case"),
    pytest.param("  f0:d7:aa:df:59:a2\t", CANONICAL, id="surrounding blanks"),
    pytest.param("f0:d7:aa:df:59:a2\n", CANONICAL, id="final newline stripped"),
    pytest.param("00:00:00:00:00:00", "00:00:00:00:00:00", id="all zero"),
    pytest.param("ff-ff-ff-ff-ff-ff", "ff:ff:ff:ff:ff:ff", id="broadcast"),
])
def test_mac_addresses_are_normalised(text: str, mac: str) -> None:
    assert normalise_mac(text) == mac


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("nope", id="text"),
    pytest.param("f0:d7:aa:df:59", id="five octets"),
    pytest.param("f0:d7:aa:df:59:a2:01", id="seven octets"),
    pytest.param("f0:d7:aa:df:59:a", id="short last octet"),
    pytest.param("f0:d7:aa:df:59:a2a", id="long last octet"),
    pytest.param("f0:d7-aa:df:59:a2", id="mixed separators"),
    pytest.param("f0.d7.aa.df.59.a2", id="dots between octets"),
    pytest.param("f0:d7:aa:df:59:g2", id="not hex"),
    pytest.param("f0d7aadf59a", id="11 hex digits"),
    pytest.param("f0d7aadf59a2f", id="13 hex digits"),
    pytest.param("f0d7.aadf.59a2.0000", id="Cisco dotted, too long"),
    pytest.param("f0d7:aadf:59a2", id="colons between quads"),
    pytest.param("f0 d7 aa df 59 a2", id="spaces between octets"),
    pytest.param("ｆ0:d7:aa:df:59:a2", id="full-width letter"),
    pytest.param("f0:d7:aa:df:59:a2\nf0:d7:aa:df:59:a2", id="two lines"),
    pytest.param("f0:d7:aa:df:59:a2\x00", id="NUL"),
])
def test_other_text_is_not_a_mac_address(text: str) -> None:
    assert normalise_mac(text) is None


@pytest.mark.parametrize(("network", "event_id"), [
    ("N_1", 1), ("N_784752235069315754", 123456789), ("L_1:2", 0), ("a", EVENT_ID_MAX), ("devices", 42),
    ("x" * 128, 7), ("Net.work~1-2", 10**18),
])
def test_event_names_parse_back(network: str, event_id: int) -> None:
    name = event_name(network, event_id)
    assert name == f"networks/{network}/connectionEvents/{event_id}"
    assert parse_event_name(name) == (network, event_id)


def test_an_event_name_from_a_text_id() -> None:
    assert event_name("N_1", "17") == "networks/N_1/connectionEvents/17"


@pytest.mark.parametrize(("name", "parsed"), [
    pytest.param("networks/N_1/connectionEvents/0007", ("N_1", 7), id="leading zeros"),
    pytest.param(f"networks/N_1/connectionEvents/{'9' * 18}", ("N_1", int("9" * 18)), id="18 digits"),
])
def test_event_name_ids_are_numbers(name: str, parsed: tuple[str, int]) -> None:
    assert parse_event_name(name) == parsed


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param("networks/N_1/connectionEvents/", id="no id"),
    pytest.param("networks//connectionEvents/1", id="no network"),
    pytest.param("networks/-/connectionEvents/1", id="all networks is no event's network"),
    pytest.param("networks/N_1/connectionEvents/abc", id="id not a number"),
    pytest.param("networks/N_1/connectionEvents/-1", id="negative id"),
    pytest.param("networks/N_1/connectionEvents/1.5", id="fractional id"),
    pytest.param("networks/N_1/connectionEvents/١٢", id="non-ASCII digits"),
    pytest.param(f"networks/N_1/connectionEvents/{EVENT_ID_MAX + 1}", id="id beyond bigint"),
    pytest.param(f"networks/N_1/connectionEvents/{'1' * 20}", id="20 digits"),
    pytest.param("networks/N_1/connectionEvents/1\n", id="final newline"),
    pytest.param("networks/N_1/connectionEvents/1/", id="final slash"),
    pytest.param("/networks/N_1/connectionEvents/1", id="leading slash"),
    pytest.param("network/N_1/connectionEvents/1", id="network singular"),
    pytest.param("networks/N_1/connectionevents/1", id="collection case"),
    pytest.param("networks/N_1/events/1", id="other collection"),
    pytest.param("networks/a/b/connectionEvents/1", id="network with a slash"),
    pytest.param("networks/_N/connectionEvents/1", id="network starting with _"),
    pytest.param("networks/N 1/connectionEvents/1", id="network with a space"),
    pytest.param(f"networks/{'x' * 129}/connectionEvents/1", id="network of 129 characters"),
    pytest.param("networks/N_1/connectionEvents/1?x=1", id="query"),
])
def test_bad_event_names_parse_to_none(name: str) -> None:
    assert parse_event_name(name) is None


@pytest.mark.parametrize(("parent", "network"), [
    ("networks/N_1", "N_1"),
    ("networks/-", "-"),  # every network of the tenant
    ("networks/L_1:2.3~4-5", "L_1:2.3~4-5"),
    ("networks/0", "0"),
    ("networks/" + "x" * 128, "x" * 128),
])
def test_network_parents(parent: str, network: str) -> None:
    assert parse_network_parent(parent) == network


@pytest.mark.parametrize("parent", [
    "", "networks", "networks/", "networks/N_1/", "networks/N_1\n", "networks/--", "networks/-x", "networks/_x",
    "networks/.x", "networks/a/b", "networks/N 1", "network/N_1", "Networks/N_1", "/networks/N_1",
    "networks/" + "x" * 129, "networks/N\x00", "networks/Ñ",
])
def test_bad_network_parents_parse_to_none(parent: str) -> None:
    assert parse_network_parent(parent) is None


@pytest.mark.parametrize(("network", "valid"), [
    ("N_1", True), ("1", True), ("a" + "b" * 127, True), ("a" + "b" * 128, False), ("", False), ("-", False),
    ("_a", False), ("a/b", False), ("a\n", False), ("a b", False), ("a%20", False),
])
def test_network_ids(network: str, valid: bool) -> None:
    assert bool(NETWORK_ID.match(network)) is valid
