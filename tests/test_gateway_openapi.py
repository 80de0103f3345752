"""The gateway's OpenAPI description (gateway/openapi.yaml), checked three ways.

1. **The document**: valid OpenAPI 3 (schemathesis validates it against the
   OpenAPI 3.0 meta-schema), every operation documented (id, summary,
   description, security, the error responses every path can answer), every
   error response in the error format of the shape its path belongs to, and
   every ``Retry-After`` in place.
2. **Coverage of the contract**: every ``google.api.http`` binding in the
   gateway's descriptor set (``gateway/connlog.pb``, what Envoy's transcoder
   serves) has its operation, naming its RPC (``x-connlog-rpc``), and nothing
   else is described; every field of a request message that is not bound to
   the path or the body is a documented query parameter; every ``/v1`` body
   schema (``x-connlog-message``) lists exactly its message's JSON fields. A
   new binding or field without a spec entry fails here.
3. **The live gateway** (a real Envoy in front of the in-process services on
   a real PostgreSQL): schemathesis generates requests from the description
   for every operation (its coverage phase: boundary and out-of-bound values,
   missing and duplicated parameters; then random positive and negative
   cases, some anchored on stored data, valid credentials or storable events
   so that they get past "not found" and "rejected") and checks each answer:
   no 5xx (``not_a_server_error``), status code, content type, headers
   (``Retry-After``, ``Link``, ``Set-Cookie``) and body conform to the
   description, and no body holds Python exception text. What the operations
   that store events accepted is then read back through ``/v1``, Meraki's and
   Mojo's shapes and checked alike. Every distinct failure (operation,
   status, message) is collected and the test fails listing them all, each
   with the checks it failed and a curl command that repeats it (``$GATEWAY``,
   ``$KEY_<ROLE>``, ``$SESSION`` stand for the test's own). Hand-written
   probes (``test_edge_requests_conform``) cover what generation rarely
   reaches (Envoy's own replies, gRPC-reserved headers, Unicode digits, the
   documented bounds) and the authentication matrix (no credentials: 401; a
   role without the permission: 403; in the shape's format).

Each fuzzed operation gets tenants of its own (a pool of them, so that
Meraki's per-organisation rate limit, 20 requests a second in the tests,
is not what most requests meet; a 429 is a documented answer all the same),
seeded with events of every source, a Mojo session, and for the vendor-sync
operations a source (the vendor-sync service and a gateway routing to it are
started by this module: the shared ``gateway`` fixture has no vendor-sync
upstream).

Profiles:

* quick (default, CI): the coverage phase plus ``CONNLOG_FUZZ_EXAMPLES``
  (default 40) random cases per operation; the whole file takes well under
  a minute on two cores.
  Its Hypothesis seed is fixed, so a CI run repeats the previous one.
* long, by hand: ``CONNLOG_FUZZ_EXAMPLES=1000 .venv/bin/pytest
  tests/test_gateway_openapi.py -q`` (about ten minutes on two cores), with a
  new seed each run. ``CONNLOG_FUZZ_SEED`` fixes the seed (a failing run
  prints its own); ``CONNLOG_FUZZ_OPERATIONS`` (a substring of
  ``METHOD /path``) limits the run to some operations; ``-s`` prints each
  operation's request count and status codes.

Why not ``@schema.parametrize()``: the services under test run on the test
session's event loop, so a synchronous schemathesis test would block the very
loop that must answer it. Each operation's cases therefore run in a worker
thread (``asyncio.to_thread``) with schemathesis' Python API
(``APIOperation.as_strategy``, ``Case.call``, ``Case.validate_response``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import hypothesis
import pytest
import requests
import schemathesis
import yaml
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb

# (imported for their descriptors: the request messages are looked up by name)
from connlog.api.v1 import meraki_service_pb2, mojo_service_pb2, query_service_pb2, zequenze_service_pb2  # noqa: F401
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.devtools.ports import free_port
from tests.support.factories import full_event, now, simple_event
from tests.support.gateway import envoy_in_front
from tests.support.services import vendor_sync_service

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "gateway" / "openapi.yaml"
DESCRIPTOR_SET = ROOT / "gateway" / "connlog.pb"
SPEC: dict = yaml.safe_load(SPEC_PATH.read_text())

EXAMPLES = int(os.environ.get("CONNLOG_FUZZ_EXAMPLES", "40"))
# The quick profile is repeatable (a fixed seed); a run by hand explores anew
# each time unless given a seed.
SEED = int(os.environ.get("CONNLOG_FUZZ_SEED") or (secrets.randbits(32) if "CONNLOG_FUZZ_EXAMPLES" in os.environ
                                                  else 20261125))
ONLY = os.environ.get("CONNLOG_FUZZ_OPERATIONS", "")
METHODS = ("get", "put", "post", "patch", "delete")

# The documented network, clients and AP of the spec's examples: every fuzz
# tenant has events there.
NETWORK = "N_24329156"
CLIENT_ID = "k74272e"
CLIENT_MAC = "f0:d7:aa:df:59:a2"
AP_SERIAL = "Q234-ABCD-5678"
ANCHOR = "ANCHORxTENANT"  # a value replaced by the tenant's own (organisation id, event id, source id, key)

# Python exception text that must never reach a caller.
LEAKS = ("Traceback", "<class '", 'File "/', "Error:", "Exception:", "asyncpg", "grpc._cython", "OverflowError",
         "ValueError", "KeyError", "TypeError", "AttributeError")


def operation_labels() -> list[str]:
    return [f"{method.upper()} {path}" for path, item in SPEC["paths"].items() for method in item
            if method in METHODS]


# ---------------------------------------------------------------------------
# 1. the document
# ---------------------------------------------------------------------------

def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _ref_name(node: Any) -> str | None:
    """The component a (response) schema refers to, through oneOf."""
    if isinstance(node, dict) and "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    return None


# The error body of each shape, by path prefix (connlog.core.rest.SHAPES;
# google.rpc.Status elsewhere).
ERROR_SCHEMAS = [
    ("/api/v1/device_app_connection_log", {"ZequenzeDetail", "ZequenzeFieldErrors", "ZequenzeErrors"}),
    ("/api/v1/", {"MerakiErrors"}),
    ("/V5/", {"MojoError"}),
    ("/new/webservice/", {"MojoError"}),
    ("/v1/", {"Status"}),
]


def _error_schemas(path: str) -> set[str]:
    return next(names for prefix, names in ERROR_SCHEMAS if path.startswith(prefix))


def test_openapi_document_is_valid():
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    schema.validate()  # the OpenAPI 3.0 meta-schema
    assert SPEC["openapi"].startswith("3.")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(operation_labels())
    schemes = set(SPEC["components"]["securitySchemes"])
    assert schemes == {"bearerAuth", "merakiApiKey", "mojoSession"}
    ids = set()
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert op.get("operationId") and op["operationId"] not in ids, where
            ids.add(op["operationId"])
            assert op.get("summary") and op.get("description") and op.get("tags"), where
            assert op.get("x-connlog-rpc"), where
            assert "security" in op, f"{where}: say which credentials it takes (or [] for none)"
            for requirement in op["security"]:
                assert set(requirement) <= schemes, where
            for param in op.get("parameters", []):
                param = _resolve(param)
                assert param.get("description") and param.get("schema"), f"{where}: {param['name']}"
            declared = {_resolve(p)["name"] for p in op.get("parameters", []) if _resolve(p)["in"] == "path"}
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), where
            responses = op["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert len(success) == 1, where
            assert {"400", "431", "503"} <= set(responses), f"{where}: every path can answer 400, 431 and 503"
            if op["security"]:
                assert "401" in responses, where
            if "requestBody" in op:
                assert "413" in responses, f"{where}: a body can be too large"
            for code, response in responses.items():
                response = _resolve(response)
                assert response.get("description"), f"{where} {code}"
                assert set(response.get("content", {})) == {"application/json"}, f"{where} {code}"
                headers = {name.lower(): _resolve(h) for name, h in response.get("headers", {}).items()}
                if code in ("429", "503"):
                    assert headers.get("retry-after", {}).get("required"), f"{where} {code}: Retry-After"
                if code.startswith(("4", "5")):
                    body = response["content"]["application/json"]["schema"]
                    names = {_ref_name(body)} | {_ref_name(s) for s in _resolve(body).get("oneOf", [])}
                    # Envoy's HTTP codec refuses oversized or malformed headers before it
                    # reads the path: those answers are google.rpc.Status on every path
                    codec = {"Status"} if code in ("400", "431") else set()
                    assert names & (_error_schemas(path) | codec), f"{where} {code}: not the shape's error body"
                    assert not {"MerakiErrors", "MojoError", "Status", "ZequenzeErrors", "ZequenzeDetail",
                                "ZequenzeFieldErrors"} - _error_schemas(path) - codec & names, f"{where} {code}"
            assert "500" not in responses and "502" not in responses, f"{where}: a 500 is a bug, not an answer"


def test_openapi_schemas_compile():
    """Every schema compiles as JSON Schema (patterns included) with the
    validator schemathesis checks responses with."""
    import jsonschema_rs

    for name in SPEC["components"]["schemas"]:
        jsonschema_rs.Draft4Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


# ---------------------------------------------------------------------------
# 2. coverage of the contract
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Binding:
    rpc: str  # connlog.api.v1.Service.Method
    method: str
    template: str
    body: str
    request: str  # the request message's full name


def http_bindings() -> list[Binding]:
    """Every google.api.http binding (additional ones included) in the
    descriptor set Envoy's transcoder serves."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    found = []
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
                for one in [rule, *rule.additional_bindings]:
                    verb = one.WhichOneof("pattern")
                    template = one.custom.path if verb == "custom" else getattr(one, verb)
                    found.append(Binding(f"{file.package}.{service.name}.{method.name}",
                                         one.custom.kind.lower() if verb == "custom" else verb,
                                         template, one.body, method.input_type.lstrip(".")))
    return found


