"""Server-side prepared statements for the hot reads (Postgres, psycopg2).

Why: Postgres plans every statement it is sent as text. The list page
statement took 0.48 ms from psql, 0.31 ms of it planning; as a prepared
statement, 0.17 ms (``pgbench -M prepared``; bench/README.md). psycopg2 has
no prepared statements of its own (psycopg 3 and asyncpg prepare by
themselves), so this module does what they do, for the statements that ask:

    select(...).execution_options(prepare=True)

How: a ``before_cursor_execute`` hook turns such a statement into
``EXECUTE <name>(<values>)``, after sending ``PREPARE <name> AS <sql>``
once on each database connection (``PREPARE`` is not undone by a
rollback; the names prepared live in the pooled connection's ``info``,
which goes with the connection when it is closed or replaced). The name is
a digest of the SQL, so every process names a statement alike, and a
changed statement is a new name. SQLAlchemy still reads the rows (types,
columns by position) as the statement's.

Which statements: only those whose plan does not depend on the values. After
five executions Postgres may switch a prepared statement to a *generic*
plan, made without the values; the list shapes marked here walk one index
whatever the values (tests/test_explain.py checks their generic plans).
Statements planned by the data (combined filters, favourites) are not
marked.

Not behind PgBouncer in transaction pooling (``db.pgbouncer``): its
transactions move between server connections, which know different
prepared statements. Off with ``db.prepared_statements = false``.

A server connection that lost its statements (``DISCARD ALL``), or one
whose plans no longer fit the schema ("cached plan must not change result
type" after a migration), fails its ``EXECUTE``: that connection is
dropped and the request retried (pyramid_retry) on a fresh one.

:func:`fetch` runs such a statement on the DBAPI cursor, for the anonymous
public reads (myapp.db_reads.CoreReads.rows): a list page's rows arrive
JSON-ready (timestamps as text), so SQLAlchemy's execution context and
result objects around the one statement were pure overhead — ~0.1 ms of
CPU per list page here, as much as psycopg2's own work (docs/database.md,
"The cost of one uncached read"). SQLAlchemy still compiles the statement
and converts its parameters, and the ``EXECUTE`` goes through
``Connection._cursor_execute`` (SQLAlchemy's own path for statements
outside ``execute()``, such as sequences): the engine's cursor events
(statement counts, logging) and its error handling (a dead connection is
invalidated; errors come wrapped as ever, fetching included) apply as to
any statement.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg2
from psycopg2 import errors
from pyramid_retry import mark_error_retryable
from sqlalchemy import event
from sqlalchemy.engine import Compiled, Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

log = logging.getLogger(__name__)

OPTION = "prepare"
PREPARED = "db.prepared"  # pooled connection info: names prepared on it
# psycopg2's placeholders, and its escaped percent sign, in one pass.
_TOKEN = re.compile(r"%%|%\((\w+)\)s")
# The connection's prepared statements are gone, or no longer fit the schema
# (then the whole pool's do), or one already exists (a transaction-pooling
# PgBouncer in front, without db.pgbouncer).
_GONE = (errors.InvalidSqlStatementName, errors.DuplicatePreparedStatement)
_SCHEMA = errors.FeatureNotSupported


@dataclass(frozen=True)
class Prepared:
    name: str
    prepare: str  # PREPARE <name> AS <the statement, $1... for its parameters>
    execute: str  # EXECUTE <name>(%(a)s, ...) in psycopg2's parameter style


# name -> the statement it prepares, for tools that see only the EXECUTE
# (statement_of); one entry per statement shape, like translate's cache.
_STATEMENTS: dict[str, str] = {}


def statement_of(sql: str) -> str | None:
    """The statement an ``EXECUTE`` of ours runs (None: not one of ours).
    A cursor event sees the ``EXECUTE`` :func:`fetch` sends, with no
    execution context to ask (tests/test_explain.py explains the original)."""
    name, _, _ = sql.removeprefix("EXECUTE ").partition("(")
    return _STATEMENTS.get(name) if sql.startswith("EXECUTE conduit_") else None


@lru_cache(maxsize=256)
def translate(statement: str) -> Prepared:
    """The PREPARE and EXECUTE for one statement in psycopg2's pyformat style."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"  # sent without parameters: psycopg2 leaves it as it is
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    body = _TOKEN.sub(number, statement)
    digest = hashlib.sha1(statement.encode(), usedforsecurity=False).hexdigest()[:20]
    name = f"conduit_{digest}"
    _STATEMENTS[name] = statement
    values = ", ".join(f"%({n})s" for n in order)
    return Prepared(
        name,
        f"PREPARE {name} AS {body}",
        f"EXECUTE {name}({values})" if order else f"EXECUTE {name}",
    )


