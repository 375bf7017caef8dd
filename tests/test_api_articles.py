"""Articles: create, read, update, delete, lists, the feed and favourites."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

NOT_FOUND = {"errors": {"article": ["not found"]}}


def fields(article: dict[str, Any]) -> dict[str, Any]:
    """What an update must not change when it fails."""
    keys = ("slug", "title", "description", "body", "tagList", "updatedAt")
    return {key: article[key] for key in keys}


# --- create and read ----------------------------------------------------------


def test_create_and_read(api: Api) -> None:
    user = api.register("writer")
    body = {
        "article": {
            "title": "How to train your dragon",
            "description": "Ever wonder how?",
            "body": "You have to believe",
            "tagList": ["dragons", "training"],
        }
    }
    created = api.post("/api/articles", body, user["token"], status=201).json["article"]
    assert created["slug"] == "how-to-train-your-dragon"
    assert created["title"] == "How to train your dragon"
    assert created["body"] == "You have to believe"
    assert created["tagList"] == ["dragons", "training"]
    assert created["favorited"] is False
    assert created["favoritesCount"] == 0
    assert created["author"] == {
        "username": "writer",
        "bio": None,
        "image": None,
        "following": False,
    }
    assert created["createdAt"].endswith("Z")
    assert created["createdAt"] == created["updatedAt"]
    read = api.get("/api/articles/how-to-train-your-dragon").json["article"]
    assert read == created


def test_tags_keep_their_order_without_blanks_or_repeats(api: Api) -> None:
    user = api.register()
    tags = ["zeta", "alpha", " mid ", "alpha", "", "beta"]
    article = api.article(user["token"], tagList=tags)
    assert article["tagList"] == ["zeta", "alpha", "mid", "beta"]


def test_create_without_tags(api: Api) -> None:
    user = api.register()
    assert api.article(user["token"])["tagList"] == []


def test_duplicate_titles_get_distinct_slugs(api: Api) -> None:
    user = api.register()
    slugs = {api.article(user["token"], title="Same Title")["slug"] for _ in range(3)}
    assert len(slugs) == 3
    assert "same-title" in slugs
    assert all(slug.startswith("same-title") for slug in slugs)
    for slug in slugs:
        api.get(f"/api/articles/{slug}", status=200)


def test_an_article_titled_feed_is_reachable(api: Api) -> None:
    user = api.register()
    article = api.article(user["token"], title="Feed")
    assert article["slug"] != "feed"
    assert api.get(f"/api/articles/{article['slug']}").json["article"]["title"] == "Feed"
    renamed = api.article(user["token"], title="Not yet")
    body = {"article": {"title": "Feed"}}
    res = api.put(f"/api/articles/{renamed['slug']}", body, user["token"], status=200)
    assert res.json["article"]["slug"] not in ("feed", article["slug"])


def test_unknown_slug_is_404(api: Api) -> None:
    assert api.get("/api/articles/no-such-article", status=404).json == NOT_FOUND


def test_extra_fields_are_ignored(api: Api) -> None:
    user = api.register()
    article = api.article(user["token"], favoritesCount=99, slug="chosen", author="x")
    assert article["favoritesCount"] == 0
    assert article["slug"] != "chosen"


# --- update -------------------------------------------------------------------


def test_update_changes_given_fields_and_slug_follows_title(api: Api) -> None:
    user = api.register()
    article = api.article(user["token"], title="Old title", tagList=["keep"])
    body = {"article": {"title": "New title", "body": "new body"}}
    updated = api.put(f"/api/articles/{article['slug']}", body, user["token"], status=200)
    updated = updated.json["article"]
    assert updated["slug"] == "new-title"
    assert updated["title"] == "New title"
    assert updated["body"] == "new body"
    assert updated["description"] == article["description"]
    assert updated["tagList"] == ["keep"]
    assert updated["updatedAt"] >= article["updatedAt"]
    api.get(f"/api/articles/{article['slug']}", status=404)
    assert api.get("/api/articles/new-title").json["article"]["body"] == "new body"


def test_slug_follows_a_shorter_title(api: Api) -> None:
    user = api.register()
    article = api.article(user["token"], title="Hello World")
    body = {"article": {"title": "Hello"}}
    updated = api.put(f"/api/articles/{article['slug']}", body, user["token"], status=200)
    assert updated.json["article"]["slug"] == "hello"


def test_retitling_to_the_same_title_keeps_the_slug(api: Api) -> None:
    user = api.register()
    first = api.article(user["token"], title="Twin")
    second = api.article(user["token"], title="Twin")
    for article in (first, second):
        body = {"article": {"title": "Twin", "body": "changed"}}
        res = api.put(f"/api/articles/{article['slug']}", body, user["token"], status=200)
        assert res.json["article"]["slug"] == article["slug"]


def test_retitling_to_a_taken_title_gets_a_distinct_slug(api: Api) -> None:
    user = api.register()
    api.article(user["token"], title="Taken")
    other = api.article(user["token"], title="Other")
    body = {"article": {"title": "Taken"}}
    res = api.put(f"/api/articles/{other['slug']}", body, user["token"], status=200)
    slug = res.json["article"]["slug"]
    assert slug.startswith("taken-")
    assert api.get(f"/api/articles/{slug}").json["article"]["title"] == "Taken"
    assert api.get("/api/articles/taken").json["article"]["slug"] == "taken"


def test_update_tags(api: Api) -> None:
    user = api.register()
    token = user["token"]
    slug = api.article(token, tagList=["a", "b", "c"])["slug"]
    url = f"/api/articles/{slug}"
    # Absent: tags stay.
    res = api.put(url, {"article": {"body": "x"}}, token, status=200)
    assert res.json["article"]["tagList"] == ["a", "b", "c"]
    # Reordered, with one replaced.
    res = api.put(url, {"article": {"tagList": ["c", "d", "a"]}}, token, status=200)
    assert res.json["article"]["tagList"] == ["c", "d", "a"]
    assert api.get(url).json["article"]["tagList"] == ["c", "d", "a"]
    # Null is not a list.
    res = api.put(url, {"article": {"tagList": None}}, token, status=422)
    assert "tagList" in res.json["errors"]
    # Empty: all gone.
    res = api.put(url, {"article": {"tagList": []}}, token, status=200)
    assert res.json["article"]["tagList"] == []
    assert api.get(url).json["article"]["tagList"] == []


@pytest.mark.parametrize("field", ["title", "description", "body"])
@pytest.mark.parametrize("value", ["", "  ", None])
def test_update_rejects_blank_fields_and_changes_nothing(api: Api, field: str, value: Any) -> None:
    user = api.register()
    article = api.article(user["token"], tagList=["t"])
    body = {"article": {"title": "Changed title", "tagList": ["u"], field: value}}
    res = api.put(f"/api/articles/{article['slug']}", body, user["token"], status=422)
    assert field in res.json["errors"]
    assert fields(api.get(f"/api/articles/{article['slug']}").json["article"]) == fields(article)


def test_update_of_unknown_article_is_404(api: Api) -> None:
    user = api.register()
    res = api.put("/api/articles/missing", {"article": {"body": "x"}}, user["token"], status=404)
    assert res.json == NOT_FOUND


# --- authorization ------------------------------------------------------------


def test_someone_elses_article_is_403_and_unchanged(api: Api) -> None:
    owner = api.register()
    other = api.register()
    article = api.article(owner["token"], tagList=["mine"])
    url = f"/api/articles/{article['slug']}"
    body = {"article": {"title": "Hijacked", "tagList": []}}
    res = api.put(url, body, other["token"], status=403)
    assert res.json == {"errors": {"article": ["forbidden"]}}
    res = api.delete(url, other["token"], status=403)
    assert res.json == {"errors": {"article": ["forbidden"]}}
    assert fields(api.get(url).json["article"]) == fields(article)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/articles"),
        ("put", "/api/articles/missing"),
        ("delete", "/api/articles/missing"),
        ("post", "/api/articles/missing/favorite"),
        ("delete", "/api/articles/missing/favorite"),
        ("get", "/api/articles/feed"),
    ],
)
def test_anonymous_writes_are_401_before_404(api: Api, method: str, url: str) -> None:
    if method == "get":
        res = api.get(url, status=401)
    elif method == "delete":
        res = api.delete(url, status=401)
    else:
        res = getattr(api, method)(url, {"article": {"title": "t"}}, status=401)
    assert res.json == {"errors": {"token": ["is missing"]}}


# --- delete -------------------------------------------------------------------


def test_delete(api: Api) -> None:
    user = api.register()
    article = api.article(user["token"], tagList=["gone"])
    api.post(f"/api/articles/{article['slug']}/comments", {"comment": {"body": "c"}}, user["token"])
    api.post(f"/api/articles/{article['slug']}/favorite", token=user["token"], status=200)
    res = api.delete(f"/api/articles/{article['slug']}", user["token"], status=204)
    assert res.body == b""
    api.get(f"/api/articles/{article['slug']}", status=404)
    api.delete(f"/api/articles/{article['slug']}", user["token"], status=404)


# --- favourites ---------------------------------------------------------------


def test_favorite_and_unfavorite(api: Api) -> None:
    author = api.register()
    fan = api.register()
    fan2 = api.register()
    slug = api.article(author["token"])["slug"]
    url = f"/api/articles/{slug}/favorite"
    res = api.post(url, token=fan["token"], status=200).json["article"]
    assert (res["favorited"], res["favoritesCount"]) == (True, 1)
    # Twice is still once.
    res = api.post(url, token=fan["token"], status=200).json["article"]
    assert (res["favorited"], res["favoritesCount"]) == (True, 1)
    res = api.post(url, token=fan2["token"], status=200).json["article"]
    assert (res["favorited"], res["favoritesCount"]) == (True, 2)
    read = api.get(f"/api/articles/{slug}", fan["token"]).json["article"]
    assert (read["favorited"], read["favoritesCount"]) == (True, 2)
    read = api.get(f"/api/articles/{slug}", author["token"]).json["article"]
    assert (read["favorited"], read["favoritesCount"]) == (False, 2)
    res = api.delete(url, fan["token"], status=200).json["article"]
    assert (res["favorited"], res["favoritesCount"]) == (False, 1)
    res = api.delete(url, fan["token"], status=200).json["article"]
    assert (res["favorited"], res["favoritesCount"]) == (False, 1)


def test_favorite_unknown_article_is_404(api: Api) -> None:
    user = api.register()
    url = "/api/articles/missing/favorite"
    assert api.post(url, token=user["token"], status=404).json == NOT_FOUND
    assert api.delete(url, user["token"], status=404).json == NOT_FOUND