def _template_key(template: str) -> str:
    """``/v1/{name=networks/*}/x`` and ``/v1/networks/{network}/x`` alike:
    every variable segment is ``{}``."""
    def segments(match: re.Match) -> str:
        inner = match.group(1)
        if "=" not in inner:
            return "{}"
        return re.sub(r"\*\*?", "{}", inner.split("=", 1)[1])
    return re.sub(r"\{([^}]*)\}", segments, template)


# Described paths that are no binding of their own: Zequenze documents its
# path with a trailing slash, which Envoy's transcoder matches too.
ALIASES = {("post", "/api/v1/device_app_connection_log/"): ("post", "/api/v1/device_app_connection_log")}


def test_openapi_covers_every_http_binding():
    bindings = http_bindings()
    assert len(bindings) >= 19, "the descriptor set lost its bindings?"
    described = {(method, _template_key(path)): op for path, item in SPEC["paths"].items()
                 for method, op in item.items() if method in METHODS}
    missing = [f"{b.method.upper()} {b.template} ({b.rpc})" for b in bindings
               if (b.method, _template_key(b.template)) not in described]
    assert not missing, "bindings without an operation in gateway/openapi.yaml:\n" + "\n".join(missing)
    for b in bindings:
        op = described[(b.method, _template_key(b.template))]
        assert op["x-connlog-rpc"] == b.rpc, f"{b.template}: described as {op['x-connlog-rpc']}"
    served = {(b.method, _template_key(b.template)) for b in bindings}
    extra = []
    for method, key in described:
        target = ALIASES.get((method, key), (method, key))
        if (target[0], _template_key(target[1])) not in served:
            extra.append(f"{method.upper()} {key}")
    assert not extra, "operations the gateway does not serve:\n" + "\n".join(extra)


