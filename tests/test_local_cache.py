"""The process's own copy of token-keyed entries (myapp.localcache), and how
few Redis round trips a warm read costs with it, on a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from myapp.cache import NO_VALUE
from myapp.localcache import LocalCache
from tests.cache_support import cache_of, redis_settings, two_apps
from tests.conftest import Api

__all__ = ["redis_settings", "two_apps"]  # fixtures shared with the other cache tests


@pytest.fixture
def redis_commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The Redis commands this process sends (one per round trip: no pipelines here)."""
    sent: list[str] = []
    execute = redis.Redis.execute_command

    def counting(self: redis.Redis, *args: object, **options: object) -> object:
        sent.append(str(args[0]))
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    yield sent


def test_entries_expire_and_the_oldest_go_first() -> None:
    local = LocalCache(max_entries=2, ttl=0.2)
    local.put("lists", "a", 1)
    local.put("lists", "b", 2)
    assert local.get("lists", "a") == 1  # now the most recently used
    local.put("views", "c", 3)
    assert len(local) == 2
    assert local.get("lists", "b") is NO_VALUE  # the least recently used went
    assert (local.get("lists", "a"), local.get("views", "c")) == (1, 3)
    assert local.get("views", "a") is NO_VALUE  # regions are apart
    time.sleep(0.25)
    assert local.get("lists", "a") is NO_VALUE and len(local) == 1


def test_a_warm_logged_in_list_costs_one_round_trip(
    two_apps: tuple[Api, Api], redis_commands: list[str]
) -> None:
    a, _ = two_apps
    author, reader = a.register(), a.register()
    a.article(author["token"], title="Local")
    a.get("/api/articles?limit=5", reader["token"])
    a.get("/api/articles?limit=5", reader["token"])
    stats = cache_of(a).stats
    local = [stats[region].local for region in ("identities", "lists", "flags")]
    redis_commands.clear()
    body = a.get("/api/articles?limit=5", reader["token"]).json
    # The caller's version and flags tokens with the list generations, in one
    # MGET; the caller's row, the page and the flags are kept in the process.
    assert redis_commands == ["MGET"]
    assert [stats[region].local for region in ("identities", "lists", "flags")] == [
        n + 1 for n in local
    ]
    assert body["articles"][0]["title"] == "Local"


def test_a_warm_anonymous_read_costs_one_round_trip(
    two_apps: tuple[Api, Api], redis_commands: list[str]
) -> None:
    a, _ = two_apps
    a.article(a.register()["token"], title="Anonymous local")
    first = a.app.get("/api/articles?limit=5")
    a.app.get("/api/articles?limit=5")
    redis_commands.clear()
    second = a.app.get("/api/articles?limit=5")
    assert redis_commands == ["MGET"]  # the generations; the response is kept here
    assert second.body == first.body and second.etag == first.etag


def test_a_write_on_another_replica_is_seen_at_once(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author, reader = a.register(), a.register()
    slug = a.article(author["token"], title="Before")["slug"]
    for _ in range(2):  # b keeps the page and the reader's flags
        assert b.get("/api/articles?limit=1", reader["token"]).json["articles"][0]["title"] == (
            "Before"
        )
        assert b.app.get("/api/articles?limit=1").json["articles"][0]["favorited"] is False
    assert cache_of(b).stats["lists"].local >= 1
    changed = a.put(f"/api/articles/{slug}", {"article": {"title": "After"}}, author["token"])
    slug = changed.json["article"]["slug"]
    a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    seen = b.get("/api/articles?limit=1", reader["token"]).json["articles"][0]
    assert (seen["title"], seen["favorited"]) == ("After", True)
    assert b.app.get("/api/articles?limit=1").json["articles"][0]["title"] == "After"


def test_nothing_is_kept_while_redis_is_unreachable(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    cache = cache_of(a)
    assert cache.local is not None
    cache.local.clear()
    cache.breaker.open_until = time.monotonic() + 60  # as after a Redis error
    try:
        a.app.get("/api/articles?limit=3")
        a.app.get("/api/articles?limit=3")
        assert len(cache.local) == 0
    finally:
        cache.breaker.open_until = 0.0
    a.app.get("/api/articles?limit=3")
    assert len(cache.local) > 0  # and it resumes with Redis
