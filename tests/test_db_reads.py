"""Cheap reads on Postgres: prepared statements (myapp.db_prepared) and
read-only requests in autocommit (myapp.db), against an app that commits
for real on a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.events import ContextFound, NewResponse
from pyramid_retry import IBeforeRetry
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from myapp import db_prepared
from myapp.config import configure
from myapp.db_reads import CoreReads, ReadOnlyRequestWrote
from myapp.models import Tag
from tests.conftest import Api, base_settings, migrated_database


def test_translate_numbers_each_parameter_once() -> None:
    prepared = db_prepared.translate(
        "SELECT a FROM t WHERE b = %(x)s AND c = %(y)s AND d = %(x)s AND e LIKE 'z%%'"
    )
    assert prepared.name.startswith("conduit_")
    assert prepared.prepare == (
        f"PREPARE {prepared.name} AS SELECT a FROM t WHERE b = $1 AND c = $2 AND d = $1 "
        "AND e LIKE 'z%'"
    )
    assert prepared.execute == f"EXECUTE {prepared.name}(%(x)s, %(y)s)"
    # Same statement, same name (every process); another statement, another.
    assert db_prepared.translate("SELECT 1").name == db_prepared.translate("SELECT 1").name
    assert db_prepared.translate("SELECT 2").name != db_prepared.translate("SELECT 1").name


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    yield from migrated_database()


class App:
    """The app on its own engine, with what each statement ran under."""

    def __init__(self, url: str, **extra: str):
        config = configure(
            base_settings(url) | {"cache.enabled": "false", "jobs.runner": "inline"} | extra
        )
        # (Wrong) views that write on GET: through the ORM, and with a statement.
        config.add_route("test.writes_on_get", "/api/test/writes-on-get/{name}")
        config.add_view(_writes_on_get, route_name="test.writes_on_get", renderer="json")
        config.add_route("test.inserts_on_get", "/api/test/inserts-on-get/{name}")
        config.add_view(_inserts_on_get, route_name="test.inserts_on_get", renderer="json")
        config.add_route("test.adds_on_get", "/api/test/adds-on-get/{name}")
        config.add_view(_adds_on_get, route_name="test.adds_on_get", renderer="json")
        config.add_route("test.conflicts_once", "/api/test/conflicts-once/{name}")
        config.add_view(_conflicts_once, route_name="test.conflicts_once", renderer="json")
        self.retried: list[BaseException] = []
        config.add_subscriber(lambda e: self.retried.append(e.exception), IBeforeRetry)
        self.wsgi = config.make_wsgi_app()
        self.engine: Engine = self.wsgi.registry["db_engine"]
        self.api = Api(webtest.TestApp(self.wsgi, extra_environ={"HTTP_HOST": "localhost"}))
        self.autocommit: list[tuple[str, bool]] = []
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        self.autocommit.append((sql, conn.connection.dbapi_connection.autocommit))

    def prepared_on_server(self) -> set[str]:
        self.give_back()
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT name FROM pg_prepared_statements"))
            return {name for (name,) in rows}

    def give_back(self) -> None:
        """The connection this thread keeps for reads (myapp.db_held), back
        to the pool: the tests' own statements may need the pool's only one."""
        held = self.wsgi.registry.get("db_held_reads")
        if held is not None:
            held.give_back()

    def close(self) -> None:
        self.give_back()
        self.engine.dispose()


def _writes_on_get(request: Any) -> dict[str, str]:
    request.dbsession.add(Tag(name=request.matchdict["name"]))
    request.dbsession.flush()
    return {"wrote": "yes"}


def _inserts_on_get(request: Any) -> dict[str, str]:
    request.dbsession.execute(insert(Tag).values(name=request.matchdict["name"]))
    return {"wrote": "yes"}


def _adds_on_get(request: Any) -> dict[str, str]:
    request.dbsession.add(Tag(name=request.matchdict["name"]))  # and no flush
    return {"wrote": "maybe"}


_CONFLICTED: set[str] = set()


def _conflicts_once(request: Any) -> dict[str, str]:
    """Through the session (a viewer's reads): a serialization failure, once."""
    name = request.matchdict["name"]
    if name not in _CONFLICTED:
        _CONFLICTED.add(name)
        request.dbsession.execute(text("DO $$ BEGIN RAISE SQLSTATE '40001'; END $$"))
    return {"read": request.dbsession.execute(text("SELECT 'ok'")).scalar_one()}


@pytest.fixture
def app(url: str) -> Iterator[App]:
    # One pooled connection: what the requests prepared is what we look at.
    instance = App(url, **{"sqlalchemy.pool_size": "1", "sqlalchemy.max_overflow": "0"})
    yield instance
    instance.close()


def test_reads_run_in_autocommit_and_writes_in_a_transaction(app: App) -> None:
    token = app.api.register()["token"]
    app.api.article(token, tagList=["t"])
    writes = list(app.autocommit)
    app.autocommit.clear()
    assert app.api.get("/api/articles?tag=t").json["articlesCount"] == 1
    reads = list(app.autocommit)
    assert writes and not any(on for _sql, on in writes)
    assert reads and all(on for _sql, on in reads)
    # Back in the pool (kept by the thread until given back: myapp.db_held),
    # the connection is transactional again.
    app.give_back()
    with app.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]