def _message(name: str):
    return descriptor_pool.Default().FindMessageTypeByName(name)


def test_openapi_documents_every_request_field():
    """A request field bound to neither the path nor the body is a query
    parameter: it is documented under its JSON name."""
    problems = []
    for b in http_bindings():
        path_fields = {re.split(r"[=.]", var)[0] for var in re.findall(r"\{([^}]*)\}", b.template)}
        message = _message(b.request)
        if b.body == "*":
            continue
        query = {f.json_name for f in message.fields if f.name not in path_fields and f.name != b.body}
        for (path, item) in SPEC["paths"].items():
            for method, op in item.items():
                if method != b.method or _template_key(path) != _template_key(b.template):
                    continue
                documented = {_resolve(p)["name"] for p in op.get("parameters", []) if _resolve(p)["in"] == "query"}
                if documented != query:
                    problems.append(f"{method.upper()} {path}: documented {sorted(documented)}, "
                                    f"request fields {sorted(query)}")
    assert not problems, "\n".join(problems)


def test_openapi_messages_list_every_field():
    """Each ``x-connlog-message`` schema has exactly its message's fields."""
    problems = []
    for name, body in SPEC["components"]["schemas"].items():
        message = body.get("x-connlog-message")
        if not message:
            continue
        fields = {f.json_name for f in _message(message).fields}
        if set(body["properties"]) != fields:
            problems.append(f"{name}: {sorted(set(body['properties']) ^ fields)}")
    assert not problems, "schemas out of step with their proto messages:\n" + "\n".join(problems)
    for name in ("ConnectionEvent", "SyncSource", "IngestConnectionEventsResponse", "SyncSourceStatus"):
        assert SPEC["components"]["schemas"][name].get("x-connlog-message")


