"""A lean bulk INSERT for the engine's hot path.

`bulk_create` builds a model instance per row and runs every value through
the full field machinery; at thousands of results a second that overhead is
most of a run's cost. `insert_rows` picks one converter per column (the same
conversion Django applies for this database) and sends one `executemany`
(SQLite) or one COPY (PostgreSQL).
"""

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models

from ..fields import OpaqueJSONField


class EncodedJSON:
    """JSON text already encoded (and checked) by the engine: stored as is in
    an OpaqueJSONField column instead of being encoded a second time."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


_VERSION_7 = 0x7 << 76
_RFC_4122_VARIANT = 0x2 << 62


def time_ordered_int() -> int:
    """A UUIDv7 as an int: rows keyed by it are inserted in key order, so index
    pages fill at the end instead of at random (Python 3.14 has uuid.uuid7)."""
    random_part = random.getrandbits(80)
    rand_a, rand_b = random_part >> 64 & 0xFFF, random_part & ((1 << 62) - 1)
    return (time.time_ns() // 1_000_000) << 80 | _VERSION_7 | rand_a << 64 | _RFC_4122_VARIANT | rand_b


def time_ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (see `time_ordered_int`)."""
    return uuid.UUID(int=time_ordered_int())


def ordered_uuids(count: int) -> list[uuid.UUID]:
    """`count` UUIDv7s in increasing order, even within one millisecond: ids for
    rows whose id order must be their creation order (items in a bulk add)."""
    start = time_ordered_uuid().int & ~((1 << 62) - 1)  # keep the time, version and variant
    first = random.getrandbits(61)  # room below 2^62 for any batch
    return [uuid.UUID(int=start | (first + n)) for n in range(count)]


def _identity(value: Any) -> Any:
    return value


def _sqlite_datetime(value: datetime | None) -> str | None:
    """What Django stores in SQLite for a UTC datetime (naive, as text), without its checks."""
    if value is not None and value.tzinfo is UTC:
        return str(value.replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


def _opaque_json(field: OpaqueJSONField) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return value.text if isinstance(value, EncodedJSON) else field.get_prep_value(value)

    return convert


def _converter(field: models.Field) -> Callable[[Any], Any]:
    ops = connection.ops
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return _identity
        return lambda value: None if value is None else value.hex
    if isinstance(target, OpaqueJSONField):
        return _opaque_json(target)
    if isinstance(target, models.JSONField):
        return lambda value: None if value is None else ops.adapt_json_value(value, target.encoder)
    if isinstance(target, models.DateTimeField):
        if connection.vendor == "sqlite" and connection.timezone is UTC:
            return _sqlite_datetime
        return ops.adapt_datetimefield_value
    if isinstance(target, (models.IntegerField, models.FloatField, models.CharField, models.TextField)):
        return _identity
    return lambda value: target.get_db_prep_save(value, connection)


def _column(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column, f"{name} is not a column of {model.__name__}"
    return field


def insert_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Insert the rows ({field name: value}, the same names in each) in one statement."""
    if not rows:
        return
    fields = [_column(model, name) for name in rows[0]]
    converters = [(field.name, _converter(field)) for field in fields]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(str(field.column)) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    params = [[convert(row[name]) for name, convert in converters] for row in rows]
    if connection.vendor == "postgresql":
        # COPY streams the rows in one command: far cheaper than one INSERT a row.
        columns = ", ".join(quote(str(field.column)) for field in fields)
        copy_sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
            for row in params:
                copy.write_row(row)
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
