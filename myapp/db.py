"""The database: one pooled engine from settings, and ``request.dbsession``.

* The pool is sized from settings (``sqlalchemy.pool_size``, ``max_overflow``,
  ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``) because the right
  numbers depend on the deployment: replicas x workers x (pool_size +
  max_overflow) must stay below Postgres' ``max_connections``.
* Postgres gets a server-side ``statement_timeout`` so that one slow query
  cannot pin a worker (and a pooled connection) forever: as a startup
  option, or — behind PgBouncer in transaction pooling (``db.pgbouncer``),
  which neither accepts nor keeps per-client startup options — as
  ``SET LOCAL`` at the start of every transaction.
* The connection budget (myapp.db_budget) is checked at startup when the
  settings say how many processes share the database.
* Reads may go to streaming replicas (``sqlalchemy.replica_urls``), with
  read-your-writes for the user who wrote; see myapp.db_replicas. Without
  replicas, sessions are plain ``Session`` objects.
* After ``fork()`` (gunicorn ``preload_app``) the child drops the parent's
  pooled connections without closing them: sockets shared by two processes
  corrupt each other's protocol stream.
* ``request.dbsession`` is joined to the request's transaction by
  pyramid_tm + zope.sqlalchemy: commit when the view returns, abort on error.
  Read-only requests (GET, HEAD, OPTIONS) get no transaction when reads run
  in autocommit (myapp.db_reads.tm_activate): their session is closed at
  the end of the request.
* The hot reads are server-side prepared statements on Postgres
  (myapp.db_prepared; ``db.prepared_statements``, off behind PgBouncer),
  and read-only requests run in autocommit (myapp.db_reads;
  ``db.autocommit_reads``, off behind PgBouncer).
* A unique-constraint race (``IntegrityError``) is retryable: pyramid_retry
  replays the request, and the second attempt sees the winner's row and
  answers 409 instead of 500. Serialization failures and deadlocks (SQLSTATE
  class 40) are retryable too, in a transaction or not.
* A database that cannot be reached is a 503 with ``Retry-After``.
* Stale pooled connections (the server restarted, a proxy dropped an idle
  socket) are handled *optimistically* when ``pool_pre_ping`` is off, as it
  is in production.ini: rather than a ``SELECT 1`` round trip before every
  checkout, the first statement on a connection that turns out to be dead
  fails, SQLAlchemy invalidates the pool's older connections, and the error
  is marked retryable so pyramid_retry replays the request on a fresh one.
  Only a *first* statement is retried: nothing can have been written yet.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import jwt
import redis
from psycopg2.extensions import TransactionRollbackError
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.settings import asbool, aslist
from pyramid.tweens import EXCVIEW
from pyramid_retry import mark_error_retryable
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from myapp import db_budget, db_held, db_prepared
from myapp.db_reads import (
    AUTOCOMMIT,
    NO_TRANSACTION,
    READ_ONLY,
    SAFE_METHODS,
    autocommit_begin,
    autocommit_off,
    autocommit_read,
    no_transaction_session,
    read_only_guard,
    read_only_statements,
    reader,
)
from myapp.db_replicas import (
    READ_FROM_REPLICA,
    WROTE,
    Markers,
    ReplicaRouter,
    RoutingSession,
    watch_writes,
)
from myapp.db_tm import dispatch_tm_events, get_tm_session
from myapp.models import User

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///conduit.sqlite"
POOL_SETTINGS = {
    "pool_size": int,
    "max_overflow": int,
    "pool_timeout": float,
    "pool_recycle": int,
    "pool_pre_ping": asbool,
}


def normalize_url(url: str | None) -> str:
    """The URL with our driver spelled out.

    ``postgres://`` (Heroku style) is rejected by SQLAlchemy 2, and a bare
    ``postgresql://`` means psycopg 3 since SQLAlchemy 2.1; the stack uses
    psycopg2, so say so.
    """
    url = str(url or DEFAULT_URL)
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def get_engine(
    settings: dict[str, Any],
    prefix: str = "sqlalchemy.",
    url: str | None = None,
    connect_timeout: int | None = None,
) -> Engine:
    """Build a pooled engine from ``settings`` (keys under ``prefix``); ``url`` overrides."""
    url = normalize_url(url or settings.get(prefix + "url"))
    is_sqlite = url.startswith("sqlite")
    # create_engine, not engine_from_config: the latter coerces
    # ``pool_timeout`` with int(), so "0.5" would become 0 (no wait at all).
    pool_args: dict[str, Any] = {}
    for name, coerce in POOL_SETTINGS.items():
        value = settings.get(prefix + name)
        if value is not None and value != "" and not (is_sqlite and name != "pool_pre_ping"):
            pool_args[name] = coerce(value)
    connect_args: dict[str, Any] = {}
    timeout_ms = 0
    pgbouncer = asbool(settings.get("db.pgbouncer", False))
    if url.startswith("postgresql"):
        timeout_ms = int(settings.get("db.statement_timeout_ms", 0) or 0)
        if timeout_ms and not pgbouncer:
            connect_args["options"] = f"-c statement_timeout={timeout_ms}"
        if connect_timeout is None:
            connect_timeout = int(settings.get("db.connect_timeout", 5))
        connect_args["connect_timeout"] = connect_timeout
        connect_args["application_name"] = str(settings.get("db.application_name", "conduit"))
    engine = create_engine(url, connect_args=connect_args, **pool_args)
    watch_stale_connections(engine)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    elif timeout_ms and pgbouncer:
        event.listen(engine, "begin", _set_local_statement_timeout(timeout_ms))
    if url.startswith("postgresql"):
        event.listen(engine, "checkin", autocommit_off)
        if asbool(settings.get("db.prepared_statements", True)) and not pgbouncer:
            db_prepared.enable(engine)
    # A child process must not reuse the parent's sockets; see module docs.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


STATEMENTS = "db.statements_since_checkout"


def _statements_afresh(conn: Connection) -> None:
    """A kept read connection starts a request (myapp.db_held): as at a checkout."""
    conn.info[STATEMENTS] = 0


def watch_stale_connections(engine: Engine) -> None:
    """Make a dead pooled connection's first statement retryable (module docs)."""

    @event.listens_for(engine, "checkout")
    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[STATEMENTS] = 0

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Connection, *_args: Any) -> None:
        info = conn.info
        info[STATEMENTS] = info.get(STATEMENTS, 0) + 1

    @event.listens_for(engine, "handle_error")
    def handle_error(context: Any) -> None:
        conn = context.connection
        error = context.sqlalchemy_exception
        if error is None:
            return
        if context.is_disconnect and conn is not None and conn.info.get(STATEMENTS, 0) <= 1:
            log.warning("stale database connection, retrying: %s", context.original_exception)
            mark_error_retryable(error)
        elif isinstance(context.original_exception, TransactionRollbackError):
            # Serialization failures, deadlocks, a replica's "conflict with
            # recovery" (SQLSTATE class 40): the whole request is replayed.
            # zope.sqlalchemy says so for a request in a transaction; a
            # read-only request has none (db_reads.tm_activate).
            mark_error_retryable(error)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _set_local_statement_timeout(timeout_ms: int) -> Any:
    """A ``begin`` listener: the timeout for this transaction only.

    PgBouncer in transaction pooling hands each transaction to whichever
    server connection is free, so a session-level setting would leak to
    other clients (or be lost); ``SET LOCAL`` lives and dies with the
    transaction. psycopg2 starts the transaction with this statement.
    """
    statement = f"SET LOCAL statement_timeout = {int(timeout_ms)}"

    def begin(conn: Connection) -> None:
        # Through SQLAlchemy (its documented use of ``begin``), so that a dead
        # connection's error reaches handle_error like any statement's.
        conn.exec_driver_sql(statement)
        # It does not count as the request's first statement: that one may
        # still be retried if the connection turns out stale.
        if conn.info.get(STATEMENTS) == 1:
            conn.info[STATEMENTS] = 0

    return begin


