"""Where absolute URLs point (connlog.core.origin): a case table."""

from __future__ import annotations

import pytest

from connlog.core.origin import PublicOrigin, checked_base_url, checked_host

GATEWAY = "http://10.0.0.5:8080"
TRUSTING = PublicOrigin.of_settings(None, ("127.0.0.1/32", "10.1.0.0/16", "fd00::/8"), "0.0.0.0", 8080)
PLAIN = PublicOrigin.of_settings(None, (), "127.0.0.1", 8080)
BASE = PublicOrigin.of_settings("https://connlog.example/base/", ("127.0.0.1/32",), "127.0.0.1", 8080)


@pytest.mark.parametrize(("origin", "reported", "peer", "proto", "host", "expected"), [
    # nothing a client sends counts by default
    (PLAIN, GATEWAY, "127.0.0.1:5000", "https", "evil.example", GATEWAY),
    (PLAIN, GATEWAY, None, "javascript", "evil.example", GATEWAY),
    # without the gateway: the configured address of the gateway
    (PLAIN, None, None, None, None, "http://127.0.0.1:8080"),
    (TRUSTING, None, None, None, None, "http://127.0.0.1:8080"),
    # a malformed gateway origin header (a direct caller's): ignored
    (PLAIN, "javascript:alert(1)", None, None, None, "http://127.0.0.1:8080"),
    # a trusted peer's forwarded values, each only when well formed
    (TRUSTING, GATEWAY, "127.0.0.1:5000", "https", "connlog.example", "https://connlog.example"),
    (TRUSTING, GATEWAY, "10.1.2.3:1", "https", None, "https://10.0.0.5:8080"),
    (TRUSTING, GATEWAY, "[fd00::1]:443", None, "connlog.example:8443", "http://connlog.example:8443"),
    (TRUSTING, GATEWAY, "[::ffff:127.0.0.1]:5", "https", None, "https://10.0.0.5:8080"),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", "javascript", "connlog.example", "http://connlog.example"),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", "https ", None, GATEWAY),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", None, "user@evil.example", GATEWAY),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", None, "evil.example/path", GATEWAY),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", None, "evil.example:0", GATEWAY),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", None, "a.example,b.example", GATEWAY),
    (TRUSTING, GATEWAY, "127.0.0.1:5000", None, "[not-v6]", GATEWAY),
    # an untrusted or unreadable peer
    (TRUSTING, GATEWAY, "192.168.1.1:5000", "https", "connlog.example", GATEWAY),
    (TRUSTING, GATEWAY, "garbage", "https", "connlog.example", GATEWAY),
    # a public base URL wins over everything
    (BASE, GATEWAY, "127.0.0.1:5000", "http", "other.example", "https://connlog.example/base"),
])
def test_origin(origin, reported, peer, proto, host, expected):
    assert origin.origin(gateway_origin=reported, peer=peer, forwarded_proto=proto, forwarded_host=host) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("connlog.example", "connlog.example"), ("Connlog.Example:443", "connlog.example:443"),
    ("127.0.0.1:8080", "127.0.0.1:8080"), ("[2001:db8::1]", "[2001:db8::1]"), ("[2001:db8::1]:1", "[2001:db8::1]:1"),
    ("", None), ("a b", None), ("a/b", None), ("u@h", None), ("h:", None), ("h:65536", None), ("h:x", None),
    ("-h.example", None), ("h.example?x", None), ("[::1", None), ("h\r\nx", None),
])
def test_checked_host(text, expected):
    assert checked_host(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("https://connlog.example", "https://connlog.example"),
    ("HTTPS://Connlog.example:8443/base/", "https://connlog.example:8443/base"),
    ("http://10.0.0.1/a/b", "http://10.0.0.1/a/b"),
    ("ftp://connlog.example", None), ("https://u:p@connlog.example", None), ("https://connlog.example/?x", None),
    ("https://connlog.example/#x", None), ("https:///path", None), ("connlog.example", None),
    ("https://connlog.example/a b", None),
])
def test_checked_base_url(text, expected):
    if expected is None:
        with pytest.raises(ValueError, match="public_base_url"):
            checked_base_url(text)
    else:
        assert checked_base_url(text) == expected
