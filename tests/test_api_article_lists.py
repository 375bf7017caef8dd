"""GET /api/articles with filters and paging, and GET /api/articles/feed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

LIST_KEYS = {
    "slug",
    "title",
    "description",
    "tagList",
    "createdAt",
    "updatedAt",
    "favorited",
    "favoritesCount",
    "author",
}


def slugs(res: Any) -> list[str]:
    return [article["slug"] for article in res.json["articles"]]


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """Two authors; a fan who favourites and follows; tagged articles."""
    ann = api.register("ann")
    ben = api.register("ben")
    fan = api.register("fan")
    a1 = api.article(ann["token"], title="Ann one", tagList=["python", "web"])
    b1 = api.article(ben["token"], title="Ben one", tagList=["web"])
    a2 = api.article(ann["token"], title="Ann two", tagList=["python"])
    b2 = api.article(ben["token"], title="Ben two")
    api.post(f"/api/articles/{b1['slug']}/favorite", token=fan["token"], status=200)
    api.post(f"/api/articles/{a2['slug']}/favorite", token=fan["token"], status=200)
    return {"ann": ann, "ben": ben, "fan": fan, "articles": [a1, b1, a2, b2]}


def test_list_is_newest_first_without_bodies(api: Api, world: dict[str, Any]) -> None:
    res = api.get("/api/articles")
    newest_first = [a["slug"] for a in reversed(world["articles"])]
    assert slugs(res) == newest_first
    assert res.json["articlesCount"] == 4
    for article in res.json["articles"]:
        assert set(article) == LIST_KEYS
    dates = [a["createdAt"] for a in res.json["articles"]]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=python", ["Ann two", "Ann one"]),
        ("tag=web", ["Ben one", "Ann one"]),
        ("tag=nothing", []),
        ("author=ann", ["Ann two", "Ann one"]),
        ("author=nobody", []),
        ("favorited=fan", ["Ann two", "Ben one"]),
        ("favorited=ann", []),
        ("author=ann&tag=web", ["Ann one"]),
        ("author=ann&favorited=fan", ["Ann two"]),
        ("tag=web&favorited=fan", ["Ben one"]),
        ("author=ben&tag=web&favorited=fan", ["Ben one"]),
        ("tag=", ["Ben two", "Ann two", "Ben one", "Ann one"]),
    ],
)
def test_filters(api: Api, world: dict[str, Any], query: str, expected: list[str]) -> None:
    res = api.get(f"/api/articles?{query}")
    assert [a["title"] for a in res.json["articles"]] == expected
    assert res.json["articlesCount"] == len(expected)


def test_paging(api: Api, world: dict[str, Any]) -> None:
    everything = slugs(api.get("/api/articles"))
    pages = [slugs(api.get(f"/api/articles?limit=2&offset={offset}")) for offset in (0, 2, 4)]
    assert pages == [everything[:2], everything[2:4], []]
    res = api.get("/api/articles?limit=1&offset=1&author=ann")
    assert [a["title"] for a in res.json["articles"]] == ["Ann one"]
    # The count is the filter's total, not the page's.
    assert res.json["articlesCount"] == 2


def test_paging_beyond_the_end_and_a_huge_limit(api: Api, world: dict[str, Any]) -> None:
    res = api.get("/api/articles?offset=1000")
    assert res.json == {"articles": [], "articlesCount": 4}
    res = api.get("/api/articles?limit=100000")
    assert len(res.json["articles"]) == 4


def test_viewer_flags_in_lists(api: Api, world: dict[str, Any]) -> None:
    fan = world["fan"]
    api.post("/api/profiles/ann/follow", token=fan["token"], status=200)
    listed = {a["title"]: a for a in api.get("/api/articles", fan["token"]).json["articles"]}
    assert listed["Ann two"]["favorited"] is True
    assert listed["Ann two"]["favoritesCount"] == 1
    assert listed["Ann one"]["favorited"] is False
    assert listed["Ann one"]["author"]["following"] is True
    assert listed["Ben one"]["author"]["following"] is False
    anonymous = api.get("/api/articles").json["articles"]
    assert not any(a["favorited"] or a["author"]["following"] for a in anonymous)


def test_list_tags_are_in_the_authors_order(api: Api) -> None:
    user = api.register()
    api.article(user["token"], tagList=["zz", "aa", "mm"])
    assert api.get("/api/articles").json["articles"][0]["tagList"] == ["zz", "aa", "mm"]


# --- feed -----------------------------------------------------------------------


def test_feed_shows_followed_authors_only(api: Api, world: dict[str, Any]) -> None:
    fan = world["fan"]
    res = api.get("/api/articles/feed", fan["token"])
    assert res.json == {"articles": [], "articlesCount": 0}
    api.post("/api/profiles/ben/follow", token=fan["token"], status=200)
    res = api.get("/api/articles/feed", fan["token"])
    assert [a["title"] for a in res.json["articles"]] == ["Ben two", "Ben one"]
    assert res.json["articlesCount"] == 2
    assert all(a["author"]["following"] for a in res.json["articles"])
    assert all("body" not in a for a in res.json["articles"])
    res = api.get("/api/articles/feed?limit=1&offset=1", fan["token"])
    assert [a["title"] for a in res.json["articles"]] == ["Ben one"]
    assert res.json["articlesCount"] == 2
    api.delete("/api/profiles/ben/follow", fan["token"], status=200)
    assert api.get("/api/articles/feed", fan["token"]).json["articlesCount"] == 0


def test_feed_needs_a_token(api: Api) -> None:
    res = api.get("/api/articles/feed", status=401)
    assert res.json == {"errors": {"token": ["is missing"]}}
