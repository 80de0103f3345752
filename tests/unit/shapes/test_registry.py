"""The shapes registry (no database): each line is consistent (its service,
servicer and generated add function agree; its servicer takes what its host
process hands it; its fetcher converts into its vendor's events), and the
processes register exactly the shapes they host."""

from __future__ import annotations

import json
import typing
from importlib import resources
from types import SimpleNamespace

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.settings import Settings
from connlog.ingest.pipeline import IngestPipeline
from connlog.query.reader import EventReader
from connlog.shapes import registry
from connlog.vendorsync.fetcher import Fetcher
from connlog.vendorsync.identity import FollowedClient

SHAPES = {shape.name: shape for shape in registry.SHAPES}
BACKEND = {registry.QUERY: EventReader, registry.INGEST: IngestPipeline}
SAMPLES = resources.files("connlog.devtools").joinpath("samples")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=list(SHAPES))
def test_a_line_agrees_with_itself(shape):
    name = shape.descriptor.name
    assert shape.service == f"connlog.api.v1.{name}"
    assert shape.add_servicer.__name__ == f"add_{name}Servicer_to_server"
    assert f"{name}Servicer" in [base.__name__ for base in shape.servicer.__mro__[1:]]
    assert shape.servicer.__module__ == f"connlog.shapes.{shape.name}.servicer"  # its folder
    assert shape.name in pb.Vendor.Name(shape.vendor).lower()
    assert all(prefix.startswith("/") for prefix in shape.path_prefixes)
    assert json.dumps(shape.error_body(404, "gone"))  # a JSON error body
    assert "gone" in json.dumps(shape.error_body(404, "gone"))


@pytest.mark.parametrize("shape", SHAPES.values(), ids=list(SHAPES))
def test_a_servicer_takes_what_its_host_hands_it(shape):
    """Read shapes read through the query service's reader; write shapes
    write through the ingest service's pipeline."""
    hints = typing.get_type_hints(shape.servicer.__init__)
    assert list(hints.values())[1] is BACKEND[shape.host]


def test_hosts():
    assert {name: shape.host for name, shape in SHAPES.items()} == {
        "meraki": registry.QUERY, "mojo": registry.QUERY, "zequenze": registry.INGEST}


class Server:
    """Records what the generated add_*Servicer_to_server functions add."""

    def __init__(self) -> None:
        self.services: list[str] = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.services += [handler.service_name() for handler in handlers]

    def add_registered_method_handlers(self, service, handlers) -> None:
        pass


@pytest.mark.parametrize("host", [registry.QUERY, registry.INGEST])
def test_a_process_registers_the_shapes_it_hosts(host):
    server = Server()
    ctx = SimpleNamespace(settings=Settings(), pool=None, read_pool=None, read_gate=None, auth=None)
    names = registry.register(server, ctx, host, object())
    expected = [shape.service for shape in registry.SHAPES if shape.host == host]
    assert names == expected and server.services == expected


def test_vendor_sync_pulls_the_shapes_with_a_fetcher():
    assert {pb.Vendor.Name(v) for v in registry.SYNCED} == {"VENDOR_MERAKI", "VENDOR_MOJO"}
    for vendor, shape in registry.SYNCED.items():
        assert registry.fetcher_of(vendor) is shape.fetcher
        assert issubclass(shape.fetcher, Fetcher) and shape.fetcher.DEFAULT_RATE > 0
    with pytest.raises(KeyError):
        registry.fetcher_of(pb.VENDOR_ZEQUENZE)


@pytest.mark.parametrize(("vendor", "records"), [
    (pb.VENDOR_MERAKI, json.loads(SAMPLES.joinpath("meraki_connectivity_events.json").read_text())),
    (pb.VENDOR_MOJO, json.loads(SAMPLES.joinpath("mojo_connectionlogs.json").read_text())["failureLogs"]),
])
def test_a_fetcher_converts_into_its_vendors_events(vendor, records):
    fetcher = registry.fetcher_of(vendor).__new__(registry.fetcher_of(vendor))  # no HTTP needed to convert
    client = FollowedClient("k1", ["k1"], client_id="k1", mac="f0:d7:aa:df:59:a2")
    for record in records:
        event = fetcher.to_event(record, json.dumps(record), network_id="N_1", client=client)
        assert event.source.vendor == vendor and event.network_id == "N_1"
        assert event.client.mac_address == "f0:d7:aa:df:59:a2"
        assert event.vendor_record.data == json.dumps(record)


def test_cli_vendor_choices_are_the_synced_shapes():
    from connlog.cli import _parser

    create = _parser()._subparsers._group_actions[0].choices["sources"]
    create = create._subparsers._group_actions[0].choices["create"]
    [vendor] = [a for a in create._actions if a.dest == "vendor"]
    assert vendor.choices == [shape.name for shape in registry.SYNCED.values()] == ["meraki", "mojo"]