# ---------------------------------------------------------------------------
# 3. the live gateway
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def sync_service(suite, pool):
    """The vendor-sync service, scheduling nothing by itself during the tests
    (sources are polled only when a test asks) and failing fast on vendors
    that do not answer."""
    async with vendor_sync_service(
        suite.settings, pool, sync_ingest_address=suite.ingest_address, sync_schedule_seconds=3600.0,
        sync_http_timeout_seconds=2.0, sync_http_attempts=1, sync_backoff_base_seconds=0.05,
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def sync_gateway(suite, sync_service, tmp_path_factory):
    """A gateway like ``gateway``, with the vendor-sync service behind it."""
    async with envoy_in_front(suite.settings, tmp_path_factory.mktemp("envoy-openapi"),
                              ingest=suite.ingest_address, query=suite.query_address,
                              vendor_sync=f"127.0.0.1:{sync_service.port}") as running:
        yield running.url


@dataclass
class FuzzTenant:
    """A tenant with its keys, a Mojo session and the ids of what it holds."""

    tenant_id: str
    keys: dict[str, str]
    session: str = ""
    event_id: str = ""
    source_id: str = ""

    def anchors(self) -> dict[str, str]:
        return {"organizationId": self.tenant_id, "connectionEvent": self.event_id, "syncSource": self.source_id}


def seed_events() -> list[pb.ConnectionEvent]:
    """Events of every source for the documented client: connlog's own,
    Meraki's and Mojo's (their records kept verbatim) and a full one."""
    samples = resources.files("connlog.devtools").joinpath("samples")
    base = now() - dt.timedelta(hours=2)
    events = []
    full = full_event(base)
    full.network_id = NETWORK
    events.append(full)
    for i, step in enumerate((pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_DHCP, pb.CONNECTION_STEP_DNS)):
        events.append(simple_event(NETWORK, mac=CLIENT_MAC, client_id=CLIENT_ID, when=base + dt.timedelta(minutes=i),
                                   step=step, outcome=pb.OUTCOME_SUCCESS, severity=pb.SEVERITY_GOOD,
                                   radio=pb.Radio(band=pb.BAND_2_4_GHZ, channel=6),
                                   wlan=pb.Wlan(ssid="corp", ssid_number=0, bssid="00:11:74:88:af:60"),
                                   access_point=pb.AccessPoint(serial=AP_SERIAL, name="ap-1")))
    from connlog.shapes.meraki import records as meraki_vendor
    from connlog.shapes.mojo import records as mojo_vendor

    for i, record in enumerate(json.loads((samples / "meraki_connectivity_events.json").read_text())):
        record = dict(record, occurredAt=(base + dt.timedelta(minutes=10 + i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        events.append(meraki_vendor.to_event(record, network_id=NETWORK, client_id=CLIENT_ID, mac_address=CLIENT_MAC))
    logs = json.loads((samples / "mojo_connectionlogs.json").read_text())
    for i, record in enumerate(logs["successLogs"] + logs["failureLogs"]):
        when = int((base + dt.timedelta(minutes=20 + i)).timestamp())
        record = dict(record, timestamp=when, macAddress=CLIENT_MAC)
        events.append(mojo_vendor.to_event(record, network_id=NETWORK))
    return events


async def make_fuzz_tenants(make_tenant, clients, gateway_url: str, count: int, *, sync_stub=None,
                            sync_port: int = 0) -> list[FuzzTenant]:
    tenants = []
    events = seed_events()
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        for _ in range(count):
            tenant = await make_tenant()
            fuzz = FuzzTenant(tenant.tenant_id, dict(tenant.keys))
            reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events),
                                                                metadata=tenant.md())
            assert reply.rejected_count == 0, [r for r in reply.results if r.reason]
            fuzz.event_id = reply.results[0].event_id
            key_id = tenant.keys["viewer"].split("_")[1]
            login = await http.post("/new/webservice/login/key/fuzz/60",
                                    json={"type": "apikeycredentials", "keyId": key_id,
                                          "keyValue": tenant.keys["viewer"]})
            assert login.status_code == 200, login.text
            fuzz.session = login.cookies["JSESSIONID"]
            if sync_stub is not None:
                source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"http://127.0.0.1:{sync_port}/api/v1",
                                        credential="meraki-key", network_id=NETWORK, clients=[CLIENT_ID],
                                        organization_id="1215707")
                source.poll_interval.FromSeconds(3600)
                created = await sync_stub.CreateSyncSource(spb.CreateSyncSourceRequest(sync_source=source),
                                                           metadata=tenant.md("administrator"))
                fuzz.source_id = created.name.split("/", 1)[1]
            tenants.append(fuzz)
    return tenants


# --- what each operation is called with ------------------------------------

def _role(label: str) -> str:
    method, path = label.split(" ", 1)
    if "device_app_connection_log" in path:
        return "device"
    if path.startswith("/v1/syncSources") and method != "GET":
        return "administrator"
    if path == "/v1/connectionEvents:ingest":
        return "operator"
    return "viewer"


def _auth_forms(label: str) -> list[str]:
    path = label.split(" ", 1)[1]
    if path.startswith("/api/v1/networks") or path.startswith("/api/v1/organizations"):
        return ["meraki", "bearer", "session"]
    if path.endswith("/connectionlogs"):
        return ["bearer", "session", "meraki"]
    if "/login/key/" in path:
        return ["none"]
    return ["bearer"]


def _anchored_path_parameters(label: str) -> dict[str, str] | None:
    """Path values that reach stored data (``ANCHOR``: the tenant's own)."""
    path = label.split(" ", 1)[1]
    values = {"networkId": NETWORK, "clientId": CLIENT_ID, "organizationId": ANCHOR, "network": NETWORK,
              "connectionEvent": ANCHOR, "syncSource": ANCHOR, "clientIdentifier": "fuzz", "timeout": "30",
              "client": CLIENT_MAC}
    names = re.findall(r"\{([^}]+)\}", path)
    return {name: values[name] for name in names} if names else None


AUTH_HEADERS = {"authorization", "x-cisco-meraki-api-key", "cookie"}


@dataclass
class FailureClass:
    """Answers of one operation that fail alike: same status, same message
    (its variable parts left out)."""

    operation: str
    status: int | None
    message: str
    body: str
    reproduce: str
    checks: dict[str, str] = field(default_factory=dict)  # check title -> its first report


@dataclass
class FuzzRun:
    """One operation's fuzz run, in a worker thread."""

    schema: Any
    operation: Any
    base_url: str
    tenants: list[FuzzTenant]
    checks: list
    failures: dict = field(default_factory=dict)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    calls: int = 0
    read: int = 0  # events' (network, client) pairs and MACs read back

    def __post_init__(self) -> None:
        self._http = requests.Session()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._forms = _auth_forms(self.operation.label)

    def credentials(self, tenant: FuzzTenant, turn: int) -> tuple[dict[str, str], dict[str, str]]:
        form = self._forms[turn % len(self._forms)]
        key = tenant.keys[_role(self.operation.label)]
        if form == "bearer":
            return {"Authorization": f"Bearer {key}"}, {}
        if form == "meraki":
            return {"X-Cisco-Meraki-API-Key": key}, {}
        if form == "session":
            return {}, {"JSESSIONID": tenant.session}
        return {}, {}

    def prepare(self, case, turn: int) -> tuple[dict[str, str], dict[str, str]]:
        """Put the tenant's own ids in place of ``ANCHOR`` and its
        credentials in place of generated ones (every 8th case keeps what was
        generated: no or junk credentials)."""
        tenant = self.tenants[turn % len(self.tenants)]
        anchors = tenant.anchors()
        for name, value in list((case.path_parameters or {}).items()):
            if value == ANCHOR:
                case.path_parameters[name] = anchors[name]
        if "/login/key/" in self.operation.path and isinstance(case.body, dict) and case.body.get("keyId") == ANCHOR:
            key = tenant.keys["viewer"]
            case.body = dict(case.body, keyId=key.split("_")[1], keyValue=key)
        if turn % 8 == 7 or self._forms == ["none"]:
            return {}, {}
        for name in list(case.headers or {}):
            if name.lower() in AUTH_HEADERS:
                del case.headers[name]
        if case.cookies:
            case.cookies.pop("JSESSIONID", None)
        return self.credentials(tenant, turn // len(self.tenants))

    def close(self) -> None:
        self._http.close()

    def run_case(self, case) -> None:
        turn = next(self._turn)
        headers, cookies = self.prepare(case, turn)
        self.check(case, headers, cookies)

    def check(self, case, headers: dict, cookies: dict | None = None):
        """Send the case, check the answer, record what fails; the response
        (None when there was none)."""
        try:
            response = case.call(base_url=self.base_url, session=self._http, headers=headers, cookies=cookies or {},
                                 timeout=60)
        except (requests.ConnectionError, requests.Timeout) as exc:  # the gateway hung up or never answered
            self._record(case, headers, None, "no answer", type(exc).__name__, repr(exc)[:300])
            return None
        with self._lock:
            self.calls += 1
            self.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=self.checks, additional_checks=[no_python_internals],
                                   headers=headers)
        except (AssertionError, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            for failure in getattr(exc, "exceptions", [exc]):
                title = getattr(failure, "title", type(failure).__name__)
                self._record(case, headers, response.status_code, title, _message_class(response.text),
                             str(failure)[:600], response)
        return response

    def read_back(self, limit: int) -> None:
        """Read every event the fuzz stored back through ``/v1``, Meraki's
        and Mojo's shapes (whatever was accepted must print in every shape):
        each answer is checked like the fuzz's own."""
        schema = self.schema
        listing = schema["/v1/networks/{network}/connectionEvents"]["GET"]
        meraki = schema["/api/v1/networks/{networkId}/wireless/clients/{clientId}/connectivityEvents"]["GET"]
        mojo = schema["/V5/devices/clients/connectionlogs"]["GET"]
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=31) + dt.timedelta(minutes=10)
        window = {"t0": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "t1": (start + dt.timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        later = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).timestamp())
        for tenant in self.tenants:
            headers = {"Authorization": f"Bearer {tenant.keys['viewer']}"}
            clients, macs, token = set(), set(), ""
            for _ in range(50):
                query = {"pageSize": 1000, **({"pageToken": token} if token else {})}
                response = self.check(listing.Case(path_parameters={"network": "-"}, query=query), headers)
                if response is None or response.status_code != 200:
                    break
                page = response.json()
                for event in page.get("connectionEvents", []):
                    client = event.get("client", {})
                    for name in (client.get("clientId"), client.get("macAddress")):
                        if name:
                            clients.add((event["networkId"], name))
                    if client.get("macAddress"):
                        macs.add(client["macAddress"])
                token = page.get("nextPageToken", "")
                if not token:
                    break
            self.read += min(len(clients), limit) + min(len(macs), limit)
            for network, client in sorted(clients)[:limit]:
                case = meraki.Case(path_parameters={"networkId": quote(network, safe=""),
                                                    "clientId": quote(client, safe="")},
                                   query={"perPage": 1000, **window})
                for _ in range(5):  # honour Meraki's per-organisation rate limit, as its clients do
                    response = self.check(case, headers)
                    if response is None or response.status_code != 429:
                        break
                    wait = response.headers.get("retry-after") or ["1"]  # schemathesis: a list per header
                    time.sleep(min(float(wait[0] if isinstance(wait, list) else wait), 5.0))
            for mac in sorted(macs)[:limit]:
                self.check(mojo.Case(query={"clientmacaddress": mac, "limit": 10000, "totime": later}), headers)

    def _curl(self, case, headers) -> str:
        """A curl command repeating the case, with ``$KEY`` / ``$SESSION`` for
        the test tenants' credentials and ``$GATEWAY`` for the address."""
        command = case.as_curl_command(headers=headers, base_url=self.base_url)
        for tenant in self.tenants:
            for role, key in tenant.keys.items():
                command = command.replace(key, f"$KEY_{role.upper()}").replace(key.split("_")[1], "$KEY_ID")
            if tenant.session:
                command = command.replace(tenant.session, "$SESSION")
            command = command.replace(tenant.tenant_id, "$TENANT")
        return command.replace(self.base_url, "$GATEWAY")

    def _record(self, case, headers, status, check, message, detail, response=None) -> None:
        key = (case.operation.label, status, message)
        with self._lock:
            found = self.failures.get(key)
            if found is None:
                body = response.text[:300] if response is not None else ""
                found = self.failures[key] = FailureClass(
                    case.operation.label, status, message, body, self._curl(case, headers))
            found.checks.setdefault(check, detail)


def no_python_internals(ctx, response, case):
    """No answer carries Python exception text."""
    text = response.text if hasattr(response, "text") else ""
    leaked = [marker for marker in LEAKS if marker in text]
    if leaked:
        raise AssertionError(f"the body holds Python internals ({', '.join(leaked)})")


def _message_class(text: str) -> str:
    """An error message with its variable parts (values, ids, numbers) left
    out: one class per distinct failure, not per input."""
    try:
        body = json.loads(text)
    except ValueError:
        return f"not JSON: {text[:40]!r}" if text else "empty body"
    message = ""
    if isinstance(body, dict):
        for key in ("errors", "error", "message", "detail"):
            if key in body:
                value = body[key]
                message = value[0] if isinstance(value, list) and value else value
                break
        else:
            message = "{" + ",".join(sorted(body))[:60] + "}"
    elif isinstance(body, list):
        message = "[...]"
    message = re.sub(r"'[^']*'|\"[^\"]*\"|\([^)]*\)", "…", str(message))
    message = re.sub(r"[0-9]+", "0", message)
    return message.split(": ")[0][:80]


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "output": {"sanitization": {"enabled": False}},  # credentials are replaced by placeholders below
        "generation": {"mode": "all"},
        "phases": {"coverage": {"unexpected-methods": [], "generate-duplicate-query-parameters": True}},
    })


