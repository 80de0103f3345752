"""The stored row of a connection event, defined once.

``StoredEvent`` declares the row: one field per value stored, in the order
the row is built (``connlog.ingest.normalise``, once per ingested event) and
sent (COPY records, ``unnest`` arrays), each field's ``Column`` telling how it
is stored. Everything that depends on that order or those types is derived
from it here, never written out again:

* ``COPY_COLUMNS`` and ``copy_rows``: rows in PostgreSQL's binary COPY
  format, laid out as ``connection_events`` stores them (built where the rows
  are: the ingest worker processes send the service process bytes, not
  rows), copied straight into ``connection_events`` or, should some be
  stored already, into ``CREATE_STAGING``'s per-connection staging table of
  the same columns;
* ``INSERT`` (``INSERT ... SELECT ... FROM unnest(...) ... RETURNING``,
  small batches whose ids are answered) and ``INSERT_STAGED`` /
  ``INSERT_STAGED_QUIET`` (from the staging table, with and without its
  ``RETURNING`` clause), built from the same parts;
* ``TABLE_COLUMNS``: the ``connection_events`` columns the row fills;
* ``READ_COLUMNS`` and ``restore_columns``: what a read selects, and how a
  read puts back into the parsed payload what the columns hold (the payload
  is stored without them).
"""

from __future__ import annotations

import binascii
import datetime as dt
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, get_args, get_type_hints

from connlog.api.v1 import connection_event_pb2 as pb


@dataclass(frozen=True, slots=True)
class Column:
    """How one ``StoredEvent`` field is stored.

    ``pg_type``: its SQL type as sent (the staging table's column, the
    ``unnest`` array's element). ``cast``: the type ``connection_events``
    stores it as, where that differs (text sent, macaddr stored).
    ``restored_into``: the ``ConnectionEvent`` field (a dotted path) the value
    came from; the stored payload leaves that field out and a read puts the
    column back into it. ``network``: the value is a network id, stored as the
    tenant's ``network_ref`` (an int: the small path sends the refs, the
    COPY rows hold the ref as well: ``CopyRows.bound``)."""

    pg_type: str
    cast: str | None = None
    restored_into: str | None = None
    network: bool = False

    @property
    def stored_type(self) -> str:
        """Its type in ``connection_events`` (and so in COPY rows)."""
        return "int" if self.network else self.cast or self.pg_type


class StoredEvent(NamedTuple):
    """A valid, normalised event with the columns it is stored under (a
    named tuple: one is built per ingested event, and tuples build fastest).
    ``payload`` is the serialized event without the fields that columns with
    ``restored_into`` hold; ``restore_columns`` puts them back."""

    network_id: Annotated[str, Column("text", restored_into="network_id", network=True)]
    occurred_at: Annotated[dt.datetime, Column("timestamptz")]
    dedup_key: Annotated[bytes, Column("bytea")]
    step: Annotated[int, Column("smallint")]
    outcome: Annotated[int, Column("smallint")]
    severity: Annotated[int, Column("smallint")]
    band: Annotated[int, Column("smallint")]
    vendor: Annotated[int, Column("smallint")]
    client_mac: Annotated[str | None, Column("text", cast="macaddr", restored_into="client.mac_address")]
    client_id: Annotated[str | None, Column("text", restored_into="client.client_id")]
    ssid: Annotated[str | None, Column("text", restored_into="wlan.ssid")]
    ssid_number: Annotated[int | None, Column("smallint")]
    ap_serial: Annotated[str | None, Column("text", restored_into="access_point.serial")]
    ap_name: Annotated[str | None, Column("text", restored_into="access_point.name")]
    bssid: Annotated[str | None, Column("text", cast="macaddr", restored_into="wlan.bssid")]
    failure_code: Annotated[int | None, Column("int")]
    payload: Annotated[bytes, Column("bytea")]


