"""Fake Meraki and Mojo APIs (aiohttp, loopback) serving their documented
shapes, with injectable faults: 429s, 5xx, timeouts, repeated pages,
malformed records, rejected credentials, expired sessions and redirects; and
a ``Recorder`` that records whatever reaches it (where nothing should)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    except ValueError:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class FakeServer:
    """Common plumbing: an aiohttp app on a free loopback port."""

    faults: list[str] = field(default_factory=list)  # consumed one per request: 429, 500, timeout, repeat
    request_times: list[float] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""
    delay: float = 0.0
    # consumed one per request, before anything else: a 307 to this prefix
    # plus the request's path and query
    redirects: list[str] = field(default_factory=list)

    async def start(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def redirect(self, request: web.Request) -> web.Response | None:
        """The next injected redirect, if any."""
        if not self.redirects:
            return None
        return web.Response(status=307, headers={"Location": self.redirects.pop(0) + request.path_qs})

    async def fault(self) -> web.Response | None:
        """Apply the next injected fault, if any."""
        self.request_times.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.faults:
            return None
        fault = self.faults.pop(0)
        if fault == "429":
            return web.json_response({"errors": ["API rate limit exceeded for organization"]}, status=429,
                                     headers={"Retry-After": "1"})
        if fault == "500":
            return web.json_response({"errors": ["Internal error"]}, status=500)
        if fault == "503":
            return web.Response(status=503, text="unavailable")
        if fault == "timeout":
            await asyncio.sleep(3)
        if fault == "repeat":
            return web.Response(status=299)  # marker handled by the endpoint
        return None


def _mac(text: str) -> str | None:
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    if len(digits) != 12 or len(text) not in (12, 14, 17):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


class FakeMeraki(FakeServer):
    """``/api/v1/networks/{net}/wireless/clients/{client}/connectivityEvents``,
    ``/api/v1/networks/{net}/clients/{client}`` (a client by id or MAC:
    its ``id`` and ``mac``; only clients registered with ``add_client``, the
    others are 404, as from an API without that call) and the network
    clients listing ``/api/v1/networks/{net}/clients`` (the clients
    registered with ``add_client``, ``lastSeen`` within the timespan, oldest
    registered first, ``perPage`` capped at ``listing_page_cap``, paged with
    ``Link: rel=next``)."""

    def __init__(self, api_key: str, per_page_cap: int = 1000) -> None:
        super().__init__()
        self.api_key = api_key
        self.per_page_cap = per_page_cap
        self.events: dict[tuple[str, str], list[dict]] = {}
        self.clients: dict[str, list[dict]] = {}  # network -> [{"id", "mac", ...}]
        self.lookups: list[str] = []  # the client names asked about, in order
        self.event_requests: list[str] = []  # the client names connectivityEvents was asked for
        self.unanswerable: set[str] = set()  # client names whose lookup answers garbage
        self.link_base: str | None = None  # where Link rel=next points (default: here)
        self.listing_page_cap = 5000
        self.listings: list[dict[str, str]] = []  # the query of each network clients listing request
        self._last_page: bytes | None = None

    def add(self, network: str, client: str, records: list[dict]) -> None:
        self.events.setdefault((network, client), []).extend(records)
        self.events[(network, client)].sort(key=lambda r: r["occurredAt"])

    def add_client(self, network: str, client_id: str, mac: str, last_seen: dt.datetime | None = None) -> None:
        """A client known by id and MAC: both name it in either call (and
        the listing reports it, last seen at ``last_seen``, default now)."""
        seen = int((last_seen or dt.datetime.now(dt.UTC)).timestamp())
        self.clients.setdefault(network, []).append({
            "id": client_id, "mac": mac.lower(), "description": None, "ip": "10.0.0.17", "ssid": "Office",
            "status": "Online", "firstSeen": seen - 86400, "lastSeen": seen, "recentDeviceConnection": "Wireless",
            "recentDeviceSerial": "Q234-ABCD-5678", "manufacturer": "Apple", "os": "iOS", "vlan": "100"})

    def _client(self, network: str, name: str) -> dict | None:
        mac = _mac(name)
        return next((c for c in self.clients.get(network, []) if c["id"] == name or (mac and c["mac"] == mac)), None)

    async def start(self) -> None:  # type: ignore[override]
        app = web.Application()
        app.router.add_get("/api/v1/networks/{net}/wireless/clients/{client}/connectivityEvents", self.handle)
        app.router.add_get("/api/v1/networks/{net}/clients/{client}", self.lookup)
        app.router.add_get("/api/v1/networks/{net}/clients", self.listing)
        await super().start(app)

    async def listing(self, request: web.Request) -> web.Response:
        """``GET /networks/{net}/clients``: t0 or timespan (default 1 day, at
        most 31), perPage 3-5000, startingAfter from the Link header."""
        if (moved := self.redirect(request)) is not None:
            return moved
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"errors": ["Invalid API key"]}, status=401)
        injected = await self.fault()
        if injected is not None and injected.status != 299:
            return injected
        q = request.query
        self.listings.append(dict(q))
        network = request.match_info["net"]
        if network not in self.clients:
            return web.json_response({"errors": ["Network not found"]}, status=404)
        try:
            per_page = int(q.get("perPage", 10))
            timespan = float(q.get("timespan", 86400))
        except ValueError:
            return web.json_response({"errors": ["Invalid parameter"]}, status=400)
        if not 3 <= per_page <= 5000 or not 0 < timespan <= 31 * 86400:
            return web.json_response({"errors": ["perPage or timespan out of range"]}, status=400)
        per_page = min(per_page, self.listing_page_cap)
        since = _parse_time(q["t0"]).timestamp() if "t0" in q else time.time() - timespan
        after = int(base64.urlsafe_b64decode(q["startingAfter"]).decode()) if "startingAfter" in q else -1
        window = [(i, c) for i, c in enumerate(self.clients[network]) if c["lastSeen"] >= since and i > after]
        page = window[:per_page]
        links = [f"<{self.url}{request.path}?{request.query_string}>; rel=first"]
        if len(window) > per_page:
            token = base64.urlsafe_b64encode(str(page[-1][0]).encode()).decode()
            query = "&".join(f"{k}={v}" for k, v in q.items() if k != "startingAfter")
            links.append(f"<{self.link_base or self.url}{request.path}?{query}&startingAfter={token}>; rel=next")
        return web.json_response([c for _, c in page], headers={"Link": ", ".join(links)})

    async def lookup(self, request: web.Request) -> web.Response:
        """A client's details; faults are left for the events (they count as requests)."""
        if (moved := self.redirect(request)) is not None:
            return moved
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"errors": ["Invalid API key"]}, status=401)
        self.request_times.append(time.monotonic())
        self.lookups.append(request.match_info["client"])
        if request.match_info["client"] in self.unanswerable:
            return web.Response(body=b"<html>oops</html>", content_type="text/html")
        client = self._client(request.match_info["net"], request.match_info["client"])
        if client is None:
            return web.json_response({"errors": ["Not found"]}, status=404)
        return web.json_response(client)

    async def handle(self, request: web.Request) -> web.Response:
        if (moved := self.redirect(request)) is not None:
            return moved
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"errors": ["Invalid API key"]}, status=401)
        injected = await self.fault()
        if injected is not None and injected.status != 299:
            return injected
        if injected is not None and self._last_page is not None:  # a repeated page
            return web.Response(body=self._last_page[0], content_type="application/json",
                                headers={"Link": self._last_page[1]})
        network, name = request.match_info["net"], request.match_info["client"]
        self.event_requests.append(name)
        records = self.events.get((network, name))
        known = self._client(network, name)
        if records is None and known is not None:  # a client's events, by its id or its MAC
            records = self.events.get((network, known["id"]), self.events.get((network, known["mac"]), []))
        if records is None:
            return web.json_response({"errors": ["Not found"]}, status=404)
        q = request.query
        per_page = min(int(q.get("perPage", 1000)), self.per_page_cap)
        t0 = _parse_time(q["t0"]) if "t0" in q else dt.datetime.min.replace(tzinfo=dt.UTC)
        t1 = _parse_time(q["t1"]) if "t1" in q else dt.datetime.max.replace(tzinfo=dt.UTC)
        after = int(base64.urlsafe_b64decode(q["startingAfter"]).decode()) if "startingAfter" in q else -1
        window = [(i, r) for i, r in enumerate(records) if _iso(t0) <= r["occurredAt"] <= _iso(t1) and i > after]
        page = window[:per_page]
        body = "[" + ",".join(json.dumps(r) for _, r in page) + "]"
        links = [f"<{self.url}{request.path}?{request.query_string}>; rel=first"]
        if len(window) > per_page:
            token = base64.urlsafe_b64encode(str(page[-1][0]).encode()).decode()
            base_query = {k: v for k, v in q.items() if k != "startingAfter"}
            query = "&".join(f"{k}={v}" for k, v in base_query.items())
            links.append(f"<{self.link_base or self.url}{request.path}?{query}&startingAfter={token}>; rel=next")
        link = ", ".join(links)
        self._last_page = (body.encode(), link)
        return web.Response(body=body.encode(), content_type="application/json", headers={"Link": link})