def _storable(case):
    """An ingest case whose events have what every stored event needs (a
    network, a client, a recent time, a step); the rest stays generated."""
    events = case.body.get("events") if isinstance(case.body, dict) else None
    for i, event in enumerate(events if isinstance(events, list) else []):
        if not isinstance(event, dict):
            continue
        when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=7 * i + 1)
        event.update(networkId=f"N_fuzz{i % 3}", occurTime=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        event.pop("tenantId", None)
        if event.get("step") in (None, "CONNECTION_STEP_UNSPECIFIED"):
            event["step"] = "CONNECTION_STEP_DHCP"
        client = event.get("client") if isinstance(event.get("client"), dict) else {}
        if not client.get("clientId") and not client.get("macAddress"):
            client["clientId"] = f"fuzz-client-{i % 5}"
        event["client"] = client
    return case


def run_operation(schema, label: str, base_url: str, tenants: list[FuzzTenant], examples: int, seed: int) -> FuzzRun:
    """One operation: schemathesis' coverage phase, then ``examples`` random
    cases (positive and negative; some anchored on the tenants' own data),
    then, for the operations that store events, the read-back. Runs in a
    worker thread."""
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    method, path = label.split(" ", 1)
    operation = schema[path][method]
    run = FuzzRun(schema, operation, base_url, tenants, [
        not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
        response_schema_conformance])
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    coverage = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=coverage):
        run.run_case(case)

    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    anchored = _anchored_path_parameters(label)
    body = None
    if "/login/key/" in path:
        body = {"type": "apikeycredentials", "keyId": ANCHOR, "keyValue": ANCHOR}
    extra = {"path_parameters": anchored} if anchored else {}
    if anchored:
        strategies += [operation.as_strategy(generation_mode=mode, **extra) for mode in modes]
    if body:  # valid credentials, with generated path values
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, body=body))
    if path == "/v1/connectionEvents:ingest":  # generated events, made storable: they are read back after
        storable = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(_storable)
        strategies += [storable] * 2
    if method == "PATCH":  # an empty mask updates every field: name a few, so that some updates succeed
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE,
                                                query={"updateMask": "displayName,enabled"}, **extra))

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                         suppress_health_check=list(HealthCheck), derandomize=False, report_multiple_bugs=False)
    @hypothesis.given(case=st.one_of(strategies))
    def fuzz(case):
        run.run_case(case)

    try:
        fuzz()
        if label in READ_BACK:
            run.read_back(limit=max(20, examples))
    finally:
        run.close()
    return run


