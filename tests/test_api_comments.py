"""Comments on articles."""

from __future__ import annotations

from typing import Any

import pytest
from dogpile.cache.api import NO_VALUE
from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.models import Article
from tests.conftest import Api, QueryCounter


@pytest.fixture
def setup(api: Api) -> dict[str, Any]:
    author = api.register("author")
    reader = api.register("reader")
    article = api.article(author["token"])
    return {"author": author, "reader": reader, "slug": article["slug"]}


def comment(api: Api, slug: str, token: str, body: str = "Nice!") -> dict[str, Any]:
    res = api.post(f"/api/articles/{slug}/comments", {"comment": {"body": body}}, token, status=201)
    return res.json["comment"]


def test_add_and_list(api: Api, setup: dict[str, Any]) -> None:
    slug = setup["slug"]
    first = comment(api, slug, setup["reader"]["token"], "first")
    second = comment(api, slug, setup["author"]["token"], "second")
    assert first["body"] == "first"
    assert isinstance(first["id"], int)
    assert first["createdAt"].endswith("Z")
    assert first["author"] == {"username": "reader", "bio": None, "image": None, "following": False}
    listed = api.get(f"/api/articles/{slug}/comments").json["comments"]
    # Newest first.
    assert [c["id"] for c in listed] == [second["id"], first["id"]]
    assert listed[1] == first


def test_following_flag_depends_on_the_viewer(api: Api, setup: dict[str, Any]) -> None:
    slug = setup["slug"]
    comment(api, slug, setup["reader"]["token"])
    other = api.register()
    api.post("/api/profiles/reader/follow", token=setup["author"]["token"], status=200)
    url = f"/api/articles/{slug}/comments"
    assert api.get(url, setup["author"]["token"]).json["comments"][0]["author"]["following"]
    assert not api.get(url, other["token"]).json["comments"][0]["author"]["following"]
    assert not api.get(url).json["comments"][0]["author"]["following"]


def test_delete_own_comment(api: Api, setup: dict[str, Any]) -> None:
    slug = setup["slug"]
    token = setup["reader"]["token"]
    keep = comment(api, slug, token, "keep")
    gone = comment(api, slug, token, "gone")
    res = api.delete(f"/api/articles/{slug}/comments/{gone['id']}", token, status=204)
    assert res.body == b""
    listed = api.get(f"/api/articles/{slug}/comments").json["comments"]
    assert [c["id"] for c in listed] == [keep["id"]]
    res = api.delete(f"/api/articles/{slug}/comments/{gone['id']}", token, status=404)
    assert res.json == {"errors": {"comment": ["not found"]}}


def test_someone_elses_comment_is_403_and_survives(api: Api, setup: dict[str, Any]) -> None:
    slug = setup["slug"]
    mine = comment(api, slug, setup["reader"]["token"], "A's comment")
    # Not even the article's author may delete a reader's comment.
    for token in (setup["author"]["token"], api.register()["token"]):
        res = api.delete(f"/api/articles/{slug}/comments/{mine['id']}", token, status=403)
        assert res.json == {"errors": {"comment": ["forbidden"]}}
    listed = api.get(f"/api/articles/{slug}/comments").json["comments"]
    assert [c["body"] for c in listed] == ["A's comment"]


@pytest.mark.parametrize("value", ["", "   ", None])
def test_blank_comment_is_422(api: Api, setup: dict[str, Any], value: Any) -> None:
    slug = setup["slug"]
    url = f"/api/articles/{slug}/comments"
    res = api.post(url, {"comment": {"body": value}}, setup["reader"]["token"], status=422)
    assert "body" in res.json["errors"]
    assert api.get(url).json["comments"] == []


def test_over_long_comment_is_422(api: Api, setup: dict[str, Any]) -> None:
    url = f"/api/articles/{setup['slug']}/comments"
    token = setup["reader"]["token"]
    api.post(url, {"comment": {"body": "c" * 10_000}}, token, status=201)
    res = api.post(url, {"comment": {"body": "c" * 10_001}}, token, status=422)
    assert res.json["errors"]["body"] == ["is too long (maximum is 10000 characters)"]


def test_unknown_article_is_404(api: Api, setup: dict[str, Any]) -> None:
    token = setup["reader"]["token"]
    expected = {"errors": {"article": ["not found"]}}
    url = "/api/articles/missing/comments"
    assert api.get(url, status=404).json == expected
    assert api.post(url, {"comment": {"body": "x"}}, token, status=404).json == expected
    assert api.delete(f"{url}/1", token, status=404).json == expected


