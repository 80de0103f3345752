"""The stored row of a connection event, defined once.

``StoredEvent`` declares the row: one field per value stored, in the order
the row is built (``connlog.ingest.normalise``, once per ingested event) and
sent (COPY records, ``unnest`` arrays), each field's ``Column`` telling how it
is stored. Everything that depends on that order or those types is derived
from it here, never written out again:

* ``COPY_COLUMNS`` and ``CREATE_STAGING``: the per-connection staging table
  large batches are copied into, and ``copy_rows``: rows in PostgreSQL's
  binary COPY format for it (built where the rows are: the ingest worker
  processes send the service process bytes, not rows);
* ``INSERT`` / ``INSERT_QUIET`` (``INSERT ... SELECT ... FROM unnest(...)``,
  small batches) and ``INSERT_STAGED`` / ``INSERT_STAGED_QUIET`` (from the
  staging table): each with and without its ``RETURNING`` clause, built from
  the same parts;
* ``TABLE_COLUMNS``: the ``connection_events`` columns the row fills;
* ``READ_COLUMNS`` and ``restore_columns``: what a read selects, and how a
  read puts back into the parsed payload what the columns hold (the payload
  is stored without them).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterable, Sequence
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
    staged path joins ``networks``)."""

    pg_type: str
    cast: str | None = None
    restored_into: str | None = None
    network: bool = False


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


# The staging table holds rows as they are built: its columns are the fields.
COPY_COLUMNS: tuple[str, ...] = StoredEvent._fields
# The connection_events columns a row fills (besides tenant_ref), in row order.
TABLE_COLUMNS: tuple[str, ...] = tuple(_table_column(name, column) for name, column in COLUMNS)

CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ("
    + ", ".join(f"{name} {column.pg_type}" for name, column in COLUMNS)
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
    "SELECT $1, " + ", ".join(f"n.{NETWORK_REF}" if c.network else _value("s", n, c) for n, c in COLUMNS)
    + f"\nFROM {STAGING_TABLE} s JOIN networks n ON n.tenant_ref = $1 AND n.network_id = s.{NETWORK_FIELD}"
    # in key order, as the small path's arrays are (see connlog.store.events)
    + "\nORDER BY s.dedup_key, s.occurred_at"
)
_ON_CONFLICT = "ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING"
RETURNING = "RETURNING id, dedup_key, occurred_at"

# Parameters: $1 tenant_ref, then one array per field (the network column's
# holding network_refs), in row order.
INSERT = "\n".join((_INSERT_INTO, _FROM_UNNEST, _ON_CONFLICT, RETURNING))
INSERT_QUIET = "\n".join((_INSERT_INTO, _FROM_UNNEST, _ON_CONFLICT))
# Parameters: $1 tenant_ref; the rows are in the staging table.
INSERT_STAGED = "\n".join((_INSERT_INTO, _FROM_STAGING, _ON_CONFLICT, RETURNING))
INSERT_STAGED_QUIET = "\n".join((_INSERT_INTO, _FROM_STAGING, _ON_CONFLICT))


# --- binary COPY -----------------------------------------------------------------------------------------------

class CopyRows(NamedTuple):
    """Rows for the staging table (``COPY_COLUMNS``) in PostgreSQL's binary
    COPY format, whole (header to trailer), and what a writer needs to know
    of them without decoding: how many, and the days (UTC) they fall on (the
    partitions they need)."""

    data: bytes
    row_count: int
    days: frozenset[dt.date]


# The format: a signature, flags (0) and an empty header extension; per row
# its field count, then each field as a length (-1: NULL) and its binary
# value; a trailer (-1). Values as PostgreSQL's binary send/recv have them.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # timestamptz: int64 microseconds since
_PG_EPOCH_DATE = _PG_EPOCH.date()
_MICROS_PER_DAY = 86_400_000_000
# pg_type -> (struct format of the value, or None for variable length; the
# expression of the value sent, from the field's own)
_BINARY = {
    "smallint": (">h", "{}"),
    "int": (">i", "{}"),
    "timestamptz": (">q", "{}"),  # the field's micros, worked out first (they give the day too)
    "text": (None, "{}.encode()"),
    "bytea": (None, "{}"),
}


def _nullable(name: str) -> bool:
    hint = get_type_hints(StoredEvent)[name]
    return type(None) in get_args(hint)


def _copy_source() -> str:
    """The source of ``copy_rows``: straight-line code per row (it runs once
    per event of a large batch), consecutive fixed-width values that are
    never NULL packed by one ``struct`` call with the lengths around them."""
    lines = ["def copy_rows(_events):", "    _out = [_HEADER]", "    _days = set()", "    _add_day = _days.add",
             "    _count = 0", f"    for ({', '.join(StoredEvent._fields)},) in _events:", "        _count += 1"]
    formats = {">i": "_pack_i"}  # struct format -> its name in the namespace
    run_format, run_args, pieces = ">h", [str(len(COLUMNS))], []  # the row starts with its field count

    def close_run() -> None:
        nonlocal run_format, run_args
        if run_args:
            name = formats.setdefault(run_format, f"_pack{len(formats)}")
            pieces.append(f"{name}({', '.join(run_args)})")
        run_format, run_args = ">", []

    for name, column in COLUMNS:
        if column.pg_type not in _BINARY:
            raise TypeError(f"StoredEvent.{name}: no binary COPY encoding for {column.pg_type}")
        fixed, expression = _BINARY[column.pg_type]
        if column.pg_type == "timestamptz":
            lines.append(f"        _{name} = ({name} - _PG_EPOCH) // _MICROSECOND")
            lines.append(f"        _add_day(_{name} // {_MICROS_PER_DAY})")
            value = f"_{name}"
        else:
            value = expression.format(name)
        if _nullable(name):
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
    close_run()
    lines.append(f"        _out.append(b''.join(({', '.join(pieces)},)))")
    lines += ["    _out.append(_TRAILER)",
              "    return CopyRows(b''.join(_out), _count,",
              "                    frozenset(_PG_EPOCH_DATE + _timedelta(days=_day) for _day in _days))"]
    header = [f"{name} = struct.Struct({fmt!r}).pack" for fmt, name in formats.items() if name != "_pack_i"]
    return "\n".join(header) + "\n\n" + "\n".join(lines) + "\n"


COPY_SOURCE = _copy_source()

_COPY_DOC = """``events`` (``StoredEvent``s) as ``CopyRows``: what asyncpg's
``copy_to_table(..., format='binary')`` sends to the staging table, read by
PostgreSQL as the same rows asyncpg's own ``copy_records_to_table`` sends
(tests/test_store.py)."""


def _compile_copy() -> Callable[[Iterable[StoredEvent]], CopyRows]:
    namespace: dict[str, Any] = {
        "struct": struct, "CopyRows": CopyRows, "_HEADER": COPY_HEADER, "_TRAILER": COPY_TRAILER,
        "_NULL": struct.pack(">i", -1), "_pack_i": struct.Struct(">i").pack, "_PG_EPOCH": _PG_EPOCH,
        "_PG_EPOCH_DATE": _PG_EPOCH_DATE, "_MICROSECOND": dt.timedelta(microseconds=1), "_timedelta": dt.timedelta,
    }
    exec(compile(COPY_SOURCE, f"<{__name__}.copy_rows>", "exec"), namespace)
    function = namespace["copy_rows"]
    function.__doc__ = _COPY_DOC
    function.__module__ = __name__
    return function


copy_rows: Callable[[Iterable[StoredEvent]], CopyRows] = _compile_copy()


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
