"""Read-only requests in autocommit (Postgres, psycopg2).

psycopg2 sends a ``BEGIN`` before a transaction's first statement, and the
request ends with a ``ROLLBACK``/``COMMIT``: two round trips, as many as the
statements an uncached list page sends (one). GET, HEAD and OPTIONS requests
to a view run their statements in autocommit instead (``db.autocommit_reads``,
on by default, as in Django; myapp.db decides per request). The cost: the
statements of one such request no longer share a snapshot (a list's page and
count are one statement, so they still agree). Off behind PgBouncer, whose
statement timeout is a ``SET LOCAL`` that needs a transaction. Jobs, which
run as scripting requests, stay transactional.

Same engines and pools: psycopg2's ``autocommit`` is set when such a session
takes a connection and unset when the pool takes it back — both free, where
SQLAlchemy's own ``isolation_level`` option goes through psycopg2's
``set_isolation_level``, itself a round trip each way.

Such a request may not write (:func:`read_only_guard`).

``request.dbreads`` (:func:`reader`): the public reads of such a request (a
list page, an article, the tags) need no ORM objects, no unit of work and
no two-phase commit, so an anonymous one runs them on a plain Core
connection: checked out from the engine the request's session would read
from (a replica, or the primary after the user's write), in autocommit,
returned when the request ends. The Session's machinery around one
statement (its transaction, the data manager's commit, the identity map)
cost more CPU than SQLAlchemy Core's execution of it (docs/database.md,
"The cost of one uncached read"). Any other request gets its session.
:func:`rows` reads a statement's rows as dicts from either; on Postgres a
Core connection runs a prepared one on the cursor (myapp.db_prepared.fetch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from sqlalchemy import Executable, literal, select
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine, Result, ScalarResult
from sqlalchemy.orm import ORMExecuteState, Session

from myapp import db_prepared
from myapp.db_held import HeldReads, connect_autocommit

log = logging.getLogger(__name__)

AUTOCOMMIT = "db.autocommit"  # session.info: a read-only request's session, in autocommit
# session.info: a session that must not write: an autocommit one, or one in
# no transaction (tm_activate) whatever its bind (the tests bind one open connection).
READ_ONLY = "db.read_only"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[Request], Response]

# Any plain SELECT: asks a routing session where its reads would go.
_A_READ = select(literal(1))


def autocommit_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    """``after_begin``: a read-only request's connection runs in autocommit,
    every other session's does not (whatever a connection was left in).

    psycopg2 sends its ``BEGIN`` with the first statement, which has not
    been sent yet here.
    """
    if connection.dialect.name == "postgresql":
        dbapi: Any = connection.connection.dbapi_connection
        wanted = bool(session.info.get(AUTOCOMMIT))
        if dbapi.autocommit != wanted:
            dbapi.autocommit = wanted


class ReadOnlyRequestWrote(RuntimeError):
    """A GET/HEAD/OPTIONS request changed the database (myapp.db._dbsession)."""


def _holds_writes(session: Session) -> bool:
    """A session that may not write (``READ_ONLY``) holds a change."""
    return bool(session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted))


def read_only_guard(session: Session, _context: Any, _instances: Any) -> None:
    """``before_flush``: a read-only request's session never writes.

    Its statements autocommit one by one, outside the request's transaction,
    so a write there would neither roll back with the request nor purge the
    cache: safe methods stay safe, loudly.
    """
    if _holds_writes(session):
        raise ReadOnlyRequestWrote("a read-only request (GET, HEAD, OPTIONS) tried to write")


def read_only_statements(state: ORMExecuteState) -> None:
    """``do_orm_execute``: nor through an INSERT, UPDATE or DELETE statement."""
    if state.session.info.get(READ_ONLY) and (
        state.is_insert or state.is_update or state.is_delete
    ):
        raise ReadOnlyRequestWrote("a read-only request (GET, HEAD, OPTIONS) tried to write")


def autocommit_off(dbapi_connection: Any, record: Any) -> None:
    """``checkin`` (Postgres engines): every pooled connection goes back
    transactional; one that cannot is closed rather than returned as it is."""
    try:
        if dbapi_connection.autocommit:
            dbapi_connection.autocommit = False
    except Exception as exc:  # a psycopg2 connection closed under us, say
        log.warning("pooled connection not reset from autocommit, closing it: %s", exc)
        record.invalidate(exc)


class CoreReads:
    """An anonymous read's Core connection, taken at its first statement (a
    request the cache answers takes none) from the engine the request's
    reads go to, in autocommit; given back when the request ends
    (:func:`reader`): to the thread's kept connections when ``held``
    (myapp.db_held), else to the pool. Offers what the public reads use."""

    def __init__(
        self, engine: Callable[[], Engine], dialect: Dialect, held: HeldReads | None = None
    ):
        self._engine = engine  # asked at the first statement: replica routing decides then
        self.dialect = dialect
        self._held = held
        self._conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None:
            engine = self._engine()
            held = self._held
            self._conn = connect_autocommit(engine) if held is None else held.connect(engine)
        return self._conn

    def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self.connection().execute(statement, parameters)

    def rows(self, statement: Executable, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        conn = self.connection()
        fetched = db_prepared.fetch(conn, statement, parameters)
        return _dicts(conn.execute(statement, parameters)) if fetched is None else fetched

    def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self.connection().scalar(statement, parameters)

    def scalars(self, statement: Executable, parameters: Any = None) -> ScalarResult[Any]:
        return self.connection().scalars(statement, parameters)

    def close(self, _request: Request | None = None) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if self._held is not None:
                self._held.release(conn)
            else:
                conn.close()


def autocommit_read(request: Request) -> bool:
    """Whether ``request`` is a read-only HTTP request, on an app that reads
    in autocommit: to a view, or one pyramid_tm left alone (:func:`tm_activate`;
    background jobs run as scripting requests without a route, and write)."""
    return (
        request.method in SAFE_METHODS
        and (
            getattr(request, "matched_route", None) is not None or NO_TRANSACTION in request.environ
        )
        and bool(request.registry.get("db_autocommit_reads"))
    )


# environ: pyramid_tm began no transaction for this request (tm_activate).
NO_TRANSACTION = "db.no_transaction"


def tm_activate(request: Request) -> bool:
    """pyramid_tm's ``tm.activate_hook``: no transaction around a read-only
    HTTP request (GET, HEAD, OPTIONS) when reads run in autocommit.

    Its statements commit one by one and it may not write (read_only_guard),
    so the transaction had nothing to commit: beginning one, joining the
    session to it and the two-phase commit at the end were ~10% of an
    uncached list's instructions. The request's session, if it makes one,
    joins no transaction and is closed when the request ends (myapp.db).
    """
    if request.method in SAFE_METHODS and request.registry.get("db_autocommit_reads"):
        request.environ[NO_TRANSACTION] = True
        return False
    return True


def no_transaction_session(request: Request, factory: Callable[[], Session]) -> Session:
    """The session of a request pyramid_tm left alone (:func:`tm_activate`):
    it joins no transaction, may not write, and is closed first when the
    request ends, as ``request.dbreads`` is (a later finished callback that
    raises stops the rest)."""
    session = factory()
    session.info[READ_ONLY] = True  # nothing would commit a write
    request.finished_callbacks.appendleft(lambda _request: session.close())
    return session


def left_writes_tween_factory(handler: Handler, _registry: Registry) -> Handler:
    """Right above the view, under the exception views: a read-only
    request's session that still holds a change when the view returns fails
    as its commit's flush would have (ReadOnlyRequestWrote, through the
    exception views), rather than the change being dropped unsaid."""

    def left_writes_tween(request: Request) -> Response:
        response = handler(request)
        session: Session | None = request.__dict__.get("dbsession")
        if session is not None and _holds_writes(session):
            session.flush()  # read_only_guard raises
        return response

    return left_writes_tween


# What the public reads run on: a request's session, or a Core connection.
Reader = Session | CoreReads


def rows(db: Reader, statement: Executable, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """``statement``'s rows, each a dict by column name."""
    if isinstance(db, CoreReads):
        return db.rows(statement, parameters)
    return _dicts(db.execute(statement, parameters))


