"""connlog.store.row: the stored row, defined once by ``StoredEvent``, and
everything derived from it (staging DDL, COPY columns, INSERT texts, read
columns, restore on read) agreeing with it, with the schema, and with
``normalise``."""

from __future__ import annotations

import datetime as dt
import re
import struct
import types
import typing
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.principal import Principal, Role
from connlog.ingest.normalise import IngestWindow, normalise
from connlog.store import events as store_events
from connlog.store import row
from connlog.store.row import StoredEvent
from tests.support.copy_format import copy_fields, timestamptz
from tests.support.factories import full_event, now, simple_event

# field -> (type sent, connection_events column, unnest element type, cast on insert, payload field it comes from)
LAYOUT = {
    "network_id": ("text", "network_ref", "int", None, "network_id"),
    "occurred_at": ("timestamptz", "occurred_at", "timestamptz", None, None),
    "dedup_key": ("bytea", "dedup_key", "bytea", None, None),
    "step": ("smallint", "step", "smallint", None, None),
    "outcome": ("smallint", "outcome", "smallint", None, None),
    "severity": ("smallint", "severity", "smallint", None, None),
    "band": ("smallint", "band", "smallint", None, None),
    "vendor": ("smallint", "vendor", "smallint", None, None),
    "client_mac": ("text", "client_mac", "text", "macaddr", "client.mac_address"),
    "client_id": ("text", "client_id", "text", None, "client.client_id"),
    "ssid": ("text", "ssid", "text", None, "wlan.ssid"),
    "ssid_number": ("smallint", "ssid_number", "smallint", None, None),
    "ap_serial": ("text", "ap_serial", "text", None, "access_point.serial"),
    "ap_name": ("text", "ap_name", "text", None, "access_point.name"),
    "bssid": ("text", "bssid", "text", "macaddr", "wlan.bssid"),
    "failure_code": ("int", "failure_code", "int", None, None),
    "payload": ("bytea", "payload", "bytea", None, None),
}
FIELDS = list(enumerate(StoredEvent._fields))


def test_the_layout_table_covers_the_row():
    assert list(LAYOUT) == list(StoredEvent._fields)


# --- the SQL, taken apart ----------------------------------------------------------------------------------------

def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _insert_columns(sql: str) -> list[str]:
    return _list(re.match(r"INSERT INTO connection_events \(([^)]*)\)\n", sql).group(1))


def _select(sql: str) -> list[str]:
    return _list(re.search(r"\nSELECT (.*?)\nFROM ", sql).group(1))


def _unnest(sql: str) -> tuple[list[str], list[str]]:
    match = re.search(r"\nFROM unnest\((.*?)\) AS u\((.*?)\)\n", sql)
    return _list(match.group(1)), _list(match.group(2))


def _staging_columns() -> list[tuple[str, str]]:
    body = re.fullmatch(r"CREATE TEMP TABLE IF NOT EXISTS connlog_staged_events \((.*)\) ON COMMIT DELETE ROWS",
                        row.CREATE_STAGING).group(1)
    return [tuple(part.split()) for part in _list(body)]


@pytest.mark.parametrize(("position", "field"), FIELDS)
def test_every_statement_has_the_field_in_its_place(position, field):
    sent, stored, element, cast, _ = LAYOUT[field]
    assert row.COPY_COLUMNS[position + 1] == stored  # after tenant_ref: COPY rows hold the row as stored
    assert _staging_columns()[position + 1] == (stored, cast or element)
    assert row.TABLE_COLUMNS[position] == stored
    for sql in (row.INSERT, row.INSERT_STAGED, row.INSERT_STAGED_QUIET):
        assert _insert_columns(sql)[position + 1] == stored  # after tenant_ref
    params, aliases = _unnest(row.INSERT)
    assert params[position] == f"${position + 2}::{element}[]"  # $1 is the tenant
    assert aliases[position] == stored
    suffix = f"::{cast}" if cast else ""
    assert _select(row.INSERT)[position + 1] == f"u.{stored}{suffix}"
    assert _select(row.INSERT_STAGED)[position + 1] == f"s.{stored}"  # staged as stored: no cast, no join


