"""Regressions from the schemathesis run in .ci/conformance.sh.

Its first findings (a huge ``offset`` failing the query; NUL characters in
a body) are covered in tests/test_api_bad_input.py. Chasing them turned up
the rest of the same family, text that Postgres or WebOb cannot take, which
gave 500s before: each case here is such an input, and must get a 4xx in
RealWorld's error shape with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest
import webtest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.conftest import Api

# A lone surrogate: valid as a JSON escape ("\ud800"), but no UTF-8 text
# (and so no Postgres column) can hold it.
LONE = "\ud800"


def errors(res: webtest.TestResponse) -> dict[str, list[str]]:
    assert res.content_type == "application/json"
    assert set(res.json) == {"errors"}
    return res.json["errors"]


def counts(connection: Connection) -> tuple[int, ...]:
    tables = ("users", "articles", "tags", "comments")
    return tuple(
        connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables
    )


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/users/login", {"user": {"email": f"a{LONE}@x.io", "password": "p" * 8}}),
        ("POST", "/api/users", {"user": {"username": "u", "email": "u@x.io", "password": LONE}}),
        ("PUT", "/api/user", {"user": {"bio": f"bio {LONE}"}}),
        ("POST", "/api/articles", {"article": {"title": LONE, "description": "d", "body": "b"}}),
        (
            "POST",
            "/api/articles",
            {"article": {"title": "t", "description": "d", "body": "b", "tagList": [LONE]}},
        ),
    ],
)
def test_lone_surrogates_in_a_body_are_422(
    api: Api, connection: Connection, method: str, url: str, body: dict[str, Any]
) -> None:
    token = api.register()["token"]
    before = counts(connection)
    # post_json/put_json escape the surrogate as "\ud800": valid JSON text.
    send = api.post if method == "POST" else api.put
    res = send(url, body, token, status=422)
    assert errors(res) == {"body": ["must not contain unpaired surrogates"]}
    assert counts(connection) == before


def test_a_comment_with_a_lone_surrogate_is_422(api: Api, connection: Connection) -> None:
    token = api.register()["token"]
    slug = api.article(token)["slug"]
    before = counts(connection)
    body = {"comment": {"body": f"hi {LONE}"}}
    res = api.post(f"/api/articles/{slug}/comments", body, token, status=422)
    assert "body" in errors(res)
    assert counts(connection) == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/articles?tag=%ff",
        "/api/articles?author=%ED%A0%80",  # UTF-8 spelling of a surrogate
        "/api/articles/feed?offset=%c3",  # truncated sequence
        "/api/profiles/%ff",
        "/api/articles/a%ffb",
        "/api/articles/a%ffb/comments",
    ],
)
def test_urls_that_are_not_utf8_are_400(api: Api, url: str) -> None:
    token = api.register()["token"]
    res = api.get(url, token, status=400)
    assert errors(res) == {"url": ["is not valid UTF-8"]}
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert res.charset == "utf-8"


def test_valid_utf8_in_the_url_still_works(api: Api) -> None:
    token = api.register()["token"]
    api.article(token, tagList=["café"])
    res = api.get("/api/articles?tag=caf%C3%A9", token)
    assert res.json["articlesCount"] == 1
    assert res.json["articles"][0]["tagList"] == ["café"]