def _before_cursor_execute(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    if (
        executemany
        or context is None
        or not context.execution_options.get(OPTION)
        or not isinstance(parameters, dict)
    ):
        return statement, parameters
    prepared = translate(statement)
    names: set[str] = conn.connection.info.setdefault(PREPARED, set())
    if prepared.name not in names:
        cursor.execute(prepared.prepare)
        names.add(prepared.name)
    return prepared.execute, parameters


def _handle_error(context: Any) -> None:
    execution = context.execution_context
    error = context.original_exception
    if (
        isinstance(error, (*_GONE, _SCHEMA))
        and execution is not None
        and execution.execution_options.get(OPTION)
    ):
        if isinstance(error, errors.DuplicatePreparedStatement):
            log.warning(
                "prepared statement already exists: a pooler in front without db.pgbouncer?"
            )
        # Drop this connection (its statements with it), or after a schema
        # change every connection of the pool; replay the request.
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = isinstance(error, _SCHEMA)
        if context.sqlalchemy_exception is not None:
            mark_error_retryable(context.sqlalchemy_exception)


# The engines that prepare statements (enable): fetch takes no other.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def enable(engine: Engine) -> None:
    """Prepare the statements that ask, on this (Postgres) engine."""
    event.listen(engine, "before_cursor_execute", _before_cursor_execute, retval=True)
    event.listen(engine, "handle_error", _handle_error)
    _ENGINES.add(engine)


@dataclass(frozen=True)
class _Plan:
    compiled: Compiled
    prepared: Prepared
    # (parameter, conversion) for the parameters whose type converts them
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


@lru_cache(maxsize=256)
def _plan(statement: Executable, dialect: Dialect) -> _Plan | None:
    """How :func:`fetch` runs ``statement`` (built once per shape, so cached
    by identity), or None when only SQLAlchemy's usual path can: not
    prepared, parameters expanded at execution (``IN`` lists), or result
    columns whose type converts the values read."""
    if not statement.get_execution_options().get(OPTION):
        return None
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    columns = getattr(statement, "selected_columns", None)
    if columns is None or any(_converts(column.type, dialect) for column in columns):
        return None
    processors = []
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    return _Plan(compiled, translate(compiled.string), tuple(processors))


def _converts(type_: Any, dialect: Dialect) -> bool:
    """Whether values of ``type_`` are converted when read. Some types can
    only tell with the column's database type (psycopg2's numerics raise
    without it): those count as converting."""
    try:
        return type_.dialect_impl(dialect).result_processor(dialect, None) is not None
    except Exception:
        return True


def fetch(
    conn: Connection, statement: Executable, parameters: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """``statement``'s rows as dicts, executed on the cursor (module docs),
    or None: run it the usual way (``conn.execute``), which knows how.

    None also when the connection's statements are gone or stale: the
    usual path meets the same error and drops the connection for a retry.
    """
    if conn.engine not in _ENGINES:
        return None
    plan = _plan(statement, conn.dialect)
    if plan is None:
        return None
    pooled = conn.connection
    dbapi: Any = pooled.dbapi_connection
    if not dbapi.autocommit:
        return None  # a failed PREPARE must not abort a caller's transaction
    values = plan.compiled.construct_params(parameters)
    for name, process in plan.processors:
        values[name] = process(values[name])
    names: set[str] = pooled.info.setdefault(PREPARED, set())
    cursor = dbapi.cursor()
    try:
        if plan.prepared.name not in names:
            try:
                cursor.execute(plan.prepared.prepare)
            except psycopg2.Error as error:
                # The usual path prepares it again, and handles what it meets.
                log.debug("PREPARE %s failed, taking the usual path: %s", plan.prepared.name, error)
                return None
            names.add(plan.prepared.name)
        try:
            conn._cursor_execute(cursor, plan.prepared.execute, values)
        except DBAPIError as error:
            if isinstance(error.orig, (*_GONE, _SCHEMA)):
                return None
            raise
        fields = [column[0] for column in cursor.description]
        try:
            rows = cursor.fetchall()  # psycopg2 converts the values here
        except Exception as error:
            # Wrapped and handled (handle_error, invalidation) as SQLAlchemy
            # does for an error while fetching; it raises.
            conn._handle_dbapi_exception(error, plan.prepared.execute, values, cursor, None)
            raise
        return [dict(zip(fields, row, strict=True)) for row in rows]
    finally:
        cursor.close()
