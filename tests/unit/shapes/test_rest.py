"""The shared REST edge (no database, no Envoy): each shape's authentication
step in its own words and with its own credentials, and where a call's
parameters come from (the gateway's raw path, or a direct gRPC caller's
request fields)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from connlog.api.v1 import meraki_service_pb2, mojo_service_pb2
from connlog.core.auth import KeyAuthenticator
from connlog.shapes.meraki import params as meraki_params
from connlog.shapes.meraki.servicer import AUTH as MERAKI
from connlog.shapes.mojo import params as mojo_params
from connlog.shapes.mojo.servicer import AUTH as MOJO
from connlog.shapes.rest import PATH_HEADER, RestError, rest_call
from connlog.shapes.zequenze.servicer import AUTH as ZEQUENZE
from connlog.store.accounts import KeyRecord

SESSION = "s3ss10n"


class Accounts:
    """The two look-ups KeyAuthenticator makes, in memory: one key per role,
    and one session (of the viewer's key)."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.keys = {
            role: KeyRecord(f"{role}id", "t1", 1, role, "dev-1" if role == "device" else None,
                            hashlib.sha256(b"secret").digest(), "", now, None)
            for role in ("viewer", "operator", "device")
        }

    async def find_key(self, key_id: str):
        return next((k for k in self.keys.values() if k.key_id == key_id), None)

    async def session_key(self, session_hash: bytes):
        return self.keys["viewer"] if session_hash == hashlib.sha256(SESSION.encode()).digest() else None


def token(role: str) -> str:
    return f"clk_{role}id_secret"


class Context:
    """A ServicerContext as far as the REST edge reads one."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self._metadata = tuple(metadata.items())

    def invocation_metadata(self):
        return self._metadata


KEYS = KeyAuthenticator(Accounts(), 0)

CASES = {
    # Meraki: bearer, its own API-key header, and a Mojo login's session
    "meraki bearer": (MERAKI, {"authorization": f"Bearer {token('viewer')}"}, "viewer"),
    "meraki key header": (MERAKI, {"x-cisco-meraki-api-key": token("operator")}, "operator"),
    "meraki mojo session": (MERAKI, {"cookie": f"a=b; JSESSIONID={SESSION}"}, "viewer"),
    "meraki nothing": (MERAKI, {}, (401, "Invalid API key")),
    "meraki blank key header": (MERAKI, {"x-cisco-meraki-api-key": "  "}, (401, "Invalid API key")),
    "meraki bad key": (MERAKI, {"x-cisco-meraki-api-key": "clk_viewerid_nope"}, (401, "Invalid API key")),
    "meraki forged session": (MERAKI, {"cookie": "JSESSIONID=forged"}, (401, "Invalid API key")),
    "meraki device key": (MERAKI, {"authorization": f"Bearer {token('device')}"},
                          (403, "This API key may not read events")),
    # Mojo: bearer, its login's session, and Meraki's API-key header
    "mojo session": (MOJO, {"cookie": f"JSESSIONID={SESSION}"}, "viewer"),
    "mojo key header": (MOJO, {"x-cisco-meraki-api-key": token("viewer")}, "viewer"),
    "mojo nothing": (MOJO, {}, (401, "authentication required: log in or send a valid API key")),
    "mojo other cookie": (MOJO, {"cookie": f"SESSION={SESSION}"},
                          (401, "authentication required: log in or send a valid API key")),
    "mojo device key": (MOJO, {"authorization": f"Bearer {token('device')}"},
                        (403, "this key may not read connection logs")),
    # Zequenze: a device's bearer key, nothing else
    "zequenze device": (ZEQUENZE, {"authorization": f"Bearer {token('device')}"}, "device"),
    "zequenze nothing": (ZEQUENZE, {}, (401, "Authentication credentials were not provided.")),
    "zequenze only other credentials": (ZEQUENZE, {"x-cisco-meraki-api-key": token("device"),
                                                   "cookie": f"JSESSIONID={SESSION}"},
                                        (401, "Authentication credentials were not provided.")),
    "zequenze not bearer": (ZEQUENZE, {"authorization": f"Token {token('device')}"}, (401, "Invalid token.")),
    "zequenze bad key": (ZEQUENZE, {"authorization": "Bearer clk_deviceid_nope"}, (401, "Invalid token.")),
    "zequenze operator key": (ZEQUENZE, {"authorization": f"Bearer {token('operator')}"},
                              (403, "Only a device token may register connection logs.")),
}


@pytest.mark.parametrize(("auth", "metadata", "expected"), CASES.values(), ids=list(CASES))
async def test_each_shape_authenticates_in_its_own_words(auth, metadata, expected):
    if isinstance(expected, str):
        assert (await auth.principal(KEYS, Context(metadata))).role.value == expected
    else:
        with pytest.raises(RestError) as caught:
            await auth.principal(KEYS, Context(metadata))
        assert (caught.value.status, caught.value.message) == expected


def test_the_gateways_raw_query_is_the_one_source():
    """Through the gateway the parameters come from the raw path alone (the
    transcoder never sees a shape's query, so the typed fields are empty)."""
    request = meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest(network_id="N", client_id="c")
    context = Context({PATH_HEADER: "/api/v1/networks/N/wireless/clients/c/connectivityEvents?types[]=auth&perPage=5",
                       "x-connlog-origin": "https://gw"})
    call = rest_call(context, request, meraki_params.KNOWN)
    assert call.via_gateway and call.origin == "https://gw"
    assert call.path == "/api/v1/networks/N/wireless/clients/c/connectivityEvents"
    assert call.params == [("types", "auth"), ("perPage", "5")]


@pytest.mark.parametrize(
    ("request_", "names", "params"),
    [
        (meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest(
            network_id="N", client_id="c", per_page="5", types=["assoc", "roam"], ssid_number="1"),
         meraki_params.KNOWN, [("perPage", "5"), ("types", "assoc"), ("types", "roam"), ("ssidNumber", "1")]),
        (meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest(network_id="N", client_id="c"),
         meraki_params.KNOWN, []),
        (mojo_service_pb2.ListClientConnectionLogsRequest(clientmacaddress="02:00:00:00:00:01", limit="3"),
         mojo_params.KNOWN, [("clientmacaddress", "02:00:00:00:00:01"), ("limit", "3")]),
    ],
)
def test_a_direct_grpc_callers_fields_stand_for_the_query(request_, names, params):
    call = rest_call(Context({}), request_, names)
    assert not call.via_gateway and call.path == "" and call.params == params