# Operations that store events: what they accepted is read back through every shape.
READ_BACK = {"POST /v1/connectionEvents:ingest", "POST /api/v1/device_app_connection_log/",
             "POST /api/v1/device_app_connection_log"}


@pytest.fixture(scope="module")
def fuzz_schema():
    return schemathesis.openapi.from_path(SPEC_PATH, config=fuzz_config())


def _report(runs: list[FuzzRun], seed: int) -> str:
    lines = [f"{sum(len(r.failures) for r in runs)} distinct failure(s) (CONNLOG_FUZZ_SEED={seed}):"]
    for run in runs:
        for failure in run.failures.values():
            details = "\n    ".join(f"[{check}] " + " ".join(detail.split())[:300]
                                    for check, detail in failure.checks.items())
            lines.append(f"\n* {failure.operation} -> {failure.status} {failure.message!r}\n    {details}\n"
                         f"    body: {failure.body}\n    {failure.reproduce}")
    return "\n".join(lines)


@pytest.mark.timeout(1800)
def _streaming(label: str) -> bool:
    """A stream that runs until its client leaves (the live tail): not
    fuzzed here (every valid case would wait out the timeout), see
    tests/test_live_tail.py; its auth probes below still run."""
    method, path = label.split(" ", 1)
    return bool(SPEC["paths"][path][method.lower()].get("x-connlog-streaming"))


@pytest.mark.parametrize("label", [label for label in operation_labels() if ONLY in label and not _streaming(label)])
async def test_gateway_conforms_to_openapi(label, fuzz_schema, gateway, sync_gateway, sync_service, make_tenant,
                                           clients):
    vendor_sync = label.split(" ", 1)[1].startswith("/v1/syncSources")
    base_url = sync_gateway if vendor_sync else gateway.url
    meraki = label.split(" ", 1)[1].startswith(("/api/v1/networks", "/api/v1/organizations"))
    stub = None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sync_service.port}") as channel:
        if vendor_sync:
            stub = sgrpc.VendorSyncServiceStub(channel)
        tenants = await make_fuzz_tenants(make_tenant, clients, base_url, 8 if meraki else 2, sync_stub=stub,
                                          sync_port=free_port())
        started = time.monotonic()
        try:
            run = await asyncio.to_thread(run_operation, fuzz_schema, label, base_url, tenants, EXAMPLES, SEED)
        finally:
            if stub is not None:  # leave no source behind for other modules' sync workers to poll
                for tenant in tenants:
                    admin = (("authorization", f"Bearer {tenant.keys['administrator']}"),)
                    listed = await stub.ListSyncSources(spb.ListSyncSourcesRequest(page_size=1000), metadata=admin)
                    for source in listed.sync_sources:
                        await stub.DeleteSyncSource(spb.DeleteSyncSourceRequest(name=source.name), metadata=admin)
    elapsed = time.monotonic() - started
    print(f"{label}: {run.calls} requests in {elapsed:.1f}s, statuses {dict(sorted(run.statuses.items()))}"
          + (f", {run.read} clients read back" if run.read else ""))
    assert run.calls > 0
    if run.failures:
        pytest.fail(_report([run], SEED), pytrace=False)


