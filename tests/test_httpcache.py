"""HTTP caching: ETag/304, Cache-Control and Vary for anonymous and personal GETs."""

from __future__ import annotations

import pytest
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from myapp.httpcache import httpcache_tween_factory
from tests.conftest import Api


def test_anonymous_get_is_public_with_etag_and_304(api: Api) -> None:
    author = api.register()
    api.article(author["token"])
    first = api.get("/api/articles")
    assert first.cache_control.public and first.cache_control.max_age == 5
    assert first.cache_control.stale_while_revalidate == 30
    assert {"Authorization", "Cookie"} <= set(first.vary)
    assert first.etag
    again = api.app.get("/api/articles", headers={"If-None-Match": f'"{first.etag}"'}, status=304)
    assert again.body == b""


def test_personal_get_is_private_and_revalidated(api: Api) -> None:
    user = api.register()
    me = api.get("/api/user", user["token"])
    assert me.cache_control.private and me.cache_control.no_cache
    assert not me.cache_control.public
    headers = {**api.auth(user["token"]), "If-None-Match": f'"{me.etag}"'}
    api.app.get("/api/user", headers=headers, status=304)


def test_etag_changes_with_the_content(api: Api) -> None:
    author = api.register()
    slug = api.article(author["token"], title="One")["slug"]
    before = api.get(f"/api/articles/{slug}").etag
    api.put(f"/api/articles/{slug}", {"article": {"body": "changed"}}, author["token"], status=200)
    after = api.get(f"/api/articles/{slug}")
    assert after.etag != before
    headers = {"If-None-Match": f'"{before}"'}
    assert api.app.get(f"/api/articles/{slug}", headers=headers, status=200).json


def test_writes_and_errors_are_not_cacheable(api: Api) -> None:
    created = api.app.post_json(
        "/api/users",
        {"user": {"username": "w", "email": "w@example.com", "password": "password123"}},
        status=201,
    )
    assert not created.cache_control.public
    missing = api.get("/api/articles/no-such-article", status=404)
    assert missing.cache_control.no_store and not missing.etag


def test_conditional_answers_only_when_asked(api: Api) -> None:
    """WebOb's conditional machinery runs only for a request with a
    conditional header; the answers are the same either way."""
    author = api.register()
    api.article(author["token"], title="Ranged")
    plain = api.get("/api/articles")
    assert plain.etag and plain.status_code == 200 and plain.body
    ranged = api.app.get("/api/articles", headers={"Range": "bytes=0-9"}, status=206)
    assert ranged.body == plain.body[:10]
    assert ranged.headers["Content-Range"] == f"bytes 0-9/{len(plain.body)}"
    head = api.app.head("/api/articles", status=200)
    assert head.body == b"" and head.etag == plain.etag
    head = api.app.head("/api/articles", headers={"If-None-Match": f'"{plain.etag}"'}, status=304)
    assert head.body == b""


@pytest.mark.parametrize(
    ("headers", "conditional"),
    [({}, False), ({"If-None-Match": '"x"'}, True), ({"Range": "bytes=0-1"}, True)],
)
def test_webob_conditional_machinery_only_when_asked(headers: dict[str, str], conditional: bool):
    registry = Registry()
    registry.settings = {}
    tween = httpcache_tween_factory(lambda request: Response(body=b"{}"), registry)
    response = tween(Request.blank("/api/tags", headers=headers))
    assert response.conditional_response is conditional
    assert response.headers["ETag"].startswith('"') and response.etag
