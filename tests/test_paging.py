"""Paging: offset and keyset (``?before=``, ``Link: rel="next"``) give the same lists."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from myapp.models import Article
from myapp.services import paging
from myapp.services.paging import Cursor
from tests.conftest import Api

ARTICLES = 13


@pytest.fixture
def catalogue(api: Api, dbsession: Session) -> dict[str, Any]:
    """13 articles by two authors in two tags; five share one created_at (ties)."""
    ann, ben, reader = api.register("ann_p"), api.register("ben_p"), api.register("reader_p")
    api.post("/api/profiles/ann_p/follow", token=reader["token"], status=200)
    api.post("/api/profiles/ben_p/follow", token=reader["token"], status=200)
    slugs = []
    for i in range(ARTICLES):
        writer = ann if i % 3 else ben
        tags = ["even"] if i % 2 == 0 else ["odd", "even-not"]
        slug = api.article(writer["token"], tagList=tags)["slug"]
        slugs.append(slug)
        if i % 4 == 0:
            api.post(f"/api/articles/{slug}/favorite", token=reader["token"], status=200)
    # Ties: keyset paging must order by (created_at, id), not created_at alone.
    instant = dbsession.scalar(select(func.max(Article.created_at))) - timedelta(hours=1)
    dbsession.execute(
        update(Article).where(Article.slug.in_(slugs[4:9])).values(created_at=instant)
    )
    dbsession.commit()
    return {"reader": reader["token"]}


def by_offset(api: Api, url: str, token: str | None, limit: int = 4) -> list[str]:
    slugs: list[str] = []
    sep = "&" if "?" in url else "?"
    while True:
        page = api.get(f"{url}{sep}limit={limit}&offset={len(slugs)}", token).json["articles"]
        slugs += [a["slug"] for a in page]
        if len(page) < limit:
            return slugs


def by_cursor(api: Api, url: str, token: str | None, limit: int = 4) -> list[str]:
    slugs: list[str] = []
    sep = "&" if "?" in url else "?"
    next_url: str | None = f"{url}{sep}limit={limit}"
    while next_url:
        res = api.get(next_url, token)
        slugs += [a["slug"] for a in res.json["articles"]]
        link = res.headers.get("Link")
        if link is None:
            assert len(res.json["articles"]) < limit or not res.json["articles"]
            return slugs
        match = re.fullmatch(r'<(http://localhost(/api/[^>]+))>; rel="next"', link)
        assert match, link
        next_url = match.group(2)
        assert len(slugs) <= ARTICLES
    return slugs


LISTS = [
    "/api/articles",
    "/api/articles?tag=even",
    "/api/articles?author=ann_p",
    "/api/articles?favorited=reader_p",
    "/api/articles?tag=odd&author=ann_p",
    "/api/articles/feed",
]


@pytest.mark.parametrize("url", LISTS)
def test_keyset_pages_are_the_offset_pages(api: Api, catalogue: dict[str, Any], url: str) -> None:
    token = catalogue["reader"]
    every = by_offset(api, url, token, limit=100)
    assert len(every) == len(set(every)) > 1
    assert by_offset(api, url, token) == every
    assert by_cursor(api, url, token) == every


def test_the_feed_plans_agree(
    api: Api, catalogue: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LATERAL per followed author, or the planner's walk: the same feed."""
    token = catalogue["reader"]
    lateral = by_cursor(api, "/api/articles/feed", token, limit=5)
    monkeypatch.setattr(paging, "FEED_LATERAL_MAX", 0)
    assert by_cursor(api, "/api/articles/feed", token, limit=5) == lateral
    assert by_offset(api, "/api/articles/feed", token, limit=5) == lateral


def test_the_link_keeps_the_filters(api: Api, catalogue: dict[str, Any]) -> None:
    res = api.get("/api/articles?tag=even&limit=2&offset=1")
    query = urlsplit(res.headers["Link"][1:].split(">")[0]).query
    assert "tag=even" in query and "limit=2" in query and "offset" not in query


@pytest.mark.parametrize(
    "bad", ["x", "12", "-1-2", "1-", "99999999999999999999-1", "1-2-3", "1-9999999999999999999"]
)
def test_a_bad_cursor_is_422(api: Api, bad: str) -> None:
    # Every list shape: the tag and author lists are prepared statements,
    # whose parameters are typed (a bigint id cannot be 9999999999999999999).
    for url in ("/api/articles", "/api/articles?tag=t", "/api/articles?author=someone"):
        sep = "&" if "?" in url else "?"
        res = api.get(f"{url}{sep}before={bad}", status=422)
        assert res.json == {"errors": {"before": ["is invalid"]}}
    user = api.register()
    res = api.get(f"/api/articles/feed?before={bad}", user["token"], status=422)
    assert res.json == {"errors": {"before": ["is invalid"]}}


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(paging.EPOCH + timedelta(days=20_000, microseconds=123_457), 42)
    assert Cursor.decode(cursor.encode()) == cursor


def test_past_the_end_is_empty_with_the_count(api: Api, catalogue: dict[str, Any]) -> None:
    res = api.get("/api/articles?offset=1000")
    assert res.json["articles"] == [] and res.json["articlesCount"] == ARTICLES
    assert "Link" not in res.headers