@pytest.mark.parametrize("comment_id", ["999999", "0", "-1", "abc", "9" * 30, "1.5"])
def test_unknown_or_impossible_comment_id_is_404(
    api: Api, setup: dict[str, Any], comment_id: str
) -> None:
    url = f"/api/articles/{setup['slug']}/comments/{comment_id}"
    res = api.delete(url, setup["reader"]["token"], status=404)
    assert res.json == {"errors": {"comment": ["not found"]}}


def test_comment_of_another_article_is_404(api: Api, setup: dict[str, Any]) -> None:
    token = setup["reader"]["token"]
    other = api.article(token)["slug"]
    mine = comment(api, other, token)
    url = f"/api/articles/{setup['slug']}/comments/{mine['id']}"
    api.delete(url, token, status=404)
    assert len(api.get(f"/api/articles/{other}/comments").json["comments"]) == 1


def test_anonymous_is_401_before_404(api: Api) -> None:
    expected = {"errors": {"token": ["is missing"]}}
    url = "/api/articles/missing/comments"
    assert api.post(url, {"comment": {"body": "x"}}, status=401).json == expected
    assert api.delete(f"{url}/1", status=401).json == expected


def test_comments_go_with_their_article(api: Api, setup: dict[str, Any]) -> None:
    slug = setup["slug"]
    comment(api, slug, setup["reader"]["token"])
    api.delete(f"/api/articles/{slug}", setup["author"]["token"], status=204)
    api.get(f"/api/articles/{slug}/comments", status=404)


# -- the cached list (myapp.services.comments) -------------------------------------


def test_a_warm_list_is_read_without_sql(
    api: Api, setup: dict[str, Any], queries: QueryCounter
) -> None:
    slug = setup["slug"]
    comment(api, slug, setup["reader"]["token"])
    url = f"/api/articles/{slug}/comments"
    first = api.get(url).json
    queries.reset()
    assert api.get(url).json == first
    assert queries.count == 0, queries.statements
    # A viewer's flags are cached too (by their flags token).
    token = setup["author"]["token"]
    api.get(url, token)
    queries.reset()
    assert api.get(url, token).json == first
    assert queries.count == 0, queries.statements


def test_writes_and_renames_reach_a_warm_list(api: Api, setup: dict[str, Any]) -> None:
    slug, reader, author = setup["slug"], setup["reader"]["token"], setup["author"]["token"]
    url = f"/api/articles/{slug}/comments"
    kept = comment(api, slug, reader, "kept")
    assert [c["body"] for c in api.get(url).json["comments"]] == ["kept"]
    assert not api.get(url, author).json["comments"][0]["author"]["following"]
    # Each write purges the cached list after its commit.
    gone = comment(api, slug, reader, "gone")
    assert [c["body"] for c in api.get(url).json["comments"]] == ["gone", "kept"]
    api.delete(f"{url}/{gone['id']}", reader, status=204)
    assert [c["id"] for c in api.get(url).json["comments"]] == [kept["id"]]
    # A new bio: every cached comment of its author embeds the profile.
    api.put("/api/user", {"user": {"bio": "now with a bio"}}, reader, status=200)
    assert api.get(url).json["comments"][0]["author"]["bio"] == "now with a bio"
    # Following the commenter changes the follower's flags token.
    api.post("/api/profiles/reader/follow", token=author, status=200)
    assert api.get(url, author).json["comments"][0]["author"]["following"]
    assert not api.get(url).json["comments"][0]["author"]["following"]


def test_comments_of_a_missing_article_are_a_404(api: Api) -> None:
    res = api.get("/api/articles/no-such-article/comments", status=404)
    assert res.json == {"errors": {"article": ["not found"]}}


def test_deleting_an_article_purges_its_comment_list(
    api: Api, setup: dict[str, Any], dbsession: Session
) -> None:
    """The database deletes the comments (ON DELETE CASCADE), which the flush
    hook never sees: the article's own deletion purges its list. (SQLite may
    give a deleted article's id to the next one.)"""
    slug, author = setup["slug"], setup["author"]["token"]
    comment(api, slug, setup["reader"]["token"])
    article_id = dbsession.scalar(select(Article.id).where(Article.slug == slug))
    api.get(f"/api/articles/{slug}/comments")
    region = api.app.app.registry["cache"].regions["comments"]
    assert region.get(str(article_id)) is not NO_VALUE
    api.delete(f"/api/articles/{slug}", author, status=204)
    assert region.get(str(article_id)) is NO_VALUE
