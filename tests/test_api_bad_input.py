"""Bad input gets a clear 4xx in RealWorld's error shape: never a 500, and
nothing half-written."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import webtest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from webob import Request

from myapp.config import configure
from tests.conftest import Api, base_settings


def counts(connection: Connection) -> tuple[int, ...]:
    tables = ("users", "articles", "tags", "article_tags", "comments", "favorites", "follows")
    return tuple(
        connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables
    )


def errors(res: webtest.TestResponse) -> dict[str, list[str]]:
    """The RealWorld error body: ``{"errors": {field: [message, ...]}}``."""
    assert res.content_type == "application/json"
    body = res.json
    assert set(body) == {"errors"}
    assert body["errors"]
    for messages in body["errors"].values():
        assert messages
        assert all(isinstance(message, str) and message for message in messages)
    return body["errors"]


def raw(
    app: webtest.TestApp,
    method: str,
    url: str,
    body: bytes,
    content_type: str = "application/json",
    token: str | None = None,
    status: int = 422,
) -> webtest.TestResponse:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Token {token}"
    return app.request(url, method=method, body=body, headers=headers, status=status)


# --- the body as a whole ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"", b'{"user": {"username": "x",}}', b"\xff\xfe", b"[" * 100_000],
)
def test_malformed_json_is_422(api: Api, connection: Connection, body: bytes) -> None:
    before = counts(connection)
    res = raw(api.app, "POST", "/api/users", body)
    assert errors(res) == {"body": ["is not valid JSON"]}
    assert counts(connection) == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"user[username]=x&user[email]=x@x.io"),
        ("text/plain", b'{"user": {}}'),
        ("multipart/form-data; boundary=xx", b"--xx--"),
    ],
)
def test_wrong_content_type_is_415(
    api: Api, connection: Connection, content_type: str, body: bytes
) -> None:
    before = counts(connection)
    res = raw(api.app, "POST", "/api/users", body, content_type=content_type, status=415)
    assert "body" in errors(res)
    assert counts(connection) == before


def test_json_with_a_charset_is_fine(api: Api) -> None:
    body = b'{"user": {"username": "cs", "email": "cs@example.com", "password": "password123"}}'
    raw(api.app, "POST", "/api/users", body, "application/json; charset=utf-8", status=201)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"user": ["can't be blank"]}),
        ({"username": "x"}, {"user": ["can't be blank"]}),
        ({"user": None}, {"user": ["must be an object"]}),
        ({"user": "alice"}, {"user": ["must be an object"]}),
        ({"user": []}, {"user": ["must be an object"]}),
        ([], {"body": ['must be a JSON object with a "user" key']}),
        ("user", {"body": ['must be a JSON object with a "user" key']}),
        (None, {"body": ['must be a JSON object with a "user" key']}),
    ],
)
def test_missing_or_wrong_wrapper(
    api: Api, connection: Connection, body: Any, expected: dict[str, list[str]]
) -> None:
    before = counts(connection)
    assert errors(api.post("/api/users", body, status=422)) == expected
    assert counts(connection) == before


# --- fields -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"title": 42}, {"title": ["must be a string"]}),
        ({"title": ["a"]}, {"title": ["must be a string"]}),
        ({"body": {"text": "b"}}, {"body": ["must be a string"]}),
        ({"description": True}, {"description": ["must be a string"]}),
        ({"tagList": {"a": 1}}, {"tagList": ["must be an array"]}),
        ({"tagList": "a,b"}, {"tagList": ["must be an array"]}),
        ({"tagList": None}, {"tagList": ["must be an array"]}),
        ({"tagList": [1, 2]}, {"tagList": ["must contain only strings"]}),
        ({"tagList": ["ok", None]}, {"tagList": ["must contain only strings"]}),
        ({"tagList": [["nested"]]}, {"tagList": ["must contain only strings"]}),
    ],
)
def test_wrong_typed_article_fields(
    api: Api, connection: Connection, fields: dict[str, Any], expected: Any
) -> None:
    token = api.register()["token"]
    before = counts(connection)
    article = {"title": "t", "description": "d", "body": "b"} | fields
    assert errors(api.post("/api/articles", {"article": article}, token, status=422)) == expected
    assert counts(connection) == before


@pytest.mark.parametrize("missing", ["title", "description", "body"])
def test_missing_required_article_fields(api: Api, connection: Connection, missing: str) -> None:
    token = api.register()["token"]
    before = counts(connection)
    article = {"title": "t", "description": "d", "body": "b"}
    del article[missing]
    res = api.post("/api/articles", {"article": article}, token, status=422)
    assert errors(res) == {missing: ["can't be blank"]}
    assert counts(connection) == before


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": "t" * 256}, "title", "is too long (maximum is 255 characters)"),
        ({"description": "d" * 1025}, "description", "is too long (maximum is 1024 characters)"),
        ({"body": "b" * 100_001}, "body", "is too long (maximum is 100000 characters)"),
        ({"tagList": ["t" * 65]}, "tagList", "tags are too long (maximum is 64 characters)"),
        ({"tagList": [f"t{i}" for i in range(21)]}, "tagList", "has too many tags (maximum is 20)"),
    ],
)
def test_over_long_article_fields(
    api: Api, connection: Connection, fields: dict[str, Any], field: str, message: str
) -> None:
    token = api.register()["token"]
    before = counts(connection)
    article = {"title": "t", "description": "d", "body": "b"} | fields
    res = api.post("/api/articles", {"article": article}, token, status=422)
    assert errors(res) == {field: [message]}
    assert counts(connection) == before


@pytest.mark.parametrize("item", ["t{}", 1, "same"])
def test_a_body_full_of_tags_is_refused(api: Api, connection: Connection, item: Any) -> None:
    # Up to ~900 kB of tags, just under the body limit: refused without
    # validating (or deduplicating) each of them.
    token = api.register()["token"]
    before = counts(connection)
    article = {"title": "t", "description": "d", "body": "b"}
    tags = [item.format(i) if isinstance(item, str) else item for i in range(100_000)]
    res = api.post("/api/articles", {"article": article | {"tagList": tags}}, token, status=422)
    assert errors(res) == {"tagList": ["has too many items (maximum is 1000)"]}
    assert counts(connection) == before


def test_many_repeated_tags_are_fine(api: Api) -> None:
    tags = ["a", "b", " a ", ""] * 250
    assert api.article(api.register()["token"], tagList=tags)["tagList"] == ["a", "b"]


def test_limits_themselves_are_accepted(api: Api) -> None:
    token = api.register()["token"]
    article = api.article(
        token, title="t" * 255, body="b" * 100_000, tagList=[f"{i:064d}" for i in range(20)]
    )
    assert len(article["tagList"]) == 20
    assert len(api.get(f"/api/articles/{article['slug']}").json["article"]["body"]) == 100_000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": 7}, "username"),
        ({"email": ["a@b.c"]}, "email"),
        ({"password": 1234567890}, "password"),
    ],
)
def test_wrong_typed_user_fields(
    api: Api, connection: Connection, fields: dict[str, Any], field: str
) -> None:
    before = counts(connection)
    user = {"username": "typed", "email": "typed@example.com", "password": "password123"}
    res = api.post("/api/users", {"user": user | fields}, status=422)
    assert errors(res) == {field: ["must be a string"]}
    assert counts(connection) == before


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/users", {"user": {"username": "n\x00l", "email": "n@x.io", "password": "p" * 8}}),
        ("/api/users", {"user": {"username": "nul", "email": "n\x00@x.io", "password": "p" * 8}}),
        ("/api/users/login", {"user": {"email": "n\x00@x.io", "password": "p" * 8}}),
        ("/api/articles", {"article": {"title": "nul\x00", "description": "d", "body": "b"}}),
        ("/api/articles", {"article": {"title": "t", "description": "d", "body": "b\x00"}}),
        (
            "/api/articles",
            {"article": {"title": "t", "description": "d", "body": "b", "tagList": ["\x00"]}},
        ),
    ],
)
def test_nul_characters_are_422(
    api: Api, connection: Connection, url: str, body: dict[str, Any]
) -> None:
    token = api.register()["token"]
    before = counts(connection)
    res = api.post(url, body, token, status=422)
    assert errors(res)
    assert counts(connection) == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/articles/a%00b",
        "/api/profiles/a%00b",
        "/api/articles/a%00b/comments",
    ],
)
def test_nul_characters_in_the_path_are_404(api: Api, url: str) -> None:
    assert errors(api.get(url, status=404))


@pytest.mark.parametrize("query", ["tag=a%00b", "author=a%00b", "favorited=a%00b"])
def test_nul_characters_in_the_query_are_422(api: Api, query: str) -> None:
    assert errors(api.get(f"/api/articles?{query}", status=422))


def test_nul_characters_in_a_bio_are_422(api: Api) -> None:
    token = api.register()["token"]
    res = api.put("/api/user", {"user": {"bio": "a\x00b"}}, token, status=422)
    assert list(errors(res)) == ["bio"]
    assert api.get("/api/user", token).json["user"]["bio"] is None


def test_failed_update_leaves_the_article_as_it_was(api: Api) -> None:
    token = api.register()["token"]
    article = api.article(token, tagList=["keep"])
    url = f"/api/articles/{article['slug']}"
    for fields in (
        {"title": "New", "tagList": ["x"], "body": ""},
        {"title": "New", "tagList": ["x" * 65]},
        {"title": "New", "body": 5},
    ):
        api.put(url, {"article": fields}, token, status=422)
    assert api.get(url).json["article"] == article


# --- query strings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=" + "9" * 30, "offset"),
        ("limit=" + "9" * 30, None),
    ],
)
def test_bad_paging_parameters(api: Api, query: str, field: str | None) -> None:
    token = api.register()["token"]
    for url in ("/api/articles", "/api/articles/feed"):
        if field is None:  # absurdly large but valid: clamped
            api.get(f"{url}?{query}", token, status=200)
        else:
            assert field in errors(api.get(f"{url}?{query}", token, status=422))


# --- routing ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/nothing", "/api/articles/a/b/c/d", "/api/users/login/x"])
def test_unknown_route_is_404_json(api: Api, url: str) -> None:
    assert errors(api.get(url, status=404))


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("PATCH", "/api/articles", {"GET", "POST"}),
        ("DELETE", "/api/users", {"POST"}),
        ("GET", "/api/users/login", {"POST"}),
        ("PATCH", "/api/user", {"GET", "PUT"}),
        ("PUT", "/api/articles/x/comments", {"GET", "POST"}),
        ("POST", "/api/tags", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(api: Api, method: str, url: str, allowed: set[str]) -> None:
    res = api.app.request(url, method=method, status=405)
    assert errors(res)
    assert allowed <= {m.strip() for m in res.headers["Allow"].split(",")}


# --- size -----------------------------------------------------------------------


def test_oversized_body_is_413(api: Api, connection: Connection, wsgi_app: Any) -> None:
    limit = int(wsgi_app.registry.settings.get("api.max_body_bytes", 1024 * 1024))
    before = counts(connection)
    user = {"username": "big", "email": "big@example.com", "password": "p" * (limit + 1)}
    res = api.post("/api/users", {"user": user}, status=413)
    assert list(errors(res)) == ["body"]
    assert counts(connection) == before


@pytest.mark.parametrize("retries", ["1", "3"])
def test_a_chunked_body_is_held_to_the_limit(database_url: str, retries: str) -> None:
    """No Content-Length (chunked, as gunicorn passes it on): still 413."""
    settings = base_settings(database_url) | {"api.max_body_bytes": "1000"}
    app = configure(settings | {"retry.attempts": retries}).make_wsgi_app()

    def chunked(password: str) -> Any:
        user = {"username": "chunky", "email": "chunky@example.com", "password": password}
        request = Request.blank("/api/users", method="POST", content_type="application/json")
        request.environ["wsgi.input"] = io.BytesIO(json.dumps({"user": user}).encode())
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True
        return request.get_response(app)

    try:
        res = chunked("p" * 2000)
        assert res.status_code == 413, res.text
        assert res.json == {"errors": {"body": ["is too large (maximum is 1000 bytes)"]}}
        # Under the limit the body is read whole (and this one is invalid, so
        # nothing is written to the shared database).
        res = chunked("short")
        assert res.status_code == 422, res.text
        assert list(res.json["errors"]) == ["password"]
    finally:
        app.registry["db_engine"].dispose()
