"""myapp.db_prepared.fetch: the hot prepared reads on the DBAPI cursor give
the rows SQLAlchemy's usual path gives, through the engine's events and
error handling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import (
    JSON,
    Numeric,
    String,
    TypeDecorator,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from myapp import db_prepared
from myapp.db_reads import CoreReads
from myapp.services import articles
from myapp.services.articles import Filters
from myapp.services.errors import NotFound
from tests.test_db_reads import App, url  # noqa: F401  (the module's database)


@pytest.fixture
def app(url: str) -> Iterator[App]:  # noqa: F811
    instance = App(url)
    yield instance
    instance.close()


class Executions:
    """(EXECUTE of ours?, had an execution context?) for every statement."""

    def __init__(self, app: App):
        self.seen: list[tuple[bool, bool]] = []
        event.listen(app.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, _many: bool):
        self.seen.append((db_prepared.statement_of(sql) is not None, context is not None))


def test_fetch_reads_what_the_session_reads(app: App) -> None:
    token = app.api.register(username="fetcher")["token"]
    for i in range(3):
        app.api.article(token, title=f"Fetched {i}", tagList=["fetch", f"fetch{i}"])
    link = app.api.get("/api/articles?limit=2").headers["Link"]
    before = parse_qs(urlsplit(link.split(";")[0].strip("<>")).query)["before"][0]
    shapes = [
        (Filters(), 20, 0, True),  # the first page of each size the pages use: prepared
        (Filters(), 10, 0, True),
        (Filters(tag="fetch"), 20, 0, True),
        (Filters(author="fetcher"), 2, 1, True),
        (Filters(tag="fetch", before=before), 20, 0, True),  # a cursor's time: converted
        (Filters(before=before), 20, 0, False),  # planned with its values: SQLAlchemy's path
        (Filters(), 20, 1, False),
    ]
    executions = Executions(app)
    reads = CoreReads(lambda: app.engine, app.engine.dialect)
    try:
        with Session(app.engine) as session:
            for filters, limit, offset, fast in shapes:
                executions.seen.clear()
                fetched = articles.list_articles(reads, None, filters, limit, offset)
                # One statement; ours, outside an execution context, when fast.
                assert executions.seen == [(fast, not fast)], filters
                expected = articles.list_articles(session, None, filters, limit, offset)
                assert fetched == expected and fetched[0], filters
                assert all(type(row) is dict for row in fetched[0])
            # The single article (by slug, prepared), and a slug nobody has.
            slug = fetched[0][0]["slug"]
            article = articles.get_view(reads, None, slug)
            assert article == articles.get_view(session, None, slug) and article["body"]
            with pytest.raises(NotFound):
                articles.get_view(reads, None, "no-such-slug")
    finally:
        reads.close()


def test_fetch_only_where_statements_are_prepared(app: App) -> None:
    query, _ = articles._page("postgresql", (), False, False, False, 20)
    values = {"limit": 20, "offset": 0}
    with app.engine.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True  # as CoreReads runs them
        assert db_prepared.fetch(conn, query, values) is not None
        # In a transaction: a failed PREPARE would abort the caller's.
        conn.connection.dbapi_connection.autocommit = False
        assert db_prepared.fetch(conn, query, values) is None
    plain = create_engine(app.engine.url)  # no myapp.db_prepared.enable
    try:
        with plain.connect() as conn:
            conn.connection.dbapi_connection.autocommit = True
            assert db_prepared.fetch(conn, query, values) is None
    finally:
        plain.dispose()


def test_a_dead_connection_under_fetch_is_replaced(app: App) -> None:
    """The server dropped the pooled connection between two anonymous list
    requests: the EXECUTE fails as any statement would (SQLAlchemy
    invalidates the connection, myapp.db marks it retryable), and the
    request is replayed on a fresh connection."""
    app.api.article(app.api.register()["token"], tagList=["dead"])
    assert app.api.get("/api/articles?tag=dead").json["articlesCount"] == 1
    other = create_engine(app.engine.url, poolclass=NullPool)  # not the app's pool
    try:
        with other.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        other.dispose()
    assert killed >= 1  # the app's pooled connections
    app.retried.clear()
    assert app.api.get("/api/articles?tag=dead").json["articlesCount"] == 1
    assert len(app.retried) == 1


class _Shout(TypeDecorator[str]):
    """A type that converts what is read."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return value.upper()


def test_fetch_converts_parameters_as_their_type_says(app: App) -> None:
    """A parameter whose type converts it (here JSON: a dict sent as text)
    is converted as SQLAlchemy's usual path would; a result column whose
    type converts what is read sends the statement down that path."""
    doc = bindparam("doc", type_=JSON)
    kind = select(func.jsonb_typeof(cast(doc, JSONB)).label("kind")).execution_options(prepare=True)
    shouted = select(type_coerce(literal("hi"), _Shout).label("s")).execution_options(prepare=True)
    with app.engine.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True  # as CoreReads runs them
        assert db_prepared.fetch(conn, kind, {"doc": {"a": [1]}}) == [{"kind": "object"}]
        assert db_prepared.fetch(conn, shouted, {}) is None
        # psycopg2's numerics can only say with the column's database type.
        money = select(cast(literal(2), Numeric(10, 2)).label("m")).execution_options(prepare=True)
        assert db_prepared.fetch(conn, money, {}) is None
        assert conn.execute(money).scalar() == 2
        assert conn.execute(shouted).scalar() == "HI"