@pytest.mark.parametrize(("returning", "quiet"), [(row.INSERT_STAGED, row.INSERT_STAGED_QUIET)])
def test_the_quiet_statement_is_the_returning_one_without_returning(returning, quiet):
    assert returning == quiet + "\nRETURNING id, dedup_key, occurred_at"
    assert "RETURNING" not in quiet
    assert quiet.endswith("ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING")
    assert _insert_columns(quiet)[0] == "tenant_ref" and _select(quiet)[0] == "$1"
    assert len(_insert_columns(quiet)) == len(_select(quiet)) == len(StoredEvent._fields) + 1


def test_the_staged_insert_takes_the_tenants_rows_in_insert_order():
    assert ("FROM connlog_staged_events s WHERE s.tenant_ref = $1\n"
            "ORDER BY s.occurred_at, s.dedup_key\n") in row.INSERT_STAGED
    assert _staging_columns()[0] == ("tenant_ref", "int") and row.COPY_COLUMNS[0] == "tenant_ref"
    assert len(_unnest(row.INSERT)[0]) == len(StoredEvent._fields)


def test_insert_order_is_the_unique_keys_order_within_a_tenant():
    early, late = dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    events = [_stored("N_a", b"\x02", late), _stored("N_a", b"\x01", late), _stored("N_a", b"\x09", early)]
    assert [(e.occurred_at, e.dedup_key) for e in sorted(events, key=row.insert_order)] == [
        (early, b"\x09"), (late, b"\x01"), (late, b"\x02")]


def test_the_store_sends_the_derived_statements():
    assert (store_events.READ_COLUMNS, store_events.StoredEvent) == (row.READ_COLUMNS, row.StoredEvent)
    refs = {"N_a": 7, "N_b": 9}
    events = [_stored("N_a", b"\x01"), _stored("N_b", b"\x02")]
    columns = store_events._columns(events, refs)
    assert len(columns) == len(_unnest(row.INSERT)[0])
    assert columns[0] == [7, 9]  # network ids sent as their refs
    assert columns[1:] == [list(values) for values in list(zip(*events, strict=True))[1:]]


def _stored(network_id: str, key: bytes, when: dt.datetime = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)) -> StoredEvent:
    return StoredEvent(network_id, when, key, 1, 0, 0, 0, 1, "f0:d7:aa:df:59:a2", None, "s", 3, None, None, None, 8,
                       b"p")


def test_table_row_replaces_the_network_id_with_its_ref():
    event = _stored("N_a", b"\x01")
    assert row.table_row(event, 42) == (42, *event[1:])


# --- the schema (migrations) agrees ------------------------------------------------------------------------------

def _table_schema() -> dict[str, tuple[str, bool]]:
    """connection_events' columns in migration 0001: name -> (type, nullable)."""
    sql = resources.files("connlog.store.migrations").joinpath("0001_initial.sql").read_text()
    body = re.search(r"CREATE TABLE connection_events \((.*?)\n\) PARTITION BY", sql, re.S).group(1)
    columns = {}
    for line in body.splitlines():
        match = re.match(r"\s+([a-z_]+)\s+([a-z]+)(.*)", line)
        if match and match.group(1) not in ("PRIMARY", "UNIQUE"):
            columns[match.group(1)] = (match.group(2), "NOT NULL" not in match.group(3))
    return columns


_SQL_TYPES = {"int": "integer"}


@pytest.mark.parametrize(("position", "field"), FIELDS)
def test_each_field_is_stored_in_a_column_of_its_type_and_nullability(position, field):
    name, column = row.COLUMNS[position]
    hint = typing.get_type_hints(StoredEvent)[field]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    sql_type, nullable = _table_schema()[row.TABLE_COLUMNS[position]]
    expected = "integer" if column.network else _SQL_TYPES.get(column.cast or column.pg_type, column.cast
                                                                 or column.pg_type)
    assert name == field
    assert sql_type == expected
    assert nullable == optional


# --- reads: columns and restore --------------------------------------------------------------------------------

RESTORED = [(field, spec[4]) for field, spec in LAYOUT.items() if spec[4] and field != "network_id"]


def test_a_read_selects_the_keys_then_the_restored_columns_in_row_order():
    assert _list(row.READ_COLUMNS) == ["e.id", "n.network_id", "e.occurred_at", "e.received_at", "e.payload",
                                       *(f"e.{field}" for field, _ in RESTORED)]
    assert [name for name, _ in row.RESTORED] == [field for field, _ in RESTORED]
    assert _list(row.READ_COLUMNS)[row.RESTORED_SLICE] == [f"e.{field}" for field, _ in RESTORED]