class FakeMojo(FakeServer):
    """``/new/webservice/login/key/...`` and ``.../V5/devices/clients/connectionlogs``."""

    def __init__(self, key_id: str, key_value: str) -> None:
        super().__init__()
        self.key = (key_id, key_value)
        self.logs: dict[str, list[dict]] = {}
        self.log_requests: list[str] = []  # the clientmacaddress of each connectionlogs request
        self.sessions: set[str] = set()
        self.logins = 0

    def add(self, mac: str, logs: list[dict]) -> None:
        self.logs.setdefault(mac, []).extend(logs)

    def expire_sessions(self) -> None:
        self.sessions.clear()

    async def start(self) -> None:  # type: ignore[override]
        app = web.Application()
        app.router.add_post("/new/webservice/login/key/{ci}/{timeout}", self.login)
        app.router.add_get("/new/webservice/V5/devices/clients/connectionlogs", self.handle)
        await super().start(app)

    async def login(self, request: web.Request) -> web.Response:
        if (moved := self.redirect(request)) is not None:
            return moved
        body = await request.json()
        if body.get("type") != "apikeycredentials" or (body.get("keyId"), body.get("keyValue")) != self.key:
            return web.json_response({"error": "invalid credentials"}, status=401)
        self.logins += 1
        session = f"s{self.logins}"
        self.sessions.add(session)
        response = web.json_response({"status": "SUCCESS"})
        response.set_cookie("JSESSIONID", session, path="/")
        return response

    async def handle(self, request: web.Request) -> web.Response:
        if (moved := self.redirect(request)) is not None:
            return moved
        if request.cookies.get("JSESSIONID") not in self.sessions:
            return web.json_response({"error": "session expired"}, status=401)
        injected = await self.fault()
        if injected is not None and injected.status != 299:
            return injected
        q = request.query
        self.log_requests.append(q["clientmacaddress"])
        logs = self.logs.get(q["clientmacaddress"].lower(), [])
        fromtime, totime = int(q.get("fromtime", -1)), int(q.get("totime", -1))
        chosen = [log for log in logs if (fromtime == -1 or log["timestamp"] >= fromtime)
                  and (totime == -1 or log["timestamp"] <= totime)]
        chosen.sort(key=lambda log: log["timestamp"], reverse=True)
        chosen = chosen[: int(q.get("limit", 1000))]
        success = [json.dumps(log) for log in chosen if log["eventType"] == "Success"]
        failure = [json.dumps(log) for log in chosen if log["eventType"] != "Success"]
        body = '{"successLogs":[' + ",".join(success) + '],"failureLogs":[' + ",".join(failure) + "]}"
        return web.Response(body=body.encode(), content_type="application/json")