# --- hand-written probes ---------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One request the description must account for (``expect``: the status
    the intended behaviour answers with, or None for any documented one)."""

    label: str  # the operation, "METHOD /path" as in the description
    url: str  # path and query as sent, %-encoded
    role: str | None = "viewer"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    expect: int | None = None
    repeat: int = 1  # sent this many times: what fails only now and then fails here too


MERAKI_EVENTS = "GET /api/v1/networks/{networkId}/wireless/clients/{clientId}/connectivityEvents"
MERAKI_ORGS = "GET /api/v1/organizations"
MOJO_LOGS = "GET /V5/devices/clients/connectionlogs"
MOJO_LOGIN = "POST /new/webservice/login/key/{clientIdentifier}/{timeout}"
ZEQUENZE = "POST /api/v1/device_app_connection_log/"
V1_LIST = "GET /v1/networks/{network}/connectionEvents"
V1_INGEST = "POST /v1/connectionEvents:ingest"
SYNC_CREATE = "POST /v1/syncSources"
EVENTS_URL = f"/api/v1/networks/{NETWORK}/wireless/clients/{CLIENT_ID}/connectivityEvents"
LOGS_URL = f"/V5/devices/clients/connectionlogs?clientmacaddress={CLIENT_MAC}"
ZEQUENZE_LOG = json.dumps({"network_name": "Office WiFi 5GHz", "network_type": "wi"}).encode()
BIG_HEADER = (("x-big", "a" * 70_000),)

PROBES = {
    # values at the documented bounds, and Unicode digits
    "meraki ssidNumber superscript digit": Probe(MERAKI_EVENTS, EVENTS_URL + "?ssidNumber=%C2%B2", expect=400),
    "meraki ssidNumber 14": Probe(MERAKI_EVENTS, EVENTS_URL + "?ssidNumber=14", expect=200),
    "meraki perPage 3": Probe(MERAKI_EVENTS, EVENTS_URL + "?perPage=3", expect=200),
    "meraki timespan 2678400": Probe(MERAKI_EVENTS, EVENTS_URL + "?timespan=2678400", expect=200),
    "meraki types[] form": Probe(MERAKI_EVENTS, EVENTS_URL + "?types%5B%5D=auth&types%5B%5D=dhcp", expect=200),
    "mojo totime at its maximum": Probe(MOJO_LOGS, LOGS_URL + "&totime=253402300799", expect=200),
    "mojo limit 10000": Probe(MOJO_LOGS, LOGS_URL + "&limit=10000", expect=200),
    "mojo failuretype int32 min": Probe(MOJO_LOGS, LOGS_URL + "&failuretype=-2147483648", expect=200),
    "mojo login timeout superscript": Probe(MOJO_LOGIN, "/new/webservice/login/key/x/%C2%B9", role=None,
                                            body=b'{"type": "apikeycredentials", "keyId": "a", "keyValue": "b"}',
                                            expect=400),
    "mojo login keyId with NUL": Probe(MOJO_LOGIN, "/new/webservice/login/key/x/30", role=None,
                                       body=b'{"type": "apikeycredentials", "keyId": "a\\u0000", "keyValue": "b"}'),
    "sync source base URL with a bad IPv6 host": Probe(
        SYNC_CREATE, "/v1/syncSources", role="administrator", expect=400,
        body=json.dumps({"vendor": "VENDOR_MERAKI", "baseUrl": "http://[::1", "credential": "k",
                         "networkId": NETWORK, "clients": [CLIENT_ID]}).encode()),
    "sync source display name with NUL": Probe(
        SYNC_CREATE, "/v1/syncSources", role="administrator", expect=400,
        body=json.dumps({"vendor": "VENDOR_MERAKI", "baseUrl": "http://127.0.0.1:9/api/v1", "credential": "k",
                         "networkId": NETWORK, "clients": [CLIENT_ID], "displayName": "a\x00b"}).encode()),
    "v1 event id beyond int64": Probe("GET /v1/networks/{network}/connectionEvents/{connectionEvent}",
                                      f"/v1/networks/{NETWORK}/connectionEvents/9999999999999999999"),
    # request headers a REST client may send: never a 5xx, never a gRPC answer
    "header name not a gRPC metadata key (meraki)": Probe(MERAKI_ORGS, "/api/v1/organizations",
                                                          headers=(("x#y", "1"),), expect=200),
    "header name not a gRPC metadata key (mojo)": Probe(MOJO_LOGS, LOGS_URL, headers=(("x&y", "1"),), expect=200),
    "header name not a gRPC metadata key (zequenze)": Probe(ZEQUENZE, "/api/v1/device_app_connection_log/",
                                                            role="device", headers=(("x~y%a9", "1"),),
                                                            body=ZEQUENZE_LOG, expect=201),
    "header name not a gRPC metadata key (v1)": Probe(V1_LIST, "/v1/networks/-/connectionEvents",
                                                      headers=(("x$y", "1"),), expect=200),
    "grpc-timeout header malformed": Probe(MERAKI_ORGS, "/api/v1/organizations", headers=(("grpc-timeout", "xyz"),),
                                           expect=200),
    "grpc-timeout header of 1ns": Probe(V1_LIST, "/v1/networks/-/connectionEvents", headers=(("grpc-timeout", "1n"),),
                                        expect=200),
    "-bin header not base64": Probe(MOJO_LOGS, LOGS_URL, headers=(("x-data-bin", "!!!"),), expect=200),
    # long URLs, well within Envoy's header limit (60 KiB)
    "meraki 10 KB query": Probe(MERAKI_EVENTS, EVENTS_URL + "?perPage=3" + "&types[]=assoc" * 800, expect=200,
                                repeat=10),
    "meraki long deviceSerial": Probe(MERAKI_EVENTS, EVENTS_URL + "?deviceSerial=" + "a" * 10_000, expect=400),
    "mojo 10 KB query": Probe(MOJO_LOGS, LOGS_URL + "&x=" + "a" * 10_000, expect=400, repeat=10),
    "v1 10 KB query": Probe(V1_LIST, "/v1/networks/-/connectionEvents?ignored=" + "a" * 10_000, expect=200,
                            repeat=10),
    # Envoy's own replies, in the shape of the path
    "meraki headers too large": Probe(MERAKI_ORGS, "/api/v1/organizations", headers=BIG_HEADER, expect=431),
    "mojo headers too large": Probe(MOJO_LOGS, LOGS_URL, headers=BIG_HEADER, expect=431),
    "zequenze headers too large": Probe(ZEQUENZE, "/api/v1/device_app_connection_log/", role="device",
                                        headers=BIG_HEADER, body=ZEQUENZE_LOG, expect=431),
    "v1 headers too large": Probe(V1_LIST, "/v1/networks/-/connectionEvents", headers=BIG_HEADER, expect=431),
    "meraki control character in a header": Probe(MERAKI_ORGS, "/api/v1/organizations",
                                                  headers=(("x-note", "a\x01b"),), expect=400),
    "zequenze body too large": Probe(ZEQUENZE, "/api/v1/device_app_connection_log/", role="device",
                                     body=b'{"network_name": "' + b"a" * 1_100_000 + b'"}', expect=413),
    "mojo login body too large": Probe(MOJO_LOGIN, "/new/webservice/login/key/x/30", role=None,
                                       body=b'{"keyId": "' + b"a" * 1_100_000 + b'"}', expect=413),
    "meraki path not UTF-8": Probe("GET /api/v1/networks/{networkId}", "/api/v1/networks/%FF", expect=400),
    "mojo query not UTF-8": Probe(MOJO_LOGS, LOGS_URL + "&logtype=%FF", expect=400),
    "zequenze body not JSON": Probe(ZEQUENZE, "/api/v1/device_app_connection_log", role="device", body=b"{",
                                    expect=400),
    "v1 ingest body not JSON": Probe(V1_INGEST, "/v1/connectionEvents:ingest", role="operator", body=b"{",
                                     expect=400),
    "v1 ingest body of the wrong type": Probe(V1_INGEST, "/v1/connectionEvents:ingest", role="operator",
                                              body=b'{"events": 5}', expect=400),
}


def _auth_probes() -> dict[str, Probe]:
    """Every secured operation: no credentials is a 401, a role without the
    permission a 403, in the shape's format."""
    probes = {}
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method not in METHODS or not op["security"]:
                continue
            label = f"{method.upper()} {path}"
            values = {"networkId": NETWORK, "clientId": CLIENT_ID, "organizationId": "org", "network": NETWORK,
                      "connectionEvent": "1", "syncSource": "0123456789abcdef", "client": CLIENT_MAC}
            url = re.sub(r"\{([^}]+)\}", lambda m, values=values: values[m.group(1)], path)
            if path.endswith("/connectionlogs"):
                url += f"?clientmacaddress={CLIENT_MAC}"
            body = b"{}" if "requestBody" in op else None
            probes[f"no credentials: {label}"] = Probe(label, url, role=None, body=body, expect=401)
            role = _role(label)
            other = {"viewer": "device", "device": "viewer", "operator": "viewer", "administrator": "operator"}[role]
            probes[f"{other} key: {label}"] = Probe(label, url, role=other, body=body, expect=403)
    return probes