def get_session_factory(
    engine: Engine, router: ReplicaRouter | None = None
) -> sessionmaker[Session]:
    """Sessions on ``engine``; with a ``router``, sessions that may read from replicas."""
    if router is None:
        factory: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)
    else:
        session_class = type("AppRoutingSession", (RoutingSession,), {"router": router})
        watch_writes(session_class)
        factory = sessionmaker(bind=engine, expire_on_commit=False, class_=session_class)
        event.listen(factory, "after_flush", _routed_after_flush)
        event.listen(factory, "after_commit", _routed_after_commit)
    dispatch_tm_events(factory)
    event.listen(factory, "after_begin", autocommit_begin)
    event.listen(factory, "before_flush", read_only_guard)
    event.listen(factory, "do_orm_execute", read_only_statements)
    return factory


def _dbsession(request: Request) -> Session:
    held: db_held.HeldReads | None = request.registry.get("db_held_reads")
    if held is not None:
        held.give_back()  # the session may need the pool's last connection
    factory = request.registry["dbsession_factory"]
    if NO_TRANSACTION in request.environ:
        # A read-only request pyramid_tm left alone (db_reads.tm_activate).
        session = no_transaction_session(request, factory)
    else:
        session = get_tm_session(factory, request.tm)
    # A read-only HTTP request to a view (background jobs run as scripting
    # requests without a route, and write); only on our engines (tests bind
    # one open connection). It must not write (read_only_guard).
    if autocommit_read(request) and isinstance(session.bind, Engine):
        session.info[AUTOCOMMIT] = True
        session.info[READ_ONLY] = True
    markers: Markers | None = request.registry.get("db_markers")
    if markers is not None:
        _route_request(request, session, markers)
    return session


