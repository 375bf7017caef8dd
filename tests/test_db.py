"""The database layer: pool and timeouts from settings, environment
overrides, a database that is down, and unique-constraint races."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from pyramid.router import Router
from pyramid_retry import IBeforeRetry, is_error_retryable
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from webob import Request

from myapp.config import configure, settings_from_environment
from myapp.db import get_engine
from tests.conftest import Api, base_settings, migrated_database

# --- the engine -------------------------------------------------------------------


def test_pool_and_statement_timeout_come_from_settings(database_url: str) -> None:
    engine = get_engine(
        {
            "sqlalchemy.url": database_url,
            "sqlalchemy.pool_size": "3",
            "sqlalchemy.max_overflow": "4",
            "sqlalchemy.pool_timeout": "7.5",
            "sqlalchemy.pool_recycle": "600",
            "sqlalchemy.pool_pre_ping": "true",
            "db.statement_timeout_ms": "1234",
            "db.application_name": "conduit-test",
        }
    )
    try:
        assert isinstance(engine.pool, pool.QueuePool)
        assert engine.pool.size() == 3
        assert engine.pool._max_overflow == 4
        assert engine.pool._timeout == 7.5
        assert engine.pool._recycle == 600
        assert engine.pool._pre_ping is True
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1234ms"
            assert conn.execute(text("SHOW application_name")).scalar_one() == "conduit-test"
    finally:
        engine.dispose()


def test_environment_overrides_the_ini_and_explicit_settings_win() -> None:
    ini = {
        "sqlalchemy.url": "sqlite:///ini.sqlite",
        "sqlalchemy.pool_size": "5",
        "auth.secret": "from-ini",
        "api.max_body_bytes": "100",
    }
    environ = {
        "DATABASE_URL": "postgresql://env/db",
        "DB_POOL_SIZE": "9",
        "DB_POOL_PRE_PING": "false",
        "SECRET_KEY": "from-env",
        "MAX_BODY_BYTES": "",  # empty: not set
    }
    settings = settings_from_environment(ini | {"_explicit": ["auth.secret"]}, environ)
    assert settings["sqlalchemy.url"] == "postgresql://env/db"
    assert settings["sqlalchemy.pool_size"] == 9
    assert settings["sqlalchemy.pool_pre_ping"] is False
    assert settings["auth.secret"] == "from-ini"
    assert settings["api.max_body_bytes"] == "100"
    assert "_explicit" not in settings
    assert settings_from_environment(ini, {}) == ini


def test_the_app_builds_its_engine_from_the_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "4321")
    settings = base_settings(database_url)
    engine = configure(settings).registry["db_engine"]
    try:
        assert engine.pool.size() == 7
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "4321ms"
    finally:
        engine.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_reuse_the_parents_connections(database_url: str) -> None:
    engine = get_engine({"sqlalchemy.url": database_url})
    try:
        with engine.connect() as conn:
            parent_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                with engine.connect() as conn:
                    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                os.write(write, str(pid).encode())
            finally:
                os._exit(0)
        os.close(write)
        deadline = time.monotonic() + 30
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:  # a fork with threads can deadlock
                os.kill(child, 9)
                os.waitpid(child, 0)
                pytest.fail("the child process hung")
            time.sleep(0.02)
        child_pid = int(os.read(read, 100) or 0)
        os.close(read)
        assert child_pid and child_pid != parent_pid
        # And the parent's pooled connection still works.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == parent_pid
    finally:
        engine.dispose()


# --- failures -----------------------------------------------------------------------


def closed_port() -> int:
    for port in range(6629, 6620, -1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no closed port in 6621-6629")


def call(app: Router, method: str, url: str, body: Any = None) -> Any:
    request = Request.blank(url, method=method, headers={"Host": "localhost"})
    if body is not None:
        request.content_type = "application/json"
        request.body = json.dumps(body).encode()
    return request.get_response(app)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/tags", None),
        ("GET", "/api/articles", None),
        ("GET", "/api/profiles/someone", None),
        ("POST", "/api/users", {"user": {"username": "u", "email": "u@x.io", "password": "p" * 8}}),
    ],
)
def test_a_database_that_is_down_gives_503(method: str, url: str, body: Any) -> None:
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/nothing"
    settings = base_settings(down) | {"db.connect_timeout": "2"}
    app = configure(settings).make_wsgi_app()
    try:
        res = call(app, method, url, body)
        assert res.status_code == 503
        assert res.content_type == "application/json"
        assert res.json == {"errors": {"database": ["is unavailable, try again shortly"]}}
        assert int(res.headers["Retry-After"]) > 0
    finally:
        app.registry["db_engine"].dispose()


# --- a committing database of our own ------------------------------------------


@pytest.fixture(scope="module")
def private_url() -> Iterator[str]:
    yield from migrated_database()


@pytest.fixture
def holder(private_url: str) -> Iterator[Connection]:
    """A third connection that can hold locks the app's requests wait for."""
    engine = create_engine(private_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        yield conn
        conn.rollback()
    engine.dispose()


def make_app(url: str, **extra: str) -> tuple[Router, list[BaseException]]:
    """An app on ``url`` that commits for real; it records each retried error."""
    config = configure(base_settings(url) | extra)
    retried: list[BaseException] = []
    config.add_subscriber(lambda event: retried.append(event.exception), IBeforeRetry)
    return config.make_wsgi_app(), retried


def waiting_on(conn: Connection, table: str) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE NOT l.granted AND c.relname = :table AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"table": table},
    ).scalar_one()


