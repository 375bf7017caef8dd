"""The database: one pooled engine from settings, and ``request.dbsession``.

* The pool is sized from settings (``sqlalchemy.pool_size``, ``max_overflow``,
  ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``) because the right
  numbers depend on the deployment: replicas x workers x (pool_size +
  max_overflow) must stay below Postgres' ``max_connections``.
* Postgres gets a server-side ``statement_timeout`` so that one slow query
  cannot pin a worker (and a pooled connection) forever.
* After ``fork()`` (gunicorn ``preload_app``) the child drops the parent's
  pooled connections without closing them: sockets shared by two processes
  corrupt each other's protocol stream.
* ``request.dbsession`` is joined to the request's transaction by
  pyramid_tm + zope.sqlalchemy: commit when the view returns, abort on error.
* A unique-constraint race (``IntegrityError``) is retryable: pyramid_retry
  replays the request, and the second attempt sees the winner's row and
  answers 409 instead of 500. Serialization failures and deadlocks are marked
  retryable by zope.sqlalchemy itself.
* A database that cannot be reached is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import transaction
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.settings import asbool
from pyramid_retry import mark_error_retryable
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

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


def get_engine(settings: dict[str, Any], prefix: str = "sqlalchemy.") -> Engine:
    """Build a pooled engine from ``settings`` (keys under ``prefix``)."""
    url = normalize_url(settings.get(prefix + "url"))
    is_sqlite = url.startswith("sqlite")
    # create_engine, not engine_from_config: the latter coerces
    # ``pool_timeout`` with int(), so "0.5" would become 0 (no wait at all).
    pool_args: dict[str, Any] = {}
    for name, coerce in POOL_SETTINGS.items():
        value = settings.get(prefix + name)
        if value is not None and value != "" and not (is_sqlite and name != "pool_pre_ping"):
            pool_args[name] = coerce(value)
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        timeout_ms = int(settings.get("db.statement_timeout_ms", 0) or 0)
        if timeout_ms:
            connect_args["options"] = f"-c statement_timeout={timeout_ms}"
        connect_args["connect_timeout"] = int(settings.get("db.connect_timeout", 5))
        connect_args["application_name"] = str(settings.get("db.application_name", "conduit"))
    engine = create_engine(url, connect_args=connect_args, **pool_args)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    # A child process must not reuse the parent's sockets; see module docs.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def get_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_tm_session(
    session_factory: sessionmaker[Session], transaction_manager: transaction.TransactionManager
) -> Session:
    """A session joined to ``transaction_manager`` (pyramid_tm's or a script's)."""
    dbsession = session_factory()
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def _dbsession(request: Request) -> Session:
    return get_tm_session(request.registry["dbsession_factory"], request.tm)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    # pyramid_tm: one explicit transaction manager per request, so nothing
    # leaks between requests through a thread-local manager.
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    engine = get_engine(settings)
    config.registry["db_engine"] = engine
    config.registry["dbsession_factory"] = get_session_factory(engine)
    config.add_request_method(_dbsession, "dbsession", reify=True)
    mark_error_retryable(IntegrityError)
    config.scan("myapp.db_errors")
