"""Test fixtures: a private Postgres database per test run and xdist worker.

``TEST_DATABASE_URL`` names a server (default: the local one). Each run
creates ``conduit_test_<random>_<worker>`` on it, builds it with
``alembic upgrade head`` (so the migrations are what is tested), and drops
it at the end; no other database is touched, so the server can be shared.

Each test runs inside a transaction that is rolled back afterwards; the
app's sessions join it with ``create_savepoint``, so code that commits
(pyramid_tm at the end of a request) really commits — to a savepoint.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from myapp.config import configure
from myapp.db import normalize_url
from myapp.scripts import migrate
from tests.pages_support import Browser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return normalize_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER))


def _admin_engine() -> Engine:
    return create_engine(server_url(), isolation_level="AUTOCOMMIT", pool_size=1)


def create_database(prefix: str = "conduit_test") -> str:
    """Create an empty, uniquely named database; return its URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}_{worker}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names — only ever one this run created."""
    name = make_url(url).database
    assert name and name.startswith("conduit_test"), name
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def migrated_database(prefix: str = "conduit_test") -> Iterator[str]:
    """A new database at Alembic's head while the generator runs, dropped after."""
    url = create_database(prefix)
    try:
        migrate.upgrade(str(ROOT / "development.ini"), url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    yield from migrated_database()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def base_settings(database_url: str) -> dict[str, Any]:
    settings = {
        "sqlalchemy.url": database_url,
        "auth.secret": "test-secret-" + "x" * 32,
        "auth.token_ttl_seconds": "3600",
        # Cheap hashes: the tests check behaviour, not argon2's cost.
        "auth.argon2_time_cost": "1",
        "auth.argon2_memory_cost": "1024",
        "auth.argon2_parallelism": "1",
        "retry.attempts": "3",
        "tm.annotate_user": "false",
    }
    settings["_explicit"] = list(settings)
    return settings


@pytest.fixture(scope="session")
def app_settings(database_url: str) -> dict[str, Any]:
    return base_settings(database_url)


@pytest.fixture(scope="session")
def wsgi_app(app_settings: dict[str, Any]) -> Any:
    return configure(app_settings).make_wsgi_app()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def dbsession(connection: Connection) -> Iterator[Session]:
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield session
    session.close()


@pytest.fixture
def testapp(wsgi_app: Any, connection: Connection) -> webtest.TestApp:
    factory = wsgi_app.registry["dbsession_factory"]
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    # The database is rolled back after each test; so is the cache.
    wsgi_app.registry["cache"].invalidate_all()
    return webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})


class QueryCounter:
    """Counts the SQL statements sent on one connection."""

    def __init__(self, conn: Connection):
        self.statements: list[str] = []
        event.listen(conn, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def queries(connection: Connection) -> QueryCounter:
    return QueryCounter(connection)


class Api:
    """Small helpers over WebTest for the JSON API."""

    def __init__(self, app: webtest.TestApp):
        self.app = app
        self.counter = 0

    @staticmethod
    def auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Token {token}"} if token else {}

    def get(self, url: str, token: str | None = None, status: int | str = 200) -> Any:
        return self.app.get(url, headers=self.auth(token), status=status)

    def post(self, url: str, body: Any = None, token: str | None = None, status: Any = "*") -> Any:
        return self.app.post_json(url, body, headers=self.auth(token), status=status)

    def put(self, url: str, body: Any, token: str | None = None, status: Any = "*") -> Any:
        return self.app.put_json(url, body, headers=self.auth(token), status=status)

    def delete(self, url: str, token: str | None = None, status: Any = "*") -> Any:
        return self.app.delete(url, headers=self.auth(token), status=status)

    def register(
        self, username: str | None = None, password: str = "password123"
    ) -> dict[str, Any]:
        self.counter += 1
        username = username or f"user{self.counter}_{uuid.uuid4().hex[:6]}"
        body = {
            "user": {"username": username, "email": f"{username}@example.com", "password": password}
        }
        return self.post("/api/users", body, status=201).json["user"]

    def article(self, token: str, **fields: Any) -> dict[str, Any]:
        self.counter += 1
        data = {"title": f"Title {self.counter}", "description": "d", "body": "b"} | fields
        return self.post("/api/articles", {"article": data}, token, status=201).json["article"]


@pytest.fixture
def api(testapp: webtest.TestApp) -> Api:
    return Api(testapp)


@pytest.fixture(scope="session", autouse=True)
def job_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Mail and exports written by background jobs land in this run's tmp dir
    (MAIL_OUTBOX / EXPORTS_DIR), never in the repository or a shared /tmp."""
    root = tmp_path_factory.mktemp("jobs")
    names = {"MAIL_OUTBOX": root / "outbox", "EXPORTS_DIR": root / "exports"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(path) for name, path in names.items()})
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# Two logged-in visitors of the pages (tests/pages_support.py drives them).
@pytest.fixture
def author(testapp: webtest.TestApp) -> Browser:
    browser = Browser(testapp)
    browser.register()
    return browser


@pytest.fixture
def reader(testapp: webtest.TestApp) -> Browser:
    browser = Browser.new(testapp)
    browser.register()
    return browser