def race_registrations(app: Router, holder: Connection, username: str) -> list[Any]:
    """Two registrations of ``username`` that both pass the "is it taken?" check.

    ``holder`` locks ``users`` in SHARE mode: reads go on, INSERTs wait. Once
    both requests wait at their INSERT (each has checked and found nothing),
    the lock goes and the two inserts race for the unique index.
    """
    holder.execute(text("LOCK TABLE users IN SHARE MODE"))
    bodies = [
        {"user": {"username": username, "email": f"{username}{i}@x.io", "password": "p" * 8}}
        for i in range(2)
    ]
    with ThreadPoolExecutor(2) as pool_:
        futures = [pool_.submit(call, app, "POST", "/api/users", body) for body in bodies]
        deadline = time.monotonic() + 30
        while waiting_on(holder, "users") < 2:
            assert not any(f.done() for f in futures), [f.result().text for f in futures]
            assert time.monotonic() < deadline, "the requests never reached their INSERT"
            time.sleep(0.02)
        holder.commit()
        return sorted((f.result(timeout=60) for f in futures), key=lambda r: r.status_code)


class _FirstAttempt:
    """All ``is_error_retryable`` reads of a request: which attempt this is."""

    environ = {"retry.attempt": 0, "retry.attempts": 3}


def test_integrity_errors_are_retryable() -> None:
    error = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert is_error_retryable(_FirstAttempt(), error)


def test_a_lost_race_is_retried_into_a_friendly_409(private_url: str, holder: Connection) -> None:
    app, retried = make_app(private_url)
    try:
        created, conflict = race_registrations(app, holder, "racer")
    finally:
        app.registry["db_engine"].dispose()
    assert created.status_code == 201, created.text
    # The second attempt found the winner's row in the pre-check.
    assert conflict.status_code == 409, conflict.text
    assert conflict.json == {"errors": {"username": ["has already been taken"]}}
    assert len(retried) == 1
    assert isinstance(retried[0], IntegrityError)
    count = holder.execute(text("SELECT count(*) FROM users WHERE username = 'racer'"))
    assert count.scalar_one() == 1


def test_a_race_lost_on_the_last_attempt_is_409(private_url: str, holder: Connection) -> None:
    app, retried = make_app(private_url, **{"retry.attempts": "1"})
    try:
        created, conflict = race_registrations(app, holder, "lastracer")
    finally:
        app.registry["db_engine"].dispose()
    assert created.status_code == 201, created.text
    assert conflict.status_code == 409, conflict.text
    assert conflict.json == {"errors": {"resource": ["conflicts with a concurrent change"]}}
    assert retried == []


def test_a_statement_timeout_is_503_not_a_hang(private_url: str, holder: Connection) -> None:
    app, _ = make_app(private_url, **{"db.statement_timeout_ms": "200"})
    holder.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call(app, "GET", "/api/profiles/x")))
    try:
        thread.start()
        thread.join(timeout=60)
    finally:
        holder.rollback()
        thread.join(timeout=60)
        app.registry["db_engine"].dispose()
    assert result, "the request never returned"
    assert result[0].status_code == 503
    assert "Retry-After" in result[0].headers


def test_timestamps_are_utc_whatever_the_session_time_zone(
    api: Api, connection: Connection
) -> None:
    author = api.register()
    before = datetime.now(UTC)
    connection.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
    slug = api.article(author["token"])["slug"]
    created = api.get(f"/api/articles/{slug}").json["article"]["createdAt"]
    parsed = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((parsed - before).total_seconds()) < 60, (created, before)


@pytest.mark.parametrize(
    ("pre_ping", "pgbouncer"), [("false", "false"), ("true", "false"), ("false", "true")]
)
def test_a_stale_pooled_connection_is_retried_not_a_503(
    private_url: str, holder: Connection, pre_ping: str, pgbouncer: str
) -> None:
    """The server dropped the pooled connection between two requests: with
    pre-ping off (production.ini) the first statement fails, and the request
    is replayed on a fresh connection instead of answering 503. Behind
    PgBouncer the first statement is the transaction's SET LOCAL."""
    name = f"conduit-stale-{pre_ping}-{pgbouncer}"
    settings = {
        "sqlalchemy.pool_pre_ping": pre_ping,
        "db.application_name": name,
        "db.pgbouncer": pgbouncer,
        "db.statement_timeout_ms": "5000",
    }
    app, retried = make_app(private_url, **settings, **{"cache.enabled": "false"})
    try:
        assert call(app, "GET", "/api/tags").status_code == 200
        killed = holder.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 "WHERE application_name = :n"),
            {"n": name},
        ).scalar_one()  # fmt: skip
        assert killed == 1
        assert call(app, "GET", "/api/tags").status_code == 200
        # Pre-ping finds the dead connection before any statement; without
        # it, the statement fails once and pyramid_retry replays the request.
        assert len(retried) == (1 if pre_ping == "false" else 0)
    finally:
        app.registry["db_engine"].dispose()