def _route_request(request: Request, session: Session, markers: Markers) -> None:
    """Replica routing for one request's session (rules in myapp.db_replicas)."""
    if request.method not in SAFE_METHODS or getattr(request, "matched_route", None) is None:
        # Unsafe methods; and requests that are not HTTP requests to a view
        # (background jobs run as scripting requests): they act on writes.
        session.info[READ_FROM_REPLICA] = False
    else:
        # Decided when the first query needs it: requests the cache answers
        # entirely never ask Redis.
        def allowed() -> bool:
            user_id = requester_id(request)
            return user_id is None or not markers.is_set(user_id)

        session.info[READ_FROM_REPLICA] = allowed
    session.info[ROUTED] = _Routed(request, markers)


@dataclass
class _Routed:
    """A request's session on a routing factory: who must read their writes."""

    request: Request
    markers: Markers
    writers: set[int] = field(default_factory=set)


ROUTED = "db.routed"  # session.info: the _Routed of a request's session


# Registered once on the routing session factory (per-session listeners cost
# more than the request's own work): they act on sessions that carry a _Routed.
def _routed_after_flush(session: Session, _context: Any) -> None:
    routed: _Routed | None = session.info.get(ROUTED)
    if routed is None:
        return
    # Who must read their writes: the requester, and users created now
    # (a client that has just registered uses its new token next).
    routed.writers.update(obj.id for obj in session.new if isinstance(obj, User))
    user_id = requester_id(routed.request)
    if user_id is not None:
        routed.writers.add(user_id)


def _routed_after_commit(session: Session) -> None:
    routed: _Routed | None = session.info.get(ROUTED)
    if routed is not None and session.info.get(WROTE) and routed.writers:
        routed.markers.set(routed.writers)