def _column_table() -> tuple[tuple[str, Column], ...]:
    """(field, Column) of every ``StoredEvent`` field, in order, checked."""
    hints = get_type_hints(StoredEvent, include_extras=True)
    table = []
    for name in StoredEvent._fields:
        columns = [m for m in getattr(hints[name], "__metadata__", ()) if isinstance(m, Column)]
        if len(columns) != 1:
            raise TypeError(f"StoredEvent.{name} needs exactly one Column annotation")
        table.append((name, columns[0]))
    if sum(column.network for _, column in table) != 1:
        raise TypeError("StoredEvent needs exactly one network column")
    for _, column in table:
        if column.restored_into is not None:
            _field_path(column.restored_into)  # raises for a path ConnectionEvent does not have
    return tuple(table)


def _field_path(path: str) -> list[str]:
    """The parts of a dotted ConnectionEvent field path, checked against the schema."""
    parts = path.split(".")
    descriptor = pb.ConnectionEvent.DESCRIPTOR
    for part in parts[:-1]:
        field = descriptor.fields_by_name.get(part)
        if field is None or field.message_type is None:
            raise TypeError(f"ConnectionEvent has no field {path!r}")
        descriptor = field.message_type
    if parts[-1] not in descriptor.fields_by_name:
        raise TypeError(f"ConnectionEvent has no field {path!r}")
    return parts


COLUMNS: tuple[tuple[str, Column], ...] = _column_table()
NETWORK_FIELD = next(name for name, column in COLUMNS if column.network)
NETWORK_REF = "network_ref"  # the connection_events column a network id is stored as

TABLE = "connection_events"
STAGING_TABLE = "connlog_staged_events"


def _table_column(name: str, column: Column) -> str:
    return NETWORK_REF if column.network else name


TENANT_REF = "tenant_ref"
# The connection_events columns a row fills (besides tenant_ref), in row order.
TABLE_COLUMNS: tuple[str, ...] = tuple(_table_column(name, column) for name, column in COLUMNS)
# What a COPY row holds: the tenant, then the row's columns as stored.
COPY_COLUMNS: tuple[str, ...] = (TENANT_REF, *TABLE_COLUMNS)

