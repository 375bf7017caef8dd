"""List endpoints cost a fixed number of SQL statements, whatever the page size.

``queries`` counts the statements sent on the test's connection, which the
app's sessions share (savepoints are not counted).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, QueryCounter

ARTICLES = 25
# One statement for the page (author and the viewer's flags joined), one for
# the page's tags, one for the total count.
LIST_STATEMENTS = 3
AUTH_STATEMENTS = 1  # the token's user


@pytest.fixture
def many(api: Api) -> dict[str, Any]:
    author = api.register("prolific")
    reader = api.register("reader")
    api.post("/api/profiles/prolific/follow", token=reader["token"], status=200)
    for i in range(ARTICLES):
        article = api.article(author["token"], tagList=["common", f"tag{i}", f"other{i}"])
        api.post(f"/api/articles/{article['slug']}/favorite", token=reader["token"], status=200)
        url = f"/api/articles/{article['slug']}/comments"
        api.post(url, {"comment": {"body": "c"}}, author["token"], status=201)
    return {"author": author, "reader": reader}


def count(api: Api, queries: QueryCounter, url: str, token: str | None) -> tuple[int, int]:
    """Statements for one request on a cold cache: the worst case."""
    api.app.app.registry["cache"].invalidate_all()
    queries.reset()
    res = api.get(url, token)
    return queries.count, len(res.json["articles"])


LISTS = [
    "/api/articles",
    "/api/articles?tag=common",
    "/api/articles?author=prolific",
    "/api/articles?favorited=reader",
    "/api/articles?tag=common&author=prolific&favorited=reader",
]


@pytest.mark.parametrize(
    ("url", "who"),
    [(url, who) for url in LISTS for who in ("reader", None)] + [("/api/articles/feed", "reader")],
)
def test_statements_do_not_grow_with_the_page(
    api: Api, queries: QueryCounter, many: dict[str, Any], url: str, who: str | None
) -> None:
    token = many[who]["token"] if who else None
    sep = "&" if "?" in url else "?"
    one, got_one = count(api, queries, f"{url}{sep}limit=1", token)
    twenty, got_twenty = count(api, queries, f"{url}{sep}limit=20", token)
    assert (got_one, got_twenty) == (1, 20)
    assert one == twenty, queries.statements
    auth = AUTH_STATEMENTS if token else 0
    assert twenty <= LIST_STATEMENTS + auth, queries.statements


def test_comments_and_single_article_are_constant(
    api: Api, queries: QueryCounter, many: dict[str, Any]
) -> None:
    slug = api.get("/api/articles?limit=1").json["articles"][0]["slug"]
    token = many["reader"]["token"]
    api.app.app.registry["cache"].invalidate_all()
    queries.reset()
    api.get(f"/api/articles/{slug}", token)
    # The token's user; the article with author, flags; its tags.
    assert queries.count <= 3, queries.statements
    api.app.app.registry["cache"].invalidate_all()
    queries.reset()
    api.get(f"/api/articles/{slug}/comments", token)
    # The token's user; the article; its comments with authors; follows.
    assert queries.count <= 4, queries.statements
