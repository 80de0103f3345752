"""Where vendor-sync may connect: its outbound policy and the transport that
enforces it.

A vendor source names a URL; a tenant's administrator writes it. Left alone,
that URL could point vendor-sync at the pod's own loopback services, the
cluster's private network or the cloud's metadata address (169.254.169.254),
and the source's credential would travel with it. So:

* at source create/update (``EgressPolicy.source_url``): https only unless
  ``sync_allow_http``; no userinfo, query or fragment; a host that is a
  literal IP address (in any form a resolver accepts: ``2130706433``,
  ``0x7f.1``, ``[::ffff:127.0.0.1]``) must be public or allow-listed;
* at connect time (``VettedTransport``), the real guard since DNS can answer
  anything and change its answer: the host is resolved here, every address
  is checked, and the connection goes to a vetted address (no second lookup,
  so no DNS-rebinding window); TLS still verifies the URL's host name (SNI
  and certificate). Proxies from the environment are never used.

An address is allowed when it is public (``ip.is_global`` and neither
multicast, reserved, unspecified, loopback, link-local nor private; an
IPv4-mapped, NAT64 or 6to4 IPv6 address is judged by the IPv4 address inside
it), or when an entry of ``sync_allowed_destinations`` names it: a CIDR (or a
single address) that contains it, or a host name equal to the connection's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from connlog.core.settings import Settings
from connlog.core.validation import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A host name (RFC 1123 labels, as httpx hands it on: IDNA-encoded, lower case).
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                        r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?")
# What a resolver may read as an IPv4 address (inet_aton: 1 to 4 parts,
# each decimal, octal or hex): ``127.1``, ``2130706433``, ``0x7f.0.0.1``.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


class EgressRefused(Exception):
    """vendor-sync may not connect there; the message says why."""


def _host_key(host: str) -> str:
    return host.lower().rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` is when it is a literal one, in any form the
    system resolver would take as such; None for a host name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)  # dotted quad, IPv6 (with or without brackets)
    except ValueError:
        pass
    bare = _host_key(host)
    if bare and _NUMERIC_HOST.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is an ordinary public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the IPv4 address is the destination
            return is_public(ip.ipv4_mapped)
        if ip in _NAT64:  # so is the IPv4 address a NAT64 gateway reaches
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public(ip.sixtofour):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback
                                 or ip.is_link_local or ip.is_private)


def _normalised(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id:
            return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def parse_destinations(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """The networks and host names of ``sync_allowed_destinations``; a
    ValueError names an entry that is neither."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        text = entry.strip()
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if "/" in text or ":" in text or literal_address(text) is not None or not _HOST_NAME.fullmatch(
                text.lower()):
            raise ValueError(f"sync_allowed_destinations: {entry!r} is neither a CIDR, an address nor a host name")
        hosts.add(_host_key(text))
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class EgressPolicy:
    """Where vendor-sync may connect (from ``Settings``)."""

    allow_http: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        networks, hosts = parse_destinations(settings.sync_allowed_destinations)
        return cls(settings.sync_allow_http, networks, hosts)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a name) is allow-listed by name."""
        return _host_key(host) in self.hosts

    def check_address(self, ip: IPAddress, host: str = "") -> None:
        """Raise EgressRefused unless ``ip`` (reached as ``host``) is allowed."""
        ip = _normalised(ip)
        if (host and self.host_allowed(host)) or any(ip in net for net in self.networks
                                                      if net.version == ip.version):
            return
        if not is_public(ip):
            raise EgressRefused(f"{ip} is not a public address (allow it in CONNLOG_SYNC_ALLOWED_DESTINATIONS)")

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The URL as the client will read it; EgressRefused when vendor-sync
        may not call it (scheme, userinfo, a non-public literal address)."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise EgressRefused("is not a URL") from None
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise EgressRefused("must be an https URL")
        if parsed.scheme == "http" and not self.allow_http:
            raise EgressRefused("must be https (http needs CONNLOG_SYNC_ALLOW_HTTP)")
        if parsed.userinfo:
            raise EgressRefused("must not carry a user name or password (the credential has its own field)")
        ip = literal_address(parsed.host)
        if ip is not None:
            self.check_address(ip)
        return parsed

    def source_url(self, url: str, field: str) -> str:
        """A source's base URL (already a valid http(s) URL), or
        InvalidArgument naming ``field`` with the reason it is refused."""
        try:
            parsed = self.check_url(url)
        except EgressRefused as exc:
            raise InvalidArgument(field, str(exc)) from None
        if parsed.query or parsed.fragment or "?" in url or "#" in url:
            raise InvalidArgument(field, "a base URL has no query or fragment")
        return url


class VettingBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves each host itself, refuses the
    connection unless every address is allowed, and connects to a vetted
    address through ``inner``."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc.strerror or exc}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]))
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        for ip in addresses:  # every one: a name with one bad address is refused whole
            try:
                self._policy.check_address(ip, host)
            except EgressRefused as exc:
                raise EgressRefused(f"{host} resolves to {ip}: {exc}") from None
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("vendor-sync does not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response mapping, errors) over a
    connection pool whose every connection goes through ``VettingBackend``.
    No proxy: the client using it must not read proxies from the
    environment either (``trust_env=False``)."""

    def __init__(self, policy: EgressPolicy, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or httpx.create_ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=10,  # one source's session: its requests go one at a time
            keepalive_expiry=5.0,
            network_backend=VettingBackend(policy),
        )