# The staging table holds COPY rows as they are sent.
CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ({TENANT_REF} int, "
    + ", ".join(f"{_table_column(name, column)} {column.stored_type}" for name, column in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
# The staging table, created if need be and emptied of rows staged earlier
# in the same transaction (connlog.store.events).
CREATE_STAGING_EMPTY = f"{CREATE_STAGING};\nDELETE FROM {STAGING_TABLE}"


def _value(alias: str, name: str, column: Column) -> str:
    expression = f"{alias}.{name}"
    return f"{expression}::{column.cast}" if column.cast else expression


# The parts of the INSERT statements: ($1 is always the tenant_ref).
_INSERT_INTO = f"INSERT INTO {TABLE} (tenant_ref, {', '.join(TABLE_COLUMNS)})"
_FROM_UNNEST = (
    "SELECT $1, " + ", ".join(_value("u", _table_column(n, c), c) for n, c in COLUMNS)
    + "\nFROM unnest(" + ", ".join(
        f"${i}::{'int' if c.network else c.pg_type}[]" for i, (_, c) in enumerate(COLUMNS, start=2))
    + f") AS u({', '.join(TABLE_COLUMNS)})"
)
_FROM_STAGING = (
    "SELECT $1, " + ", ".join(f"s.{column}" for column in TABLE_COLUMNS)
    + f"\nFROM {STAGING_TABLE} s WHERE s.{TENANT_REF} = $1"
    # in insert order, as the small path's arrays and COPY rows are (see connlog.store.events)
    + "\nORDER BY s.occurred_at, s.dedup_key"
)
_ON_CONFLICT = "ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING"
RETURNING = "RETURNING id, dedup_key, occurred_at"

# Parameters: $1 tenant_ref, then one array per field (the network column's
# holding network_refs), in row order.
INSERT = "\n".join((_INSERT_INTO, _FROM_UNNEST, _ON_CONFLICT, RETURNING))
# Parameters: $1 tenant_ref; the rows are in the staging table.
INSERT_STAGED = "\n".join((_INSERT_INTO, _FROM_STAGING, _ON_CONFLICT, RETURNING))
INSERT_STAGED_QUIET = "\n".join((_INSERT_INTO, _FROM_STAGING, _ON_CONFLICT))


def insert_order(event: StoredEvent) -> tuple[dt.datetime, bytes]:
    """The order every insert writes its rows in: the unique key's own
    (occurred_at, dedup_key) within a tenant, day partition by day partition.
    Concurrent inserts sharing events then wait on each other's rows in the
    same order (no deadlock), and a COPY fills one partition after another
    (so it also inserts its rows' index entries in this order)."""
    return event.occurred_at, event.dedup_key


# --- binary COPY -----------------------------------------------------------------------------------------------

class CopyRows(NamedTuple):
    """Rows of ``connection_events`` (``COPY_COLUMNS``) in PostgreSQL's binary
    COPY format, whole (header to trailer), and what a writer needs to know
    of them without decoding: how many, the days (UTC) they fall on (the
    partitions they need) and where each network's ref goes.

    The rows are built where the events are normalised, which need not know
    the tenant's network refs (a worker process does not): each row's
    ``network_ref`` is left 0, and ``networks`` gives, for each network id,
    the offsets in ``data`` of its rows' refs; ``bound`` fills them in."""

    data: bytes
    row_count: int
    days: frozenset[dt.date]
    networks: dict[str, list[int]]

    def bound(self, network_refs: Mapping[str, int]) -> bytes:
        """``data`` with every row's network ref filled in from ``network_refs``
        (which must hold every network of ``networks``)."""
        data = bytearray(self.data)
        for network_id, offsets in self.networks.items():
            ref = _pack_int(network_refs[network_id])
            for at in offsets:
                data[at:at + 4] = ref
        return bytes(data)


# The format: a signature, flags (0) and an empty header extension; per row
# its field count, then each field as a length (-1: NULL) and its binary
# value; a trailer (-1). Values as PostgreSQL's binary send/recv have them.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = struct.pack(">h", -1)
_pack_int = struct.Struct(">i").pack
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # timestamptz: int64 microseconds since
_PG_EPOCH_DATE = _PG_EPOCH.date()
_MICROS_PER_DAY = 86_400_000_000
# stored type -> (struct format of the value, or None for variable length; the
# expression of the value sent, from the field's own)
_BINARY = {
    "smallint": (">h", "{}"),
    "int": (">i", "{}"),
    "timestamptz": (">q", "{}"),  # the field's micros, worked out first (they give the day too)
    "text": (None, "{}.encode()"),
    "bytea": (None, "{}"),
    "macaddr": (None, "_unhex({}.replace(':', ''))"),  # six bytes (the text is aa:bb:cc:dd:ee:ff)
}


def _nullable(name: str) -> bool:
    hint = get_type_hints(StoredEvent)[name]
    return type(None) in get_args(hint)


def _copy_source() -> str:
    """The source of ``copy_rows``: straight-line code per row (it runs once
    per event of a large batch), consecutive fixed-width values that are
    never NULL packed by one ``struct`` call with the lengths around them.
    The tenant and the network ref lead the row, so the ref's offset in a
    row is fixed."""
    lines = ["def copy_rows(_events, _tenant_ref):", "    _out = [_HEADER]", "    _at = len(_HEADER)",
             "    _days = set()", "    _add_day = _days.add", "    _networks = {}", "    _count = 0",
             f"    for ({', '.join(StoredEvent._fields)},) in _events:", "        _count += 1"]
    formats = {">i": "_pack_i"}  # struct format -> its name in the namespace
    # the row starts with its field count and the tenant
    run_format, run_args, pieces = ">hii", [str(len(COPY_COLUMNS)), "4", "_tenant_ref"], []
    fixed_prefix = True  # every value so far fixed-width and never NULL: offsets within a row are known
    network_offset = None

    def close_run() -> None:
        nonlocal run_format, run_args
        if run_args:
            name = formats.setdefault(run_format, f"_pack{len(formats)}")
            pieces.append(f"{name}({', '.join(run_args)})")
        run_format, run_args = ">", []

    for name, column in COLUMNS:
        stored = column.stored_type
        if stored not in _BINARY:
            raise TypeError(f"StoredEvent.{name}: no binary COPY encoding for {stored}")
        fixed, expression = _BINARY[stored]
        if column.network:
            if not fixed_prefix:
                raise TypeError(f"StoredEvent.{name}: the network column must follow fixed-width columns only")
            network_offset = struct.calcsize(run_format)  # its length is packed already: the value comes next
            lines += [f"        _slots = _networks.get({name})", "        if _slots is None:",
                      f"            _networks[{name}] = _slots = []",
                      f"        _slots.append(_at + {network_offset + 4})"]
            value = "0"  # filled in by CopyRows.bound
        elif stored == "timestamptz":
            lines.append(f"        _{name} = ({name} - _PG_EPOCH) // _MICROSECOND")
            lines.append(f"        _add_day(_{name} // {_MICROS_PER_DAY})")
            value = f"_{name}"
        else:
            value = expression.format(name)
        if _nullable(name):
            fixed_prefix = False
            close_run()
            if fixed is None:
                lines.append(f"        _{name} = None if {name} is None else {value}")
                piece = f"_NULL if _{name} is None else _pack_i(len(_{name})) + _{name}"
            else:
                size = struct.calcsize(fixed)
                piece_format = formats.setdefault(">i" + fixed[1:], f"_pack{len(formats)}")
                piece = f"_NULL if {name} is None else {piece_format}({size}, {value})"
            pieces.append(f"({piece})")
        elif fixed is None:
            fixed_prefix = False
            if value != name:
                lines.append(f"        _{name} = {value}")
                value = f"_{name}"
            run_format += "i"
            run_args.append(f"len({value})")
            close_run()
            pieces.append(value)
        else:
            run_format += "i" + fixed[1:]
            run_args += [str(struct.calcsize(fixed)), value]
    if network_offset is None:
        raise TypeError("StoredEvent has no network column")
    close_run()
    lines += [f"        _row = b''.join(({', '.join(pieces)},))", "        _out.append(_row)",
              "        _at += len(_row)",
              "    _out.append(_TRAILER)",
              "    return CopyRows(b''.join(_out), _count,",
              "                    frozenset(_PG_EPOCH_DATE + _timedelta(days=_day) for _day in _days), _networks)"]
    header = [f"{name} = struct.Struct({fmt!r}).pack" for fmt, name in formats.items() if name != "_pack_i"]
    return "\n".join(header) + "\n\n" + "\n".join(lines) + "\n"


COPY_SOURCE = _copy_source()

_COPY_DOC = """``events`` (``StoredEvent``s) of tenant ``tenant_ref`` as
``CopyRows``, in the order given: what asyncpg's ``copy_to_table(...,
format='binary')`` sends, once ``bound`` to the network refs; PostgreSQL
reads them as the rows asyncpg's own ``copy_records_to_table`` sends
(tests/test_store.py)."""


def _compile_copy() -> Callable[[Iterable[StoredEvent], int], CopyRows]:
    namespace: dict[str, Any] = {
        "struct": struct, "CopyRows": CopyRows, "_HEADER": COPY_HEADER, "_TRAILER": COPY_TRAILER,
        "_NULL": struct.pack(">i", -1), "_pack_i": _pack_int, "_PG_EPOCH": _PG_EPOCH,
        "_PG_EPOCH_DATE": _PG_EPOCH_DATE, "_MICROSECOND": dt.timedelta(microseconds=1), "_timedelta": dt.timedelta,
        "_unhex": binascii.unhexlify,
    }
    exec(compile(COPY_SOURCE, f"<{__name__}.copy_rows>", "exec"), namespace)
    function = namespace["copy_rows"]
    function.__doc__ = _COPY_DOC
    function.__module__ = __name__
    return function


copy_rows: Callable[[Iterable[StoredEvent], int], CopyRows] = _compile_copy()


def table_row(event: StoredEvent, network_ref: int) -> tuple:
    """The values of ``TABLE_COLUMNS`` for ``event`` (the network id replaced
    by its ref), for loaders that write ``connection_events`` directly."""
    return tuple(network_ref if column.network else value for value, (_, column) in zip(event, COLUMNS, strict=True))


# --- reads -----------------------------------------------------------------------------------------------------

# What every read selects first (connlog.store.events reads them in this
# order), then the restored columns.
READ_KEYS = ("e.id", "n.network_id", "e.occurred_at", "e.received_at", "e.payload")
# The columns put back into the payload on read, in row order (the network
# id comes with READ_KEYS: a read sets it with the event's name).
RESTORED: tuple[tuple[str, Column], ...] = tuple(
    (name, column) for name, column in COLUMNS if column.restored_into is not None and not column.network)
READ_COLUMNS = ", ".join((*READ_KEYS, *(f"e.{name}" for name, _ in RESTORED)))
RESTORED_SLICE = slice(len(READ_KEYS), len(READ_KEYS) + len(RESTORED))
# column name -> the ConnectionEvent field path it is restored into
_RESTORED_PATHS = {name: _field_path(column.restored_into or "") for name, column in RESTORED}


def restored_value(event: pb.ConnectionEvent, name: str) -> str | None:
    """The value column ``name`` (one of ``RESTORED``) holds for a whole
    event (None where the field is empty, as the column would be)."""
    value: Any = event
    for part in _RESTORED_PATHS[name]:
        value = getattr(value, part)
    return value or None


def _restore_source() -> str:
    """The source of ``restore_columns``: straight-line code (it runs once
    per row read), a sub-message touched only when one of its columns is set
    (touching one creates it)."""
    groups: dict[str, list[tuple[str, str]]] = {}  # parent message ('' for the event) -> (field, column)
    for name, column in RESTORED:
        assert column.restored_into is not None
        *parents, field = _field_path(column.restored_into)
        groups.setdefault(".".join(parents), []).append((field, name))
    # (locals other than the fields start with "_": a NamedTuple field cannot)
    lines = ["def restore_columns(_event, _columns):", f"    ({', '.join(name for name, _ in RESTORED)},) = _columns"]
    for parent, fields in groups.items():
        indent = "    "
        target = "_event"
        if parent:
            lines.append(f"    if {' or '.join(f'{name} is not None' for _, name in fields)}:")
            lines.append(f"        _message = _event.{parent}")
            indent, target = "        ", "_message"
        for field, name in fields:
            lines.append(f"{indent}if {name} is not None:")
            lines.append(f"{indent}    {target}.{field} = {name}")
    return "\n".join(lines) + "\n"


RESTORE_SOURCE = _restore_source()


_RESTORE_DOC = """Put back into a parsed payload what a row's columns hold
(``RESTORED``, in that order: ``row[RESTORED_SLICE]`` of a read). Events
stored before payloads left them out already have the same values."""


def _compile_restore() -> Callable[[pb.ConnectionEvent, Sequence[Any]], None]:
    namespace: dict[str, Any] = {}
    exec(compile(RESTORE_SOURCE, f"<{__name__}.restore_columns>", "exec"), namespace)
    function = namespace["restore_columns"]
    function.__doc__ = _RESTORE_DOC
    function.__module__ = __name__
    return function


restore_columns: Callable[[pb.ConnectionEvent, Sequence[Any]], None] = _compile_restore()
