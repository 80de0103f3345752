"""connlog.vendorsync.egress and the origin rule of VendorHttp: where
vendor-sync may connect, as case tables (no network: name resolution is
replaced where a test needs it, and the inner network backend records
instead of connecting)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import httpcore
import httpx
import pytest

from connlog.core.validation import InvalidArgument
from connlog.vendorsync.egress import (
    EgressPolicy,
    EgressRefused,
    IPAddress,
    VettedTransport,
    VettingBackend,
    literal_address,
    parse_destinations,
)
from connlog.vendorsync.vendor_http import AsyncRateLimiter, DestinationRefused, VendorHttp


def policy(*allowed: str, allow_http: bool = False) -> EgressPolicy:
    networks, hosts = parse_destinations(allowed)
    return EgressPolicy(allow_http, networks, hosts)


# --- addresses -------------------------------------------------------------

PUBLIC = ["8.8.8.8", "1.1.1.1", "52.1.2.3", "2606:4700::1111", "2a00:1450:4001:80b::200e",
          "::ffff:8.8.8.8",  # IPv4-mapped: judged as 8.8.8.8
          "64:ff9b::808:808",  # NAT64 of 8.8.8.8
          "2002:808:808::1"]  # 6to4 of 8.8.8.8
NOT_PUBLIC = {
    "127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "v6 loopback",
    "10.0.0.1": "RFC 1918", "172.16.5.4": "RFC 1918", "192.168.1.1": "RFC 1918",
    "100.64.0.1": "CGNAT", "100.127.255.254": "CGNAT",
    "169.254.169.254": "metadata (link-local)", "169.254.0.1": "link-local",
    "fd00:ec2::254": "metadata (AWS IPv6, ULA)", "fc00::1": "ULA", "fe80::1": "v6 link-local",
    "0.0.0.0": "unspecified", "::": "v6 unspecified",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "v6 multicast",
    "255.255.255.255": "broadcast", "240.0.0.1": "reserved", "198.18.0.1": "benchmarking",
    "192.0.2.1": "documentation", "2001:db8::1": "v6 documentation",
    "::ffff:127.0.0.1": "IPv4-mapped loopback", "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "::ffff:10.1.2.3": "IPv4-mapped private", "64:ff9b::a9fe:a9fe": "NAT64 of the metadata address",
    "64:ff9b::7f00:1": "NAT64 of loopback", "2002:7f00:1::": "6to4 of loopback",
    "2002:a00:1::": "6to4 of 10.0.0.1", "::127.0.0.1": "IPv4-compatible loopback",
}


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    policy().check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC, ids=[f"{a} {w}" for a, w in NOT_PUBLIC.items()])
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(EgressRefused, match="not a public address"):
        policy().check_address(ipaddress.ip_address(address))


ALLOW_LISTED = [
    # (entries, address, host the connection is for)
    (["127.0.0.1/32"], "127.0.0.1", ""),
    (["127.0.0.1"], "127.0.0.1", ""),  # a single address is its /32
    (["127.0.0.1/32"], "::ffff:127.0.0.1", ""),  # mapped: the IPv4 address is what counts
    (["::1/128"], "::1", ""),
    (["[::1]"], "::1", ""),
    (["10.0.0.0/8"], "10.20.30.40", ""),
    (["10.0.0.1/8"], "10.20.30.40", ""),  # host bits set: still the /8
    (["169.254.169.254/32"], "169.254.169.254", ""),
    (["fd00::/8"], "fd12:3456::1", ""),
    (["vendor.internal"], "10.1.2.3", "vendor.internal"),
    (["Vendor.Internal."], "10.1.2.3", "VENDOR.internal"),  # case and the root dot do not matter
    (["localhost"], "127.0.0.1", "localhost"),
]


@pytest.mark.parametrize(("entries", "address", "host"), ALLOW_LISTED)
def test_allow_listed_destinations_are_allowed(entries: list[str], address: str, host: str) -> None:
    policy(*entries).check_address(ipaddress.ip_address(address), host)


NOT_ALLOW_LISTED = [
    (["127.0.0.1/32"], "127.0.0.2", ""),
    (["127.0.0.1/32"], "::1", ""),  # v4 entry, v6 loopback
    (["::1/128"], "127.0.0.1", ""),
    (["10.0.0.0/8"], "192.168.0.1", ""),
    (["10.0.0.0/8"], "169.254.169.254", ""),
    (["vendor.internal"], "10.1.2.3", "other.internal"),
    (["vendor.internal"], "10.1.2.3", "vendor.internal.evil.example"),
    (["vendor.internal"], "10.1.2.3", ""),  # a name entry never allows a bare address
    (["internal"], "10.1.2.3", "vendor.internal"),  # no suffix matching
]


@pytest.mark.parametrize(("entries", "address", "host"), NOT_ALLOW_LISTED)
def test_other_destinations_stay_refused(entries: list[str], address: str, host: str) -> None:
    with pytest.raises(EgressRefused):
        policy(*entries).check_address(ipaddress.ip_address(address), host)


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("169.254.169.254", "169.254.169.254"), ("0xa9fea9fe", "169.254.169.254"), ("2852039166", "169.254.169.254"),
    ("10.1", "10.0.0.1"), ("1.2.3.4.", "1.2.3.4"), ("::1", "::1"), ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1"), ("[fe80::1]", "fe80::1"),
])
def test_literal_addresses_in_every_form_a_resolver_takes(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["api.meraki.com", "localhost", "deadbeef", "0x", "1.2.3.4.example", "a.b"])
def test_host_names_are_not_addresses(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "300.1.2.3/8", "host:443", "https://vendor", "a b",
                                   "2130706433", "under_score-.example/x", "fe80::/200"])
def test_malformed_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="sync_allowed_destinations"):
        parse_destinations([entry])


# --- URLs at source create/update ----------------------------------------

FIELD = "sync_source.base_url"

ACCEPTED_URLS = [
    (policy(), "https://api.meraki.com/api/v1"),
    (policy(), "https://n123.meraki.com:8443/api/v1"),
    (policy(), "https://8.8.8.8/api"),
    (policy(), "https://[2606:4700::1111]/api"),
    (policy(), "https://localhost/api"),  # a name: judged when connecting
    (policy(allow_http=True), "http://api.example.com/api"),
    (policy("127.0.0.1/32", allow_http=True), "http://127.0.0.1:8080/api/v1"),
    (policy("127.0.0.1/32", allow_http=True), "http://2130706433:8080/api/v1"),
    (policy("::1/128"), "https://[::1]:8443/api"),
    (policy("10.0.0.0/8"), "https://10.2.3.4/api"),
]


@pytest.mark.parametrize(("egress", "url"), ACCEPTED_URLS)
def test_source_urls_accepted(egress: EgressPolicy, url: str) -> None:
    assert egress.source_url(url, FIELD) == url


REFUSED_URLS = [
    (policy(), "http://api.example.com/api", "must be https"),
    (policy("127.0.0.1/32"), "http://127.0.0.1:8080/api", "must be https"),
    (policy(), "https://127.0.0.1/api", "not a public address"),
    (policy(), "https://2130706433/api", "not a public address"),
    (policy(), "https://0x7f.1/api", "not a public address"),
    (policy(), "https://127.1/api", "not a public address"),
    (policy(), "https://[::1]/api", "not a public address"),
    (policy(), "https://[::ffff:127.0.0.1]/api", "not a public address"),
    (policy(), "https://[::ffff:7f00:1]/api", "not a public address"),
    (policy(), "https://169.254.169.254/latest/meta-data", "not a public address"),
    (policy(), "https://10.0.0.1/api", "not a public address"),
    (policy(), "https://100.64.1.1/api", "not a public address"),
    (policy(), "https://[fd00::1]/api", "not a public address"),
    (policy(), "https://[fe80::1]/api", "not a public address"),
    (policy("127.0.0.1/32"), "https://127.0.0.2/api", "not a public address"),
    (policy("localhost"), "https://127.0.0.1/api", "not a public address"),
    (policy(), "https://user:secret@api.example.com/api", "user name or password"),
    (policy(), "https://api.example.com\\@127.0.0.1/api", "user name or password"),  # parsers differ: refused
    (policy(), "https://api.example.com/api?token=1", "no query or fragment"),
    (policy(), "https://api.example.com/api#x", "no query or fragment"),
]


@pytest.mark.parametrize(("egress", "url", "reason"), REFUSED_URLS)
def test_source_urls_refused(egress: EgressPolicy, url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        egress.source_url(url, FIELD)
    assert err.value.field == FIELD
    assert reason in err.value.reason


def test_policy_from_settings() -> None:
    from connlog.core.settings import Settings

    settings = Settings(sync_allow_http=True, sync_allowed_destinations="10.0.0.0/8, vendor.internal,::1")
    egress = EgressPolicy.from_settings(settings)
    assert egress.allow_http
    assert egress.networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert egress.hosts == frozenset({"vendor.internal"})
    assert EgressPolicy.from_settings(Settings()) == EgressPolicy(False, (), frozenset())


# --- the origin of a session ----------------------------------------------

def session(base_url: str, egress: EgressPolicy | None = None) -> VendorHttp:
    return VendorHttp(AsyncRateLimiter(), "k", 10.0, egress=egress or policy(), base_url=base_url)


SAME_ORIGIN = [
    ("https://api.example.com/api/v1", "https://api.example.com/api/v1/networks/N/clients/c"),
    ("https://api.example.com/api/v1", "https://API.example.com:443/other/path?x=1"),
    ("https://api.example.com:8443/api", "https://api.example.com:8443/api/next?page=2"),
]


@pytest.mark.parametrize(("base", "url"), SAME_ORIGIN)
async def test_requests_to_the_sources_origin_pass(base: str, url: str) -> None:
    http = session(base)
    assert http.check_url(url).host == httpx.URL(url).host
    await http.close()


OTHER_ORIGIN = [
    ("https://api.example.com/api/v1", "https://evil.example.com/api/v1/networks", "another host"),
    ("https://api.example.com/api/v1", "https://api.example.com.evil.example/api", "another host"),
    ("https://api.example.com/api/v1", "https://api.example.com:8443/api/v1", "another host"),
    ("https://api.example.com/api/v1", "http://api.example.com/api/v1", "must be https"),  # never https -> http
    ("https://api.example.com/api/v1", "https://user:pw@api.example.com/api", "user name or password"),
    ("https://api.example.com/api/v1", "https://169.254.169.254/latest", "not a public address"),
]


@pytest.mark.parametrize(("base", "url", "reason"), OTHER_ORIGIN)
async def test_requests_anywhere_else_are_refused(base: str, url: str, reason: str) -> None:
    http = session(base, policy(allow_http=False))
    with pytest.raises(DestinationRefused, match=reason):
        http.check_url(url, "Link rel=next")
    await http.close()


async def test_an_https_to_http_redirect_is_refused_even_where_http_is_allowed() -> None:
    http = session("https://api.example.com/api", policy(allow_http=True))
    with pytest.raises(DestinationRefused, match="another host"):
        http.check_url("http://api.example.com/api", "redirected")
    await http.close()


async def test_a_session_never_reads_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    http = session("https://api.example.com/api")
    assert not http.client.trust_env
    assert isinstance(http.client._transport_for_url(httpx.URL("https://api.example.com/api")), VettedTransport)
    await http.close()


# --- connecting -------------------------------------------------------------

class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where it is asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("recorded")


class FixedResolution(VettingBackend):
    """A VettingBackend whose names resolve to fixed addresses."""

    def __init__(self, egress: EgressPolicy, inner: httpcore.AsyncNetworkBackend, answers: list[str]) -> None:
        super().__init__(egress, inner)
        self.answers = [ipaddress.ip_address(a) for a in answers]

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        return self.answers


CONNECTS = [
    # (allowed entries, the name's addresses, refused?)
    ((), ["93.184.216.34"], False),
    ((), ["127.0.0.1"], True),
    ((), ["169.254.169.254"], True),
    ((), ["93.184.216.34", "10.0.0.5"], True),  # one bad address refuses the name
    ((), ["2606:2800:220:1::1", "::1"], True),
    ((), ["::ffff:127.0.0.1"], True),
    (("127.0.0.1/32",), ["127.0.0.1"], False),
    (("127.0.0.1/32",), ["127.0.0.1", "::1"], True),
    (("vendor.example",), ["10.0.0.5"], False),  # the name is allow-listed: its addresses too
]


@pytest.mark.parametrize(("entries", "answers", "refused"), CONNECTS)
async def test_every_resolved_address_is_vetted_and_the_vetted_one_connected(
    entries: tuple[str, ...], answers: list[str], refused: bool
) -> None:
    inner = RecordingBackend()
    backend = FixedResolution(policy(*entries), inner, answers)
    if refused:
        with pytest.raises(EgressRefused, match="vendor.example resolves to"):
            await backend.connect_tcp("vendor.example", 443)
        assert inner.connects == []  # nothing was even attempted
        return
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("vendor.example", 443)
    # an address, never the name again (no second lookup, no rebinding window)
    assert inner.connects == [(str(ipaddress.ip_address(a)), 443) for a in answers]


async def test_the_real_resolver_is_used_and_loopback_refused() -> None:
    inner = RecordingBackend()
    with pytest.raises(EgressRefused, match="localhost resolves to"):
        await VettingBackend(policy(), inner).connect_tcp("localhost", 80)
    with pytest.raises(EgressRefused, match="2130706433 resolves to 127.0.0.1"):
        await VettingBackend(policy(), inner).connect_tcp("2130706433", 80)
    assert inner.connects == []
    with pytest.raises(httpcore.ConnectError):
        await VettingBackend(policy("127.0.0.1/32", "::1/128"), inner).connect_tcp("localhost", 80)
    assert inner.connects and all(host in ("127.0.0.1", "::1") for host, _ in inner.connects)


async def test_unix_sockets_are_refused() -> None:
    with pytest.raises(EgressRefused):
        await VettingBackend(policy(), RecordingBackend()).connect_unix_socket("/var/run/docker.sock")


async def test_a_refused_connection_is_a_destination_refused_and_not_retried() -> None:
    limiter = AsyncRateLimiter()
    http = VendorHttp(limiter, "k", 1000.0, egress=policy(allow_http=True), base_url="http://localhost:9/api",
                      attempts=3, backoff_base=0.001)
    with pytest.raises(DestinationRefused, match="localhost resolves to 127.0.0.1|localhost resolves to ::1"):
        await http.request("GET", "http://localhost:9/api/x")
    assert http.requests == 1  # one attempt: a refusal is not retried
    await http.close()


async def test_a_stored_source_no_longer_allowed_is_refused_before_any_request() -> None:
    """A source written while http (or an address) was allowed, polled after
    the settings changed: refused at its first request, nothing sent."""
    http = session("http://api.example.com/api", policy(allow_http=False))
    with pytest.raises(DestinationRefused, match="must be https"):
        await http.request("GET", "http://api.example.com/api/networks")
    assert http.requests == 0
    await http.close()