def test_a_read_only_request_may_not_write(app: App, caplog: pytest.LogCaptureFixture) -> None:
    app.api.app.get("/api/test/writes-on-get/sneaky", status=500)
    app.api.app.get("/api/test/inserts-on-get/sneakier", status=500)
    logged = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert logged.count(ReadOnlyRequestWrote) == 2
    app.api.app.post("/api/test/writes-on-get/allowed", status=200)
    app.api.app.post("/api/test/inserts-on-get/allowed-too", status=200)
    with app.engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM tags")).scalars())
    assert not {"sneaky", "sneakier"} & names and {"allowed", "allowed-too"} <= names


class Transactions:
    """(method, in a transaction?, made a session?) for every request."""

    def __init__(self, app: App):
        self.seen: list[tuple[str, bool, bool]] = []
        self._began: list[bool] = []
        # The view's context is found inside pyramid_tm's tween; the
        # response is announced after it has finished.
        app.wsgi.registry.registerHandler(self._found, (ContextFound,))
        app.wsgi.registry.registerHandler(self._answered, (NewResponse,))

    def _found(self, event: ContextFound) -> None:
        self._began.append(bool(event.request.environ.get("tm.active")))

    def _answered(self, event: NewResponse) -> None:
        request = event.request
        self.seen.append((request.method, self._began.pop(), "dbsession" in request.__dict__))


def test_read_only_requests_begin_no_transaction(app: App) -> None:
    """pyramid_tm leaves GET, HEAD and OPTIONS alone (db_reads.tm_activate):
    a logged-in GET's session joins no transaction, reads in autocommit and
    is closed when the request ends (the pool's only connection is free
    again); writes keep theirs."""
    transactions = Transactions(app)
    token = app.api.register()["token"]
    app.autocommit.clear()
    for _ in range(3):  # a session left open would hold the pool's one connection
        assert app.api.get("/api/user", token=token).json["user"]["token"]
        app.api.app.head("/api/user", headers=Api.auth(token), status=200)
    assert app.autocommit and all(on for _sql, on in app.autocommit)
    app.api.put("/api/user", {"user": {"bio": "no transaction for reads"}}, token, status=200)
    assert transactions.seen == [
        ("POST", True, True),
        *[("GET", False, True), ("HEAD", False, True)] * 3,
        ("PUT", True, True),
    ]
    app.give_back()
    assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # Pages too: the home page of someone logged in, through the session.
    assert app.api.get("/api/articles", token=token).json["articlesCount"] >= 0
    assert transactions.seen[-1] == ("GET", False, True)