PROBES.update(_auth_probes())


@pytest.fixture(scope="module")
async def probe_tenant(pool, clients, gateway):
    """One tenant for every probe, with the spec's example data."""
    from connlog.core.auth import Role
    from connlog.store.accounts import AccountStore
    from tests.support.services import role_key

    tenant_id = f"t-probe-{secrets.token_hex(4)}"
    keys = {}
    for role in Role:
        keys[role.value] = (await role_key(AccountStore(pool), tenant_id, role, "dev-probe")).token
    reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=seed_events()),
                                                        metadata=(("authorization", f"Bearer {keys['operator']}"),))
    assert reply.rejected_count == 0
    return FuzzTenant(tenant_id, keys)


@pytest.mark.parametrize("name", list(PROBES))
async def test_edge_requests_conform(name, fuzz_schema, gateway, sync_gateway, probe_tenant):
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    probe = PROBES[name]
    method, path = probe.label.split(" ", 1)
    operation = fuzz_schema[path][method]
    headers = dict(probe.headers)
    if probe.role:
        headers["authorization"] = f"Bearer {probe_tenant.keys[probe.role]}"
    if probe.body is not None:
        headers["content-type"] = "application/json"
    base_url = sync_gateway if path.startswith("/v1/syncSources") else gateway.url
    case = operation.Case(path_parameters={name: "x" for name in re.findall(r"\{([^}]+)\}", path)})
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        for _ in range(probe.repeat):
            response = await http.request(method, probe.url, headers=headers, content=probe.body)
            if probe.expect is not None and response.status_code != probe.expect:
                problems.append(f"expected {probe.expect}, got {response.status_code}")
            try:
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                         content_type_conformance, response_headers_conformance,
                                                         response_schema_conformance, no_python_internals])
            except (AssertionError, BaseExceptionGroup) as exc:
                problems += [getattr(f, "title", str(f)) for f in getattr(exc, "exceptions", [exc])]
            if problems:
                break
    shown = {k: (v if len(v) < 60 else v[:20] + "…") for k, v in headers.items() if k != "authorization"}
    assert not problems, (f"{probe.label} {probe.url[:120]} headers={shown}: {'; '.join(problems)}\n"
                          f"-> {response.status_code} {response.headers.get('content-type')} {response.text[:300]}")
