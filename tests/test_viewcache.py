"""Whole-response caching of anonymous GETs (myapp.viewcache) on a real Redis."""

from __future__ import annotations

import uuid
from typing import Any

import webtest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from myapp.cache import Cache, build_cache
from myapp.viewcache import shared_response
from tests.cache_support import REDIS_URL, cache_of, make_app, redis_settings, two_apps
from tests.conftest import Api, QueryCounter

__all__ = ["redis_settings", "two_apps"]  # fixtures shared with the other cache tests


def views(api: Api) -> tuple[int, int]:
    stats = cache_of(api).stats["views"]
    return stats.hits, stats.misses


def test_anonymous_list_is_served_whole(two_apps: tuple[Api, Api], queries: QueryCounter) -> None:
    a, _ = two_apps
    author = a.register()
    for n in range(2):
        a.article(author["token"], title=f"Whole {n}")
    first = a.app.get("/api/articles?limit=1")
    queries.reset()
    hits, misses = views(a)
    second = a.app.get("/api/articles?limit=1")
    assert queries.count == 0
    assert views(a) == (hits + 1, misses)
    assert second.body == first.body
    assert second.etag == first.etag and second.etag
    # The Link header to the next page is part of what is kept.
    assert second.headers["Link"] == first.headers["Link"] and "before=" in first.headers["Link"]
    assert second.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert "public" in second.headers["Cache-Control"]
    # Conditional requests still work on a cached response.
    a.app.get("/api/articles?limit=1", headers={"If-None-Match": first.etag}, status=304)
    # Another query string is another entry.
    assert a.app.get("/api/articles?limit=2").json["articles"][1]["title"] == "Whole 0"


def test_anonymous_pages_are_served_whole(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author = a.register()
    a.article(author["token"], title="On the home page", tagList=["paged"])
    for url in ("/", "/tag/paged"):
        first = b.app.get(url)
        assert "Set-Cookie" not in first.headers
        hits, misses = views(b)
        second = b.app.get(url)
        assert views(b) == (hits + 1, misses), url
        assert second.body == first.body and "On the home page" in second.text
        # Headers added after the view (security, request id) are still there.
        assert second.headers["Content-Security-Policy"]
        assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_a_commit_on_one_replica_is_seen_by_the_other(two_apps: tuple[Api, Api]) -> None:
    a, b = two_apps
    author, reader = a.register(), a.register()
    slug = a.article(author["token"], title="First")["slug"]
    for _ in range(2):  # the second read is a views hit
        assert b.get("/api/articles").json["articles"][0]["title"] == "First"
        assert b.get(f"/api/articles/{slug}").json["article"]["favoritesCount"] == 0
        assert "First" in b.app.get("/").text
    a.article(author["token"], title="Second")
    a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    assert b.get("/api/articles").json["articles"][0]["title"] == "Second"
    assert b.get(f"/api/articles/{slug}").json["article"]["favoritesCount"] == 1
    assert "Second" in b.app.get("/").text
    a.put("/api/user", {"user": {"bio": "changed"}}, author["token"])
    assert b.get(f"/api/profiles/{author['username']}").json["profile"]["bio"] == "changed"


def test_requests_with_credentials_never_use_it(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    author, fan = a.register(), a.register()
    slug = a.article(author["token"])["slug"]
    a.post(f"/api/articles/{slug}/favorite", None, fan["token"], status=200)
    a.get("/api/articles")
    a.get("/api/articles")  # cached, anonymous: favorited is false
    before = views(a)
    assert a.get("/api/articles", fan["token"]).json["articles"][0]["favorited"] is True
    a.app.get("/", headers={"Cookie": "session=whatever"})
    a.app.get("/", headers={"Cookie": "csrf_token=whatever"})
    assert views(a) == before
    response = a.app.get("/api/articles", headers={"Authorization": f"Token {fan['token']}"})
    assert "private" in response.headers["Cache-Control"]


def _toy_app(cache: Cache, calls: list[str]) -> webtest.TestApp:
    """A minimal app whose views do what a view must not do to be stored."""
    config = Configurator()
    config.add_request_method(lambda request: cache, "cache", reify=True)

    def plain(request: Request) -> Response:
        calls.append("plain")
        return Response("plain")

    def sets_cookie(request: Request) -> Response:
        calls.append("cookie")
        response = Response("cookie")
        response.set_cookie("hello", "there")
        return response

    def with_callback(request: Request) -> Response:
        calls.append("callback")
        request.add_response_callback(lambda req, resp: None)
        return Response("callback")

    def not_found(request: Request) -> Response:
        calls.append("404")
        return Response("missing", status=404)

    for name, view in [
        ("plain", plain),
        ("cookie", sets_cookie),
        ("callback", with_callback),
        ("404", not_found),
    ]:
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, decorator=shared_response("toy"))
    return webtest.TestApp(config.make_wsgi_app())


def test_only_plain_200_responses_are_stored(redis_settings: dict[str, Any]) -> None:
    cache = build_cache(redis_settings | {"redis.url": REDIS_URL})
    calls: list[str] = []
    app = _toy_app(cache, calls)
    for _ in range(3):
        app.get("/plain")
        app.get("/cookie")
        app.get("/callback")
        app.get("/404", status=404)
    assert calls.count("plain") == 1
    assert calls.count("cookie") == calls.count("callback") == calls.count("404") == 3
    # A new generation token makes the stored response unreachable.
    cache.regions["generations"].set("gen:toy", uuid.uuid4().hex)
    app.get("/plain")
    assert calls.count("plain") == 2


def test_switched_off_with_the_cache(redis_settings: dict[str, Any], connection: Any) -> None:
    api = Api(make_app(redis_settings | {"cache.enabled": "false"}, connection))
    api.get("/api/articles")
    api.get("/api/articles")
    assert views(api) == (0, 0)


def test_unknown_query_parameters_are_not_stored(two_apps: tuple[Api, Api]) -> None:
    a, _ = two_apps
    for n in range(3):
        a.app.get(f"/api/articles?limit=5&x={n}")
        a.app.get(f"/?utm={n}")
    assert views(a) == (0, 0)
    a.app.get("/api/articles?limit=5&tag=a&offset=0")
    a.app.get("/?page=2")
    assert views(a) == (0, 2)


def test_a_renamed_session_cookie_is_still_personal(
    redis_settings: dict[str, Any], connection: Any
) -> None:
    api = Api(make_app(redis_settings | {"session.cookie_name": "sid"}, connection))
    response = api.app.get("/", headers={"Cookie": "sid=whatever"})
    assert "private" in response.headers["Cache-Control"]
    api.app.get("/", headers={"Cookie": "sid=whatever"})
    assert views(api) == (0, 0)
