"""The cache on a real Redis: fewer queries, fresh after commit, per-user
flags, nothing on rollback, fail-open when Redis is gone, one regeneration
under concurrent misses."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from myapp.cache import build_cache, pending
from tests.cache_support import cache_of, make_app, redis_settings, two_apps
from tests.conftest import Api, QueryCounter

__all__ = ["redis_settings", "two_apps"]  # fixtures shared with the other cache tests


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cached_read_issues_fewer_queries(two_apps: tuple[Api, Api], queries: QueryCounter) -> None:
    a, _ = two_apps
    author = a.register()
    slug = a.article(author["token"], tagList=["x"])["slug"]
    for url in (f"/api/articles/{slug}", "/api/articles?limit=5", "/api/tags"):
        queries.reset()
        first = a.get(url).json
        cold = queries.count
        queries.reset()
        second = a.get(url).json
        assert second == first
        assert cold > 0 and queries.count == 0, url
    # Anonymous repeats are whole responses from the views region...
    assert cache_of(a).stats["views"].hits == 3
    # ...and a logged-in reader shares the article's cached representation.
    queries.reset()
    a.get(f"/api/articles/{slug}", author["token"])
    assert cache_of(a).stats["articles"].hits >= 1


def test_update_is_visible_at_once_on_the_other_replica(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author = a.register()
    slug = a.article(author["token"], title="Before")["slug"]
    assert b.get(f"/api/articles/{slug}").json["article"]["title"] == "Before"
    assert b.get("/api/articles").json["articles"][0]["title"] == "Before"
    updated = a.put(f"/api/articles/{slug}", {"article": {"title": "After"}}, author["token"])
    new_slug = updated.json["article"]["slug"]
    assert b.get(f"/api/articles/{new_slug}").json["article"]["title"] == "After"
    assert b.get(f"/api/articles/{slug}", status=404)
    assert b.get("/api/articles").json["articles"][0]["title"] == "After"
    # A profile change reaches the articles that embed it.
    a.put("/api/user", {"user": {"bio": "new bio"}}, author["token"])
    assert b.get(f"/api/articles/{new_slug}").json["article"]["author"]["bio"] == "new bio"
    assert b.get(f"/api/profiles/{author['username']}").json["profile"]["bio"] == "new bio"


def test_favorites_and_tags_are_fresh_after_commit(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author, reader = a.register(), a.register()
    slug = a.article(author["token"], tagList=["fresh-tag"])["slug"]
    assert "fresh-tag" in b.get("/api/tags").json["tags"]
    assert b.get(f"/api/articles/{slug}").json["article"]["favoritesCount"] == 0
    a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    assert b.get(f"/api/articles/{slug}").json["article"]["favoritesCount"] == 1
    a.delete(f"/api/articles/{slug}", author["token"], status=204)
    assert "fresh-tag" not in b.get("/api/tags").json["tags"]
    b.get(f"/api/articles/{slug}", status=404)


def test_per_user_flags_on_one_cached_article(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    author, fan, stranger = a.register(), a.register(), a.register()
    slug = a.article(author["token"])["slug"]
    a.post(f"/api/articles/{slug}/favorite", None, fan["token"], status=200)
    a.post(f"/api/profiles/{author['username']}/follow", None, fan["token"], status=200)
    for _ in range(2):  # the second round is served from the cache
        seen_by_fan = a.get(f"/api/articles/{slug}", fan["token"]).json["article"]
        seen_by_stranger = a.get(f"/api/articles/{slug}", stranger["token"]).json["article"]
        assert (seen_by_fan["favorited"], seen_by_fan["author"]["following"]) == (True, True)
        assert (seen_by_stranger["favorited"], seen_by_stranger["author"]["following"]) == (
            False,
            False,
        )
        listed = a.get("/api/articles", fan["token"]).json["articles"][0]
        assert listed["favorited"] and listed["author"]["following"]
        assert not a.get("/api/articles").json["articles"][0]["favorited"]


def test_rollback_purges_nothing_and_caches_nothing_stale(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    author = a.register()
    slug = a.article(author["token"], title="Kept")["slug"]
    a.get(f"/api/articles/{slug}")  # cached
    cache = cache_of(a)
    purges_before = cache.stats["articles"].purges
    # A request that changes the article and then fails: the whole
    # transaction rolls back, so nothing may be purged.
    response = a.put(
        f"/api/articles/{slug}",
        {"article": {"title": "Lost", "tagList": ["x" * 500]}},
        author["token"],
        status=422,
    )
    assert "tagList" in response.json["errors"]
    assert cache.stats["articles"].purges == purges_before
    assert a.get(f"/api/articles/{slug}").json["article"]["title"] == "Kept"


def test_dogpile_one_regeneration_for_concurrent_misses(redis_settings: dict[str, Any]) -> None:
    cache = build_cache(redis_settings)
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_create("tags", "k", slow)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["value"] * 8
    assert len(calls) == 1


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, which the test may stop and restart."""
    port = _free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_port(port)
    yield f"redis://127.0.0.1:{port}/0", proc
    proc.terminate()
    proc.wait(5)