def test_reads_in_transactions_where_reads_do_not_autocommit(url: str) -> None:
    app = App(url, **{"db.autocommit_reads": "false"})
    try:
        transactions = Transactions(app)
        token = app.api.register()["token"]
        app.api.get("/api/user", token=token, status=200)
        assert transactions.seen == [("POST", True, True), ("GET", True, True)]
    finally:
        app.close()


def test_a_read_only_requests_left_over_write_fails_loudly(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """A GET's session joins no transaction: a change the view left unflushed
    fails as the commit's flush would have, through the exception views (the
    API's error shape), not dropped and not after the response."""
    answer = app.api.app.get("/api/test/adds-on-get/left-over", status=500)
    assert answer.json == {"errors": {"server": ["unexpected error"]}}
    logged = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert logged == [ReadOnlyRequestWrote]
    app.give_back()
    with app.engine.connect() as conn:
        assert not conn.execute(text("SELECT 1 FROM tags WHERE name = 'left-over'")).all()
    assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_read_only_requests_serialization_failure_is_retried(app: App) -> None:
    """SQLSTATE class 40 (a replica's conflict with recovery, say): replayed
    for a request without a transaction too."""
    assert app.api.get("/api/test/conflicts-once/r1").json == {"read": "ok"}
    assert len(app.retried) == 1 and "40001" in repr(app.retried[0].orig)  # type: ignore[attr-defined]


def test_hot_reads_are_prepared_once_per_connection(app: App) -> None:
    token = app.api.register()["token"]
    slug = app.api.article(token, tagList=["p"])["slug"]
    app.autocommit.clear()
    for _ in range(3):
        app.api.get("/api/articles?tag=p", status=200)
        app.api.get(f"/api/articles/{slug}", status=200)
    executed = [sql for sql, _on in app.autocommit if sql.startswith("EXECUTE conduit_")]
    names = {sql.split("(")[0].split()[1] for sql in executed}
    assert len(executed) == 6 and len(names) == 2
    assert names <= app.prepared_on_server()


def test_only_the_usual_first_page_sizes_are_prepared(app: App) -> None:
    """Each prepared size is kept by every connection: a client choosing
    ``limit`` cannot make them hold a hundred statements."""
    app.api.article(app.api.register()["token"])  # a page with rows: one statement each
    app.autocommit.clear()
    app.api.get("/api/articles?limit=7", status=200)
    app.api.get("/api/articles?limit=20", status=200)
    app.api.get("/api/articles?limit=10", status=200)
    prepared = [sql.startswith("EXECUTE") for sql, _on in app.autocommit]
    assert prepared == [False, True, True]


def test_a_connection_that_lost_its_statements_is_replaced(app: App) -> None:
    token = app.api.register()["token"]
    app.api.article(token, tagList=["lost"])
    assert app.api.get("/api/articles?tag=lost").json["articlesCount"] == 1
    app.give_back()
    with app.engine.connect() as conn:
        conn.exec_driver_sql("DEALLOCATE ALL")  # what a pooler's reset does
        conn.commit()
    # The EXECUTE fails on that connection; the request is replayed on a new one.
    assert app.api.get("/api/articles?tag=lost").json["articlesCount"] == 1
    assert len(app.retried) == 1
    assert "does not exist" in str(app.retried[0])


@pytest.mark.parametrize(
    "settings",
    [{"db.prepared_statements": "false", "db.autocommit_reads": "false"}, {"db.pgbouncer": "true"}],
)
def test_both_can_be_turned_off(url: str, settings: dict[str, str]) -> None:
    app = App(url, **settings)
    try:
        token = app.api.register()["token"]
        tag = f"off-{len(settings)}"
        app.api.article(token, tagList=[tag])
        app.autocommit.clear()
        assert app.api.get(f"/api/articles?tag={tag}").json["articlesCount"] == 1
        assert app.autocommit and not any(on for _sql, on in app.autocommit)
        assert not any(sql.startswith("EXECUTE") for sql, _on in app.autocommit)
    finally:
        app.close()


def test_anonymous_public_reads_skip_the_session(url: str) -> None:
    """request.dbreads (myapp.db_reads.reader): a Core connection for an
    anonymous read, back in the pool when the request ends; the session
    for everything else. An anonymous read never makes the Session at all."""
    app = App(url)
    used: list[tuple[str, str, type]] = []
    sessions: list[tuple[str, str]] = []

    def record(event: Any) -> None:
        request = event.request
        if "dbreads" in request.__dict__:
            used.append((request.method, request.path, type(request.__dict__["dbreads"])))
        if "dbsession" in request.__dict__:
            sessions.append((request.method, request.path))

    app.wsgi.registry.registerHandler(record, (NewResponse,))
    try:
        token = app.api.register()["token"]
        slug = app.api.article(token, tagList=["core"])["slug"]  # POST: its session
        assert app.api.get("/api/articles?tag=core").json["articlesCount"] == 1
        assert app.api.get(f"/api/articles/{slug}").json["article"]["tagList"] == ["core"]
        assert "core" in app.api.get("/api/tags").json["tags"]
        app.api.get("/api/articles?tag=core", token)  # credentials: the session
        app.api.app.get("/", status=200)  # a page, anonymous
        app.api.app.get("/", headers={"Cookie": "x=1"}, status=200)  # a cookie: the session
        kinds = [(method, path, issubclass(kind, Session)) for method, path, kind in used]
        assert kinds == [
            ("POST", "/api/articles", True),
            ("GET", "/api/articles", False),
            ("GET", f"/api/articles/{slug}", False),
            ("GET", "/api/tags", False),
            ("GET", "/api/articles", True),
            ("GET", "/", False),
            ("GET", "/", True),
        ]
        assert all(issubclass(kind, CoreReads) for *_, kind in used[1:4] + used[5:6])
        assert sessions == [
            ("POST", "/api/users"),
            ("POST", "/api/articles"),
            ("GET", "/api/articles"),
            ("GET", "/"),
        ]
        assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        app.close()


class Checkouts:
    """The most connections the engine's pool had out at once, and how many checkouts."""

    def __init__(self, engine: Engine):
        self.out = self.most = self.count = 0
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, *_args: Any) -> None:
        self.out += 1
        self.count += 1
        self.most = max(self.most, self.out)

    def _checkin(self, *_args: Any) -> None:
        self.out -= 1

    def during(self, call: Any) -> tuple[int, int]:
        """(most connections out at once, checkouts) while ``call`` runs;
        one kept by the thread (myapp.db_held) counts as out."""
        self.most, self.count = self.out, 0
        call()
        return self.most, self.count