_PRINCIPAL = Principal("k", "t", 1, Role.OPERATOR, None)


def _window() -> IngestWindow:
    at = now()
    return IngestWindow(at - dt.timedelta(days=31), at + dt.timedelta(days=1), 31)


def _path(message, path: str):
    for part in path.split("."):
        message = getattr(message, part)
    return message


def _read_back(stored: StoredEvent) -> pb.ConnectionEvent:
    """What a read makes of the stored row (connlog.store.events.read_event)."""
    event = pb.ConnectionEvent.FromString(stored.payload)
    event.network_id = stored.network_id
    row.restore_columns(event, [getattr(stored, name) for name, _ in row.RESTORED])
    return event


# The columns normalise gives full_event (canonical forms: MACs lower-case with colons).
FULL_EVENT_COLUMNS = {
    "network_id": "N_784752235069315754", "step": pb.CONNECTION_STEP_AUTHENTICATION, "outcome": pb.OUTCOME_FAILURE,
    "severity": pb.SEVERITY_BAD, "band": pb.BAND_5_GHZ, "vendor": pb.VENDOR_MOJO, "client_mac": "f0:d7:aa:df:59:a2",
    "client_id": "k74272e", "ssid": "WebAppsDev", "ssid_number": 3, "ap_serial": "Q234-ABCD-5678",
    "ap_name": "Mojo_88:AF:8F", "bssid": "00:11:74:88:af:60", "failure_code": 8,
}


@pytest.mark.parametrize(("field", "value"), FULL_EVENT_COLUMNS.items())
def test_normalise_builds_each_field_in_its_place(field, value):
    stored = normalise(full_event(), _PRINCIPAL, _window())
    assert getattr(stored, field) == value


@pytest.mark.parametrize(("field", "path"), RESTORED + [("network_id", "network_id")])
def test_the_payload_leaves_out_what_a_column_holds_and_a_read_puts_it_back(field, path):
    stored = normalise(full_event(), _PRINCIPAL, _window())
    payload = pb.ConnectionEvent.FromString(stored.payload)
    assert _path(payload, path) == ""  # not stored twice
    assert _path(_read_back(stored), path) == FULL_EVENT_COLUMNS[field]


@pytest.mark.parametrize("make", [
    full_event,
    lambda: simple_event(),  # MAC only: no client id, WLAN or AP
    lambda: simple_event(mac="", client_id="c-1", wlan=pb.Wlan(bssid="00-11-22-33-44-55")),
    lambda: simple_event(access_point=pb.AccessPoint(name="lobby")),
], ids=["full", "mac-only", "id-and-bssid", "ap-name-only"])
def test_a_stored_event_reads_back_as_the_normalised_event(make):
    """Store-shape an event, restore it, normalise that again: the same row
    (nothing lost, nothing added: no empty sub-message appears)."""
    stored = normalise(make(), _PRINCIPAL, _window())
    read = _read_back(stored)
    again = normalise(pb.ConnectionEvent.FromString(read.SerializeToString()), _PRINCIPAL, _window())
    assert again == stored
    for _, column in row.RESTORED:
        parent = column.restored_into.rpartition(".")[0]
        if all(getattr(stored, other) is None for other, c in row.RESTORED if c.restored_into.startswith(parent)):
            assert not read.HasField(parent), parent


def test_restore_leaves_values_already_in_old_payloads_alone():
    """Events stored before payloads left the columns out carry them twice."""
    stored = normalise(full_event(), _PRINCIPAL, _window())
    whole = _read_back(stored)
    again = pb.ConnectionEvent.FromString(whole.SerializeToString())
    row.restore_columns(again, [getattr(stored, name) for name, _ in row.RESTORED])
    assert again == whole


# --- a bad declaration is refused ------------------------------------------------------------------------------

def test_the_field_paths_are_checked_against_the_schema():
    assert row._field_path("client.mac_address") == ["client", "mac_address"]
    for bad in ("client.mac", "nothing", "network_id.x"):
        with pytest.raises(TypeError):
            row._field_path(bad)