class Recorder(FakeServer):
    """Any method, any path: records each request (method, path and query,
    headers, body) and answers an empty JSON array."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    async def start(self) -> None:  # type: ignore[override]
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        await super().start(app)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        return web.json_response([])


def meraki_records(n: int, start: dt.datetime, step_seconds: float = 1.0, tag: str = "") -> list[dict]:
    types = ["assoc", "auth", "dhcp", "dns", "roam", "connection", "disassoc", "deauth", "sticky"]
    return [{"occurredAt": _iso(start + dt.timedelta(seconds=i * step_seconds)), "band": "5", "ssidNumber": 1,
             "type": types[i % len(types)], "subtype": "success", "severity": ["good", "bad", "info"][i % 3],
             "durationMs": i % 500, "channel": 44, "rssi": -40 - i % 40, "deviceSerial": "Q234-ABCD-5678",
             "captureId": f"{tag}{i}"} for i in range(n)]


def mojo_logs(n: int, start: dt.datetime, mac: str, step_seconds: int = 1) -> list[dict]:
    out = []
    for i in range(n):
        ts = int(start.timestamp()) + i * step_seconds
        log = {"macAddress": mac, "protocol": "BG", "locationId": {"type": "locallocationid", "id": 95},
               "eventType": "Success" if i % 3 else "Failure", "bssid": "00:11:74:88:af:70", "channel": 1,
               "timestamp": ts, "associatedAPName": "Mojo_88:AF:8F", "ssid": "WebAppsDev",
               "associationTimestamp": ts * 1000 - 20000, "authenticationTimestamp": ts * 1000,
               "networkTimestamp": ts * 1000, "autoTestSessionId": None, "autoTestStatusCode": 0,
               "autoTestStatus": None}
        if log["eventType"] == "Success":
            log |= {"dhcpLatency": i % 30, "aaaLatency": 0, "dnsLatency": i % 7}
        else:
            log |= {"failureCode": 8, "failure": "EAPOL Handshake Failure", "subFailureCode": 41,
                    "subFailure": "Maximum retries for 3/4 msg reached.", "fileId": f"F-{i}"}
        out.append(log)
    return out