def _dicts(result: Result[Any]) -> list[dict[str, Any]]:
    fields = tuple(result.keys())  # once: a Row's own mapping costs more per row
    return [dict(zip(fields, row, strict=True)) for row in result]


def dialect_name(db: Reader) -> str:
    """The database's dialect (``postgresql``, ``sqlite``) behind ``db``."""
    return (db.get_bind() if isinstance(db, Session) else db).dialect.name


def reader(request: Request) -> Reader:
    """``request.dbreads``: where this request's public reads run (module docs).

    :class:`CoreReads` for an anonymous read-only request whose session has
    not started; the session for anything else: writes, a request with
    credentials or cookies (its viewer's rows go through the session
    anyway: one connection is enough), a session already in use, the
    tests' sessions bound to one open connection. A view that reads through
    the session as well should use the session for everything.
    """
    if "Authorization" in request.headers or request.cookies:
        return request.dbsession
    registry = request.registry
    held: HeldReads | None = registry.get("db_held_reads")
    reads: CoreReads | None = None
    if "dbsession" not in request.__dict__ and registry.get("db_router") is None:
        # No replicas: the engine is known without making the session.
        bind = registry["dbsession_factory"].kw.get("bind")
        if isinstance(bind, Engine) and autocommit_read(request):
            reads = CoreReads(lambda: bind, bind.dialect, held)
    if reads is None:
        session: Session = request.dbsession
        if not session.info.get(AUTOCOMMIT) or session.in_transaction():
            return session
        # Replica routing decides, as it would for the session's reads.
        reads = CoreReads(
            lambda: session.get_bind(clause=_A_READ), session.get_bind().dialect, held
        )
    # First among the finished callbacks: Pyramid stops at the first one
    # that raises (a session store's, say), and the connection must go back.
    request.finished_callbacks.appendleft(reads.close)
    return reads
