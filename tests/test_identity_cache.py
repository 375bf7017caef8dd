"""Logged-in reads from the cache: the caller's row (myapp.identities) and
their flags (myapp.services.public.flags), on a real Redis, fresh after
every write that changes them, on every replica."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from myapp import identities
from myapp.cache import Pending
from tests.cache_support import REDIS_URL, cache_of, redis_settings, two_apps
from tests.conftest import Api, QueryCounter

__all__ = ["redis_settings", "two_apps"]  # fixtures shared with the other cache tests


def test_a_logged_in_read_sends_no_sql_once_warm(
    two_apps: tuple[Api, Api], queries: QueryCounter
) -> None:
    a, _ = two_apps
    author, reader = a.register(), a.register()
    slug = a.article(author["token"])["slug"]
    a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    for url in ("/api/articles?limit=5", f"/api/articles/{slug}", "/api/user"):
        a.get(url, reader["token"])
        queries.reset()
        second = a.get(url, reader["token"]).json
        assert queries.count == 0, (url, queries.statements)
    assert second["user"]["username"] == reader["username"]
    listed = a.get("/api/articles?limit=5", reader["token"]).json["articles"][0]
    assert listed["favorited"] is True
    # Writes still read the row itself.
    queries.reset()
    a.put("/api/user", {"user": {"bio": "hi"}}, reader["token"])
    assert any("FROM users" in s for s in queries.statements)


def test_the_cached_row_has_no_password_hash(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    user = a.register()
    a.get("/api/user", user["token"])
    prefix = cache_of(a).regions["identities"].key_mangler("")
    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(prefix + "*")
    assert keys
    region = cache_of(a).regions["identities"]
    for key in keys:
        if key.decode().startswith(prefix + "_lock"):
            continue
        raw = client.get(key)
        assert b"argon2" not in raw and b"password_hash" not in raw
        entry = region.get(key.decode()[len(prefix) :])
        assert entry["username"] == user["username"] and entry["fingerprint"]


def test_profile_and_password_changes_reach_every_replica(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    user = a.register()
    assert b.get("/api/user", user["token"]).json["user"]["bio"] is None
    changes = {"bio": "renamed", "username": "n" + user["username"]}
    a.put("/api/user", {"user": changes}, user["token"])
    seen = b.get("/api/user", user["token"]).json["user"]
    assert (seen["bio"], seen["username"]) == ("renamed", "n" + user["username"])


def test_flags_follow_the_viewers_own_writes(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author, reader = a.register(), a.register()
    slug = a.article(author["token"])["slug"]

    def seen(api: Api) -> tuple[bool, bool]:
        article = api.get("/api/articles?limit=1", reader["token"]).json["articles"][0]
        return article["favorited"], article["author"]["following"]

    assert seen(b) == seen(b) == (False, False)  # cached
    # The write's own response is right at once (it reads, not the cache)...
    response = a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    assert response.json["article"]["favorited"] is True
    # ...and the other replica's next read too.
    assert seen(b) == (True, False)
    a.post(f"/api/profiles/{author['username']}/follow", None, reader["token"], status=200)
    assert seen(b) == (True, True)
    # Unfollow is a bulk DELETE, which the flush hook cannot see.
    a.delete(f"/api/profiles/{author['username']}/follow", reader["token"], status=200)
    assert seen(b) == (True, False)
    a.delete(f"/api/articles/{slug}/favorite", reader["token"], status=200)
    assert seen(b) == (False, False)
    # Someone else's writes leave the reader's flags alone, and right.
    a.post(f"/api/articles/{slug}/favorite", None, author["token"], status=200)
    assert seen(b) == (False, False)


def test_an_entry_stored_after_a_purge_does_not_count(
    two_apps: tuple[Api, Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: replica b reads the row, replica a commits a change and
    purges, then b stores what it read. The entry's key embeds the version b
    read *before* its query; the purge replaced that version, so the next
    read asks for another key. (Two requests cannot interleave for real on
    the tests' shared connection, so a's purge is done by hand.)"""
    a, b = two_apps
    user = a.register()
    entry = identities._entry
    raced: list[int] = []

    def purge_then_entry(row: Any) -> dict[str, Any]:
        # b has read the row; a commits a change to it now, before b stores it.
        if not raced:
            raced.append(row.id)
            # What a's commit does for a changed user (myapp.services.public.collect).
            cache_of(a).purge(Pending(generations={identities.user_generation(row.id)}))
        return entry(row)

    monkeypatch.setattr(identities, "_entry", purge_then_entry)
    b.get("/api/user", user["token"])
    monkeypatch.undo()
    assert raced
    stats = cache_of(b).stats["identities"]
    misses = stats.misses
    b.get("/api/user", user["token"])
    assert stats.misses == misses + 1, "an entry stored after the purge was trusted"
    hits = stats.hits
    b.get("/api/user", user["token"])
    assert stats.hits == hits + 1
