"""myapp.db_held: anonymous reads keep their process's connection between
requests; sessions, age, errors, other threads and forks give it back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from myapp import db_held
from tests.test_db_reads import App, Checkouts, url  # noqa: F401  (the module's database)


@pytest.fixture
def app(url: str) -> Iterator[App]:  # noqa: F811
    instance = App(url)
    yield instance
    instance.close()


def _checkouts(checkouts: Checkouts, app: App, path: str, **kw: Any) -> int:
    return checkouts.during(lambda: app.api.app.get(path, status=200, **kw))[1]


def test_anonymous_reads_keep_one_connection(app: App) -> None:
    token = app.api.register()["token"]
    app.api.article(token, tagList=["kept"])
    checkouts = Checkouts(app.engine)
    held = app.wsgi.registry["db_held_reads"]
    # The first anonymous read takes a connection; the next ones reuse it.
    assert _checkouts(checkouts, app, "/api/articles?tag=kept") == 1
    assert _checkouts(checkouts, app, "/api/articles?tag=kept") == 0
    assert _checkouts(checkouts, app, "/api/tags") == 0
    assert app.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    (kept,) = held._kept.values()
    conn = kept.conn
    assert not kept.busy and conn.connection.dbapi_connection.autocommit is True
    assert not conn.in_transaction()  # nothing open between requests
    # A logged-in read makes the Session: the idle kept connection goes
    # back first, so the process never has two.
    headers = {"Authorization": f"Token {token}"}
    most, count = checkouts.during(
        lambda: app.api.app.get("/api/articles?tag=kept", headers=headers, status=200)
    )
    assert (most, count) == (1, 1)
    assert held._kept == {}
    assert _checkouts(checkouts, app, "/api/articles?tag=kept") == 1


def test_a_kept_connection_is_renewed_when_old(url: str) -> None:  # noqa: F811
    app = App(url, **{"db.read_connection_max_age": "0.2"})
    try:
        checkouts = Checkouts(app.engine)
        assert _checkouts(checkouts, app, "/api/tags") == 1
        assert _checkouts(checkouts, app, "/api/tags") == 0
        time.sleep(0.25)
        assert _checkouts(checkouts, app, "/api/tags") == 1
        assert app.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        app.close()


@pytest.mark.parametrize(
    "settings",
    [{"db.read_connection_max_age": "0"}, {"sqlalchemy.pool_pre_ping": "true"}],
)
def test_off_by_setting_or_with_pre_ping(url: str, settings: dict[str, str]) -> None:  # noqa: F811
    app = App(url, **settings)
    try:
        assert "db_held_reads" not in app.wsgi.registry
        checkouts = Checkouts(app.engine)
        assert _checkouts(checkouts, app, "/api/tags") == 1
        assert _checkouts(checkouts, app, "/api/tags") == 1
        assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        app.close()


def test_an_invalidated_connection_is_dropped(app: App) -> None:
    held = app.wsgi.registry["db_held_reads"]
    first = held.connect(app.engine)
    held.release(first)
    assert held.connect(app.engine) is first
    first.invalidate()  # what SQLAlchemy does when the server is gone
    held.release(first)
    assert held._kept == {}
    second = held.connect(app.engine)
    assert second is not first and not second.invalidated
    held.release(second)


def test_a_forked_child_keeps_nothing_of_its_parent(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = app.wsgi.registry["db_held_reads"]
    parents = held.connect(app.engine)
    held.release(parents)
    parents_kept = held._kept
    monkeypatch.setattr(db_held.os, "getpid", lambda: -1)  # as in the child
    childs = held.connect(app.engine)
    assert childs is not parents and held._kept[app.engine].conn is childs
    held.release(childs)
    held.give_back()
    assert not parents.closed  # the child left its parent's alone
    monkeypatch.undo()
    held._pid, held._kept = db_held.os.getpid(), parents_kept  # back in the parent
    held.give_back()
    assert parents.closed and app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_threads_share_the_kept_connection_one_at_a_time(app: App) -> None:
    """A thread that finds the kept connection in use checks one out of the
    pool and gives it back; a Session made in any thread gives the idle kept
    one back."""
    held = app.wsgi.registry["db_held_reads"]
    mine = held.connect(app.engine)
    seen: list[Any] = []

    def other_thread() -> None:
        theirs = held.connect(app.engine)
        seen.append(theirs)
        held.release(theirs)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen[0] is not mine and seen[0].closed  # not kept: back in the pool
    held.release(mine)
    assert app.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    thread = threading.Thread(target=held.give_back)
    thread.start()
    thread.join()
    assert mine.closed and app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