def _wait_port(port: int, up: bool = True) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if (sock.connect_ex(("127.0.0.1", port)) == 0) == up:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} never became {'open' if up else 'closed'}")


def test_fails_open_and_recovers(
    own_redis: tuple[str, subprocess.Popen[bytes]],
    redis_settings: dict[str, Any],
    connection: Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, proc = own_redis
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    settings = redis_settings | {"redis.url": url, "cache.backoff_seconds": "0.5"}
    api = Api(make_app(settings, connection))
    cache = cache_of(api)
    author = api.register()
    slug = api.article(author["token"], tagList=["t"])["slug"]
    api.get(f"/api/articles/{slug}")
    proc.terminate()
    proc.wait(5)
    _wait_port(port, up=False)
    # Redis is gone: every endpoint still answers, correctly.
    for _ in range(3):
        assert api.get(f"/api/articles/{slug}").json["article"]["slug"] == slug
        assert api.get("/api/articles").json["articlesCount"] >= 1
        assert "t" in api.get("/api/tags").json["tags"]
        api.get(f"/api/profiles/{author['username']}")
        # Logged in: the caller's row and flags come from the database.
        assert api.get("/api/user", author["token"]).json["user"]["username"]
        assert api.get("/api/articles", author["token"]).json["articles"][0]["favorited"] is False
    second = api.article(author["token"], title="While Redis was down")
    assert api.get(f"/api/articles/{second['slug']}").json["article"]["title"]
    assert sum(stats.errors for stats in cache.stats.values()) >= 1
    warnings = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(warnings) == 1, "one warning per interval, not one per request"
    # Redis returns on the same port: caching resumes by itself.
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    restarted = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        _wait_port(port)
        time.sleep(0.6)  # the back-off interval
        hits = cache.stats["views"].hits
        api.get(f"/api/articles/{slug}")
        api.get(f"/api/articles/{slug}")
        assert cache.stats["views"].hits == hits + 1
    finally:
        restarted.terminate()
        restarted.wait(5)


def test_savepoints_keep_the_transactions_purges(
    two_apps: tuple[Api, Api], connection: Connection
) -> None:
    """SQLAlchemy sends after_commit/after_rollback for savepoints too: the
    purges wait for the transaction's own commit, and a savepoint rolled back
    does not drop what the transaction already changed."""
    a, _ = two_apps
    cache = cache_of(a)
    factory = a.app.app.registry["dbsession_factory"]
    session = factory(bind=connection, join_transaction_mode="create_savepoint")
    before = cache.generation("lists")
    pending(session).generations.add("lists")
    session.begin_nested().rollback()
    session.begin_nested().commit()
    assert cache.generation("lists") == before  # nothing purged before the commit
    session.commit()
    assert cache.generation("lists") != before
    session.close()