def requester_id(request: Request) -> int | None:
    """The requesting user's id from the credentials alone: no query.

    The API token's subject (signature and expiry checked), or the user id
    in the page session. Computed once per request.
    """
    if "db.requester_id" in request.environ:
        return request.environ["db.requester_id"]
    from myapp import security, sessions  # here: they import the models

    user_id: int | None = None
    token = security.token_from_header(request)
    tokens = request.registry.get("tokens")
    if token is not None and tokens is not None:
        try:
            user_id = tokens.user_id(token)
        except jwt.InvalidTokenError:
            user_id = None
    elif not sessions.is_api(request):
        cookie = request.registry.settings.get("session.cookie_name", sessions.DEFAULT_COOKIE)
        if cookie in request.cookies:
            try:
                auth = request.session.get(sessions.AUTH_KEY)
            except redis.RedisError:
                auth = None
            if isinstance(auth, dict) and isinstance(auth.get("uid"), int):
                user_id = auth["uid"]
    request.environ["db.requester_id"] = user_id
    return user_id


def replica_urls(settings: dict[str, Any]) -> list[str]:
    raw = settings.get("sqlalchemy.replica_urls") or ""
    if isinstance(raw, str):
        raw = aslist(raw.replace(",", " "))
    return [normalize_url(url) for url in raw if url]


def _replica_router(settings: dict[str, Any], primary: Engine) -> ReplicaRouter | None:
    urls = replica_urls(settings)
    if not urls:
        return None
    timeout = int(settings.get("db.replica_connect_timeout", 2))
    engines = [get_engine(settings, url=url, connect_timeout=timeout) for url in urls]
    return ReplicaRouter(
        primary,
        engines,
        max_lag=float(settings.get("db.replica_max_lag", 5)),
        check_interval=float(settings.get("db.replica_check_interval", 2)),
    )


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    # pyramid_tm: one explicit transaction manager per request, so nothing
    # leaks between requests through a thread-local manager.
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    # No transaction around read-only requests (they read in autocommit).
    settings.setdefault("tm.activate_hook", "myapp.db_reads.tm_activate")
    # The budget first: an app whose pools do not fit refuses to start.
    db_budget.enforce(
        settings,
        [normalize_url(settings.get("sqlalchemy.url")), *replica_urls(settings)],
    )
    engine = get_engine(settings)
    router = _replica_router(settings, engine)
    config.registry["db_engine"] = engine
    config.registry["db_router"] = router
    config.registry["dbsession_factory"] = get_session_factory(engine, router)
    config.registry["db_autocommit_reads"] = asbool(
        settings.get("db.autocommit_reads", True)
    ) and not asbool(settings.get("db.pgbouncer", False))
    if router is not None:
        after_write = settings.get("db.primary_after_write") or (
            router.max_lag + router.check_interval + 1
        )
        config.registry["db_markers"] = Markers(
            float(after_write),
            settings.get("redis.url") or None,
            str(settings.get("cache.prefix") or "conduit:"),
        )
        if not settings.get("redis.url"):
            log.warning("read replicas without redis.url: read-your-writes holds per process only")
    held_age = float(settings.get("db.read_connection_max_age", db_held.DEFAULT_MAX_AGE))
    if (
        held_age > 0
        and engine.dialect.name == "postgresql"
        and config.registry["db_autocommit_reads"]
        and not asbool(settings.get("sqlalchemy.pool_pre_ping", False))
        and router is None
    ):
        # Anonymous reads keep their connection between requests (myapp.db_held);
        # each request counts its statements afresh, as after a checkout.
        # (Not with pre-ping, which asks for a check at every checkout, nor
        # with replicas, whose routing makes each request's session.)
        config.registry["db_held_reads"] = db_held.HeldReads(held_age, _statements_afresh)
    config.add_request_method(_dbsession, "dbsession", reify=True)
    # Under the exception views: a read-only request's left-over write fails
    # there (an explicit "under": "over=MAIN" alone let another tween's
    # "over=EXCVIEW" sort it above them).
    config.add_tween("myapp.db_reads.left_writes_tween_factory", under=EXCVIEW)
    # The public reads' connection (myapp.db_reads.reader): the session, or
    # for an anonymous read a Core connection without the Session around it.
    config.add_request_method(reader, "dbreads", reify=True)
    mark_error_retryable(IntegrityError)
    config.scan("myapp.db_errors")
