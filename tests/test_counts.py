"""The list counters (articlesCount without counting) stay exact through every write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from myapp.models import Article, ArticleTag, Tag, User
from myapp.services import articles, counts
from myapp.services.articles import Filters
from tests.conftest import Api


def assert_exact(connection: Connection) -> None:
    assert counts.stored(connection) == counts.exact(connection)


def count(api: Api, query: str = "", token: str | None = None, feed: bool = False) -> int:
    url = "/api/articles/feed" if feed else f"/api/articles?{query}"
    return api.get(url, token).json["articlesCount"]


def test_counters_follow_every_write(api: Api, connection: Connection) -> None:
    alice, bob = api.register("alice_c"), api.register("bob_c")
    api.post("/api/profiles/alice_c/follow", token=bob["token"], status=200)
    one = api.article(alice["token"], tagList=["red", "blue"])
    two = api.article(alice["token"], tagList=["blue"])
    three = api.article(bob["token"], tagList=["red"])
    assert_exact(connection)
    assert count(api) == 3
    assert (count(api, "tag=red"), count(api, "tag=blue"), count(api, "tag=green")) == (2, 2, 0)
    assert (count(api, "author=alice_c"), count(api, "author=bob_c")) == (2, 1)
    assert count(api, token=bob["token"], feed=True) == 2

    for slug in (one["slug"], three["slug"]):
        api.post(f"/api/articles/{slug}/favorite", token=bob["token"], status=200)
    api.post(f"/api/articles/{one['slug']}/favorite", token=bob["token"], status=200)  # again
    assert count(api, "favorited=bob_c") == 2
    api.delete(f"/api/articles/{three['slug']}/favorite", bob["token"], status=200)
    assert count(api, "favorited=bob_c") == 1
    assert_exact(connection)

    # Tags replaced: one removed, one added, one kept.
    retag = {"article": {"tagList": ["blue", "green"]}}
    api.put(f"/api/articles/{one['slug']}", retag, alice["token"])
    assert (count(api, "tag=red"), count(api, "tag=blue"), count(api, "tag=green")) == (1, 2, 1)
    assert_exact(connection)

    # Deleting an article takes its tags and favourites with it (ON DELETE
    # CASCADE): the statement triggers on those tables count that too.
    api.delete(f"/api/articles/{one['slug']}", alice["token"], status=204)
    assert count(api) == 2
    assert (count(api, "tag=blue"), count(api, "tag=green")) == (1, 0)
    assert count(api, "favorited=bob_c") == 0
    assert count(api, token=bob["token"], feed=True) == 1
    api.delete(f"/api/articles/{two['slug']}", alice["token"], status=204)
    assert_exact(connection)
    assert count(api, "tag=blue") == 0
    assert api.get("/api/tags").json["tags"] == ["red"]


def test_combined_filters_are_counted(api: Api, dbsession: Session) -> None:
    writer = api.register("combo_writer")
    for tags in (["a"], ["a", "b"], ["b"]):
        api.article(writer["token"], tagList=tags)
    both = Filters(tag="a", author="combo_writer")
    assert counts.maintained(dbsession, both) is None
    _, total = articles.list_articles(dbsession, None, both, 20, 0)
    assert total == 2
    assert count(api, "tag=b&author=combo_writer") == 2
    assert count(api, "tag=b&author=nobody") == 0


def test_tags_are_ordered_by_use(api: Api, dbsession: Session) -> None:
    writer = api.register()
    for tags in (["rare"], ["common", "mid"], ["common", "mid"], ["common"]):
        api.article(writer["token"], tagList=tags)
    assert api.get("/api/tags").json["tags"] == ["common", "mid", "rare"]
    assert counts.tags_by_use(dbsession) == ["common", "mid", "rare"]


def test_links_get_their_articles_created_at(api: Api, dbsession: Session) -> None:
    """Any insert, with or without created_at, and any later change, keep the copy right."""
    writer = api.register("linker")
    slug = api.article(writer["token"], tagList=["one"])["slug"]
    article = dbsession.scalar(select(Article).where(Article.slug == slug))
    assert article is not None
    tag = Tag(name="added-directly")
    dbsession.add(tag)
    dbsession.flush()
    dbsession.add(ArticleTag(article_id=article.id, tag_id=tag.id, position=5))  # no created_at
    dbsession.flush()

    def mismatches() -> Any:
        return dbsession.execute(
            text(
                "SELECT count(*) FROM article_tags t JOIN articles a ON a.id = t.article_id "
                "WHERE t.created_at IS DISTINCT FROM a.created_at"
            )
        ).scalar()

    assert mismatches() == 0
    dbsession.execute(
        text("UPDATE articles SET created_at = created_at - interval '1 day' WHERE id = :id"),
        {"id": article.id},
    )
    assert mismatches() == 0


def test_a_user_id_key_change_moves_the_count(api: Api, dbsession: Session) -> None:
    """No code path changes these keys; if one ever did, the counters would follow."""
    first, second = api.register("mover_a"), api.register("mover_b")
    api.article(first["token"])
    ids = dict(dbsession.execute(select(User.username, User.id)).all())
    dbsession.execute(
        text("UPDATE articles SET author_id = :b WHERE author_id = :a"),
        {"a": ids["mover_a"], "b": ids["mover_b"]},
    )
    assert counts.stored(dbsession.connection()) == counts.exact(dbsession.connection())
    assert second  # (registered only to receive the article)
