"""Server-side prepared statements for the rating hot path (PostgreSQL).

Why: the rate page's statements are short and run hundreds of times a second; measured with
pg_stat_statements, PostgreSQL spent longer *planning* them than running them (0.78 ms of
planning against 0.55 ms of execution per submit). A statement prepared once per connection is
parsed and planned once and reused for every later call on that connection.

How: psycopg2 has no protocol-level prepare, so this uses SQL `PREPARE` / `EXECUTE`. The first
call of a statement on a connection sends `PREPARE name AS ...; EXECUTE name(...)` in one round
trip (one query for Django's counters too); later calls send only the `EXECUTE`. psycopg2 still
adapts the parameters, so the SQL keeps Django's `%s` (or named `%(name)s`) placeholders; parameters whose type
PostgreSQL cannot infer from their place in the statement need a cast in the SQL (`%s::bigint`).
The name is a hash of the SQL text, so two texts never share a name.

Which statements a connection has prepared is remembered on Django's connection wrapper and
forgotten whenever Django opens a new connection. `PREPARE` is not undone by a rollback, so after
any error in a call the set is re-read from `pg_prepared_statements` before the next one.

Off (plain execution) on other databases (the SQLite demo) and when EMORATE_PG_PREPARE is false:
a transaction-pooling PgBouncer hands each transaction a different server session, where a
statement prepared in another one does not exist.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver

_KNOWN = "_emorate_prepared"  # set of prepared names, on the connection wrapper
_VERIFY = "_emorate_prepared_verify"  # re-read the set from the server before the next call


@receiver(connection_created, dispatch_uid="emorate-prepared-reset")
def _forget(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A new server session has no prepared statements."""
    connection.__dict__[_KNOWN] = set()
    connection.__dict__[_VERIFY] = False


_NAMED = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=256)
def _statement(sql: str) -> tuple[str, str, str]:
    """(name, `PREPARE name AS ...` text, `EXECUTE name(...)` text) for `sql` with %s placeholders,
    or with named %(name)s placeholders (each name becomes one $n, however often it is used; the
    parameters are then a mapping). Literal percent signs stay doubled (`%%`): both texts go through
    psycopg2's interpolation."""
    if "%(" in sql:
        if "%s" in _NAMED.sub("", sql).replace("%%", ""):
            raise ValueError("a prepared statement uses one placeholder style: %s or %(name)s, not both")
        order: dict[str, int] = {}
        for found in _NAMED.finditer(sql):
            order.setdefault(found.group(1), len(order) + 1)
        numbered = _NAMED.sub(lambda m: f"${order[m.group(1)]}", sql)
        name = "emorate_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        args = ", ".join(f"%({n})s" for n in order)
        return name, f"PREPARE {name} AS {numbered}", f"EXECUTE {name}({args})" if args else f"EXECUTE {name}"
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
    name = "emorate_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
    args = ", ".join(["%s"] * (len(parts) - 1))
    return name, f"PREPARE {name} AS {numbered}", f"EXECUTE {name}({args})" if args else f"EXECUTE {name}"


def enabled(db: Any) -> bool:
    return db.vendor == "postgresql" and bool(getattr(settings, "EMORATE_PG_PREPARE", True))


def casts(db: Any, *types: str) -> dict[str, str]:
    """{type: "::type"} on PostgreSQL, {type: ""} elsewhere: for parameters of a statement shared with
    the SQLite demo whose type PostgreSQL cannot infer when it prepares the statement."""
    return {t: f"::{t}" if db.vendor == "postgresql" else "" for t in types}


def execute(cursor: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> None:
    """Run `sql` on the Django `cursor` as a prepared statement (see the module docstring); the
    results are read from the cursor as usual. `params`: a sequence for %s placeholders, a mapping
    for %(name)s ones."""
    db = cursor.db
    if not enabled(db):
        cursor.execute(sql, params)
        return
    name, prepare, run = _statement(sql)
    known: set[str] = db.__dict__.setdefault(_KNOWN, set())
    if db.__dict__.get(_VERIFY):
        cursor.execute("SELECT name FROM pg_prepared_statements")
        known.clear()
        known.update(row[0] for row in cursor.fetchall())
        db.__dict__[_VERIFY] = False
    try:
        if name in known:
            cursor.execute(run, params)
        else:
            cursor.execute(f"{prepare}; {run}", params)
            known.add(name)
    except Exception:
        db.__dict__[_VERIFY] = True
        raise


# Model instances from a prepared statement, without the ORM's per-call query compilation (and
# without RawQuerySet, which matches the columns to the model's fields again on every call).


@functools.cache
def _attnames(model: Any) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


@functools.cache
def select_list(model: Any, table: str) -> str:
    """The model's concrete columns, qualified by `table`, in field order; for `fetch_models`.
    Never `*`: a column added by a migration must not change the result of a statement that a
    running server prepared before it (PostgreSQL refuses to run it then)."""
    from django.db import connection

    return ", ".join(f"{table}.{connection.ops.quote_name(model._meta.get_field(n).column)}" for n in _attnames(model))


@functools.cache
def _converters(model: Any, vendor: str) -> tuple[tuple[int, Any, tuple[Any, ...]], ...]:
    """(column index, column expression, converters) where the ORM would convert a value: the
    backend's converters, then the field's (JSON, vectors; SQLite datetimes and booleans)."""
    from django.db import connection

    out = []
    for i, name in enumerate(_attnames(model)):
        field = model._meta.get_field(name)
        col = field.get_col(model._meta.db_table)
        found = (*connection.ops.get_db_converters(col), *field.get_db_converters(connection))
        if found:
            out.append((i, col, found))
    return tuple(out)


def _instance(model: Any, values: Sequence[Any]) -> Any:
    from django.db import connection

    values = list(values)
    for i, col, converters in _converters(model, connection.vendor):
        for convert in converters:
            values[i] = convert(values[i], col, connection)
    return model.from_db(connection.alias, _attnames(model), values)


def fetch_models(model: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = (), extra: Sequence[str] = (),
                 related: Sequence[tuple[str, Any]] = ()) -> list[Any]:
    """Run `sql` and return `model` instances. The result's columns are `select_list(model, ...)`,
    then `select_list(...)` of each (field name, model) in `related` (a foreign key joined in the
    query, LEFT JOIN allowed: all-NULL columns give None; the ORM's select_related), then the
    columns named in `extra` (set as attributes)."""
    from django.db import connection

    with connection.cursor() as cur:
        execute(cur, sql, params)
        rows = cur.fetchall()
    out = []
    for row in rows:
        start = len(_attnames(model))
        obj = _instance(model, row[:start])
        for field, other in related:
            n = len(_attnames(other))
            part = row[start:start + n]
            start += n
            setattr(obj, field, None if part[0] is None else _instance(other, part))
        for name, value in zip(extra, row[start:], strict=True):
            setattr(obj, name, value)
        out.append(obj)
    return out
