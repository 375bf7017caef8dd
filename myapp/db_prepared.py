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
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg2 import errors
from pyramid_retry import mark_error_retryable
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

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


def enable(engine: Engine) -> None:
    """Prepare the statements that ask, on this (Postgres) engine."""
    event.listen(engine, "before_cursor_execute", _before_cursor_execute, retval=True)
    event.listen(engine, "handle_error", _handle_error)