@pytest.mark.parametrize("cache", ["false", "true"])
def test_a_request_holds_one_connection_at_most(url: str, cache: str) -> None:
    app = App(url, **{"cache.enabled": cache})
    checkouts = Checkouts(app.engine)
    try:
        token = app.api.register()["token"]
        slug = app.api.article(token, tagList=["once"])["slug"]
        app.api.app.post_json(
            f"/api/articles/{slug}/comments", {"comment": {"body": "hi"}},
            headers={"Authorization": f"Token {token}"}, extra_environ={},
        )  # fmt: skip
        # (The article page always reads its comments and the article's row.)
        for path, cached in [("/", True), ("/tag/once", True), (f"/article/{slug}", False),
                             ("/api/articles?tag=once", True), (f"/api/articles/{slug}", True),
                             ("/api/tags", True)]:  # fmt: skip
            most, _count = checkouts.during(lambda p=path: app.api.app.get(p, status=200))
            # Never two at once (with the cache on, a write may have stored it already).
            assert most == 1 if cache == "false" else most <= 1, path
            if cache == "true" and cached:
                # Asked again: the cache answers, no connection is taken.
                again = checkouts.during(lambda p=path: app.api.app.get(p, status=200))
                assert again[1] == 0 and again[0] <= 1, (path, again)
        app.give_back()
        assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        app.close()