@pytest.mark.parametrize("field", [name for name, _ in RESTORED])
@pytest.mark.parametrize("make", [full_event, lambda: simple_event()], ids=["full", "mac-only"])
def test_a_read_event_gives_each_column_as_the_whole_event_holds_it(field, make):
    """What a projection reads with ReadEvent.column (the row's column,
    before any put-back) is what the whole event holds, and a ReadEvent of a
    whole event (ReadEvent.of) answers the same."""
    stored = normalise(make(), _PRINCIPAL, _window())
    when = stored.occurred_at
    columns = {name: getattr(stored, name) for name, _ in row.RESTORED}
    record = (1, stored.network_id, when, when, stored.payload, *columns.values())
    keyed = dict(zip(("id", "network_id", "occurred_at", "received_at", "payload", *columns), record, strict=True))

    class Row(tuple):  # an asyncpg Record reads by position and by column name
        def __getitem__(self, key):
            return keyed[key] if isinstance(key, str) else tuple.__getitem__(self, key)

    read = store_events.read_event(Row(record))
    assert read.column(field) == columns[field]
    whole = read.event
    path = dict(RESTORED)[field]
    assert (_path(whole, path) or None) == columns[field]
    assert store_events.ReadEvent.of(whole).column(field) == columns[field]


# --- binary COPY: copy_rows ------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_SMALLINT = st.integers(-(2**15), 2**15 - 1)
_TIMES = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1),
                      timezones=st.just(dt.UTC))
_MACS = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))
_STRATEGIES = {"text": _TEXT, "bytea": st.binary(max_size=64), "smallint": _SMALLINT,
               "int": st.integers(-(2**31), 2**31 - 1), "timestamptz": _TIMES, "macaddr": _MACS}
_NETWORK_IDS = st.sampled_from(["N_a", "N_b", "N_c"])


def _field_strategy(name: str, column: row.Column) -> st.SearchStrategy:
    if column.network:
        return _NETWORK_IDS
    hint = typing.get_type_hints(StoredEvent)[name]
    values = _STRATEGIES[column.stored_type]
    return st.none() | values if type(None) in typing.get_args(hint) else values


_STORED_EVENTS = st.builds(StoredEvent, *(_field_strategy(name, column) for name, column in row.COLUMNS))
_DECODE = {
    "text": lambda b: b.decode(), "bytea": bytes, "smallint": lambda b: struct.unpack(">h", b)[0],
    "int": lambda b: struct.unpack(">i", b)[0], "timestamptz": timestamptz, "macaddr": lambda b: b.hex(":"),
}
_REFS = {"N_a": 7, "N_b": 2**31 - 1, "N_c": 1}


@settings(max_examples=300, deadline=None)
@given(st.lists(_STORED_EVENTS, max_size=5), st.integers(1, 2**31 - 1))
def test_copy_rows_encode_every_value_as_postgresql_binary_copy(events, tenant_ref):
    """Framing, field count, NULLs and each type's binary form, value for
    value, the tenant first and each row's network ref filled in by
    ``bound`` (that PostgreSQL reads them so: tests/test_store.py)."""
    copied = row.copy_rows(events, tenant_ref)
    fields = copy_fields(copied.bound(_REFS))
    assert copied.row_count == len(events) == len(fields)
    for event, sent in zip(events, fields, strict=True):
        assert len(sent) == len(row.COPY_COLUMNS) == len(row.COLUMNS) + 1
        decoded = [None if raw is None else _DECODE[column.stored_type](raw)
                   for raw, (_, column) in zip(sent[1:], row.COLUMNS, strict=True)]
        assert _DECODE["int"](sent[0]) == tenant_ref
        assert decoded == list(row.table_row(event, _REFS[event.network_id]))
    assert copied.days == {e.occurred_at.astimezone(dt.UTC).date() for e in events}
    assert copied.networks.keys() == {e.network_id for e in events}
    # unbound, every network ref is 0, and only the refs differ
    unbound = copy_fields(copied.data)
    assert [f[1] for f in unbound] == [bytes(4)] * len(events)
    assert [f[:1] + f[2:] for f in unbound] == [f[:1] + f[2:] for f in fields]


def test_copy_rows_cannot_be_bound_without_every_networks_ref():
    copied = row.copy_rows([_stored("N_a", b"\x01"), _stored("N_b", b"\x02")], 3)
    with pytest.raises(KeyError, match="N_b"):
        copied.bound({"N_a": 7})


def test_copy_rows_name_the_field_a_type_cannot_be_sent_for(monkeypatch):
    monkeypatch.setattr(row, "COLUMNS", (*row.COLUMNS[:-1], ("payload", row.Column("jsonb"))))
    with pytest.raises(TypeError, match="payload: no binary COPY encoding for jsonb"):
        row._copy_source()
