"""Where absolute URLs in answers point (Meraki's Link headers, ``url``
fields): never at what a client claims.

The origin is, in this order:

1. ``Settings.public_base_url`` when set (scheme, host, optional port and
   path prefix; checked when the settings are read);
2. when the gateway's immediate peer (the address Envoy accepted the
   connection from, which the gateway hands over; a client cannot set it) is
   in ``Settings.trusted_proxies``: ``X-Forwarded-Proto`` / ``X-Forwarded-Host``,
   each only if it is well formed (``http``/``https``; an RFC 3986 host with
   an optional port, nothing else), else that part of 3.;
3. the gateway's own address, as the gateway reports it (rendered from its
   settings, never from the request);
4. for a caller that did not come through the gateway:
   ``http://<host>:<gateway_port>``.

``Host``, ``X-Forwarded-*`` and every other client-sent header change nothing
unless 2. applies.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")
_PATH_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")
SCHEMES = ("http", "https")


def checked_host(text: str) -> str | None:
    """``text`` if it is ``host[:port]`` (a DNS name, an IPv4 address or a
    bracketed IPv6 address; a port 1-65535), lower-cased; else None. No
    userinfo, path, query, spaces or anything else."""
    if not text or len(text) > 300:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        try:
            ipaddress.IPv6Address(text[1:end])
        except ValueError:
            return None
        host, rest = text[: end + 1], text[end + 1:]
    else:
        host, sep, port = text.partition(":")
        rest = sep + port
        if not _HOST_NAME.fullmatch(host) or len(host) > 253:
            return None
    if rest:
        port = rest[1:]
        if not rest.startswith(":") or not _PORT.fullmatch(port) or not 0 < int(port) <= 65535:
            return None
    return text.lower()


def checked_proto(text: str) -> str | None:
    """``http`` or ``https`` (any case), else None."""
    lowered = text.lower()
    return lowered if lowered in SCHEMES else None


def checked_base_url(text: str) -> str:
    """A public base URL: ``http(s)://host[:port][/path/prefix]``, no
    userinfo, query or fragment; returned without a trailing slash.
    ValueError naming what is wrong."""
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"public_base_url must be an http or https URL, not {text!r}")
    if "@" in parts.netloc:
        raise ValueError("public_base_url must not carry user information")
    host = checked_host(parts.netloc)
    if host is None:
        raise ValueError(f"public_base_url has no valid host[:port]: {parts.netloc!r}")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError("public_base_url must not have a query or fragment")
    path = parts.path.rstrip("/")
    if not _PATH_PREFIX.fullmatch(path):
        raise ValueError(f"public_base_url has an invalid path prefix: {parts.path!r}")
    return f"{parts.scheme.lower()}://{host}{path}"


def checked_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The CIDRs (or single addresses) of ``trusted_proxies``; ValueError
    naming an entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


def peer_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of Envoy's ``ip:port`` / ``[ip]:port`` (or a bare
    address), else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class PublicOrigin:
    """Decides the origin of absolute URLs (see the module's docstring)."""

    base_url: str | None
    trusted: tuple[Network, ...]
    fallback: str

    @classmethod
    def of_settings(cls, base_url: str | None, trusted_proxies: Iterable[str], host: str,
                    gateway_port: int) -> PublicOrigin:
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return cls(checked_base_url(base_url) if base_url else None, checked_networks(trusted_proxies),
                   f"http://{host}:{gateway_port}")

    def _trusted_peer(self, peer: str | None) -> bool:
        address = peer_address(peer) if peer else None
        return address is not None and any(address in network for network in self.trusted)

    def origin(self, *, gateway_origin: str | None, peer: str | None, forwarded_proto: str | None,
               forwarded_host: str | None) -> str:
        """The origin (scheme://host[:port][/prefix], no trailing slash)."""
        if self.base_url:
            return self.base_url
        own = self.fallback
        if gateway_origin:
            try:
                own = checked_base_url(gateway_origin)
            except ValueError:
                pass
        if not self._trusted_peer(peer):
            return own
        scheme, _, rest = own.partition("://")
        host, slash, path = rest.partition("/")
        proto = checked_proto(forwarded_proto) if forwarded_proto else None
        forwarded = checked_host(forwarded_host) if forwarded_host else None
        return f"{proto or scheme}://{forwarded or host}{slash}{path}"
