"""``articles.tag_names``: the copy of an article's tags that lists read.

It must always equal the article's ``article_tags`` names in order: written
by the services with the links, filled by the seeder, backfilled by the
migration that added it (alembic revision 0004).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from myapp.scripts import migrate
from tests.conftest import ROOT, Api, create_database, drop_database

INI = str(ROOT / "development.ini")

LINKED_NAMES = {
    "postgresql": (
        "SELECT a.slug, a.tag_names, coalesce(array_agg(t.name ORDER BY l.position) "
        "FILTER (WHERE t.name IS NOT NULL), '{}') FROM articles a "
        "LEFT JOIN article_tags l ON l.article_id = a.id LEFT JOIN tags t ON t.id = l.tag_id "
        "GROUP BY a.id ORDER BY a.id"
    ),
    "sqlite": (
        "SELECT a.slug, a.tag_names, (SELECT json_group_array(name) FROM (SELECT t.name AS name "
        "FROM article_tags l JOIN tags t ON t.id = l.tag_id WHERE l.article_id = a.id "
        "ORDER BY l.position)) FROM articles a ORDER BY a.id"
    ),
}


def stored_and_linked(conn: Connection) -> list[tuple[str, list[str], list[str]]]:
    """(slug, tag_names, names from the links) for every article."""
    import json

    rows = conn.execute(text(LINKED_NAMES[conn.dialect.name])).all()

    def as_list(value: object) -> list[str]:
        return json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]

    return [(slug, as_list(stored), as_list(linked)) for slug, stored, linked in rows]


def test_writes_keep_the_copy_equal_to_the_links(api: Api, connection: Connection) -> None:
    token = api.register()["token"]
    slug = api.article(token, tagList=["zeta", "alpha", "mid"])["slug"]
    untagged = api.article(token)["slug"]
    url = f"/api/articles/{slug}"
    api.put(url, {"article": {"tagList": ["mid", "new", "zeta"]}}, token, status=200)
    api.put(url, {"article": {"body": "only the body"}}, token, status=200)
    rows = {slug: (stored, linked) for slug, stored, linked in stored_and_linked(connection)}
    assert rows[slug] == (["mid", "new", "zeta"], ["mid", "new", "zeta"])
    assert rows[untagged] == ([], [])
    # And the lists show them, in order.
    listed = api.get("/api/articles?tag=new").json["articles"]
    assert [a["tagList"] for a in listed] == [["mid", "new", "zeta"]]
    api.put(url, {"article": {"tagList": []}}, token, status=200)
    rows = {slug: (stored, linked) for slug, stored, linked in stored_and_linked(connection)}
    assert rows[slug] == ([], [])


INSERT_0003 = [
    "INSERT INTO users (id, username, email, password_hash, bio, image, created_at, updated_at) "
    "VALUES (1, 'u', 'u@example.com', 'x', '', NULL, '2026-01-01', '2026-01-01')",
    "INSERT INTO tags (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    "INSERT INTO articles (id, slug, title, description, body, author_id, favorites_count, "
    "created_at, updated_at) VALUES "
    "(1, 'tagged', 't', 'd', 'b', 1, 0, '2026-01-01', '2026-01-01'), "
    "(2, 'bare', 't', 'd', 'b', 1, 0, '2026-01-02', '2026-01-02')",
    "INSERT INTO article_tags (article_id, tag_id, position, created_at) VALUES "
    "(1, 3, 0, '2026-01-01'), (1, 1, 1, '2026-01-01'), (1, 2, 2, '2026-01-01')",
]


@pytest.fixture(params=["postgresql", "sqlite"])
def database_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = create_database() if request.param == "postgresql" else f"sqlite:///{tmp_path}/t.db"
    try:
        migrate.upgrade(INI, url, revision="0003")
        yield url
    finally:
        if request.param == "postgresql":
            drop_database(url)


def test_the_migration_backfills_existing_articles(database_at_0003: str) -> None:
    engine = create_engine(database_at_0003, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in INSERT_0003:
                conn.execute(text(statement))
        migrate.upgrade(INI, database_at_0003)
        with engine.connect() as conn:
            assert stored_and_linked(conn) == [
                ("tagged", ["three", "one", "two"], ["three", "one", "two"]),
                ("bare", [], []),
            ]
    finally:
        engine.dispose()


def test_postgres_keeps_the_copy_whatever_writes_the_links(connection: Connection) -> None:
    """Writers that do not know the column (the previous release during a
    rolling deploy, a script) still get it right: the triggers of 0004."""

    def run(sql: str, **params: object) -> None:
        connection.execute(text(sql), params)

    run(
        "INSERT INTO users (username, email, password_hash, bio, created_at, updated_at) "
        "VALUES ('old', 'old@example.com', 'x', '', now(), now())"
    )
    run("INSERT INTO tags (name) VALUES ('t-one'), ('t-two'), ('t-three')")
    run(
        "INSERT INTO articles (slug, title, description, body, author_id, favorites_count, "
        "created_at, updated_at) SELECT 'old-code', 't', 'd', 'b', id, 0, now(), now() "
        "FROM users WHERE username = 'old'"
    )

    def names() -> list[str]:
        return list(
            connection.execute(
                text("SELECT tag_names FROM articles WHERE slug = 'old-code'")
            ).scalar_one()
        )

    assert names() == []  # the column's default
    link = (
        "INSERT INTO article_tags (article_id, tag_id, position) "
        "SELECT a.id, t.id, :position FROM articles a, tags t "
        "WHERE a.slug = 'old-code' AND t.name = :name"
    )
    run(link, name="t-two", position=0)
    run(link, name="t-one", position=1)
    assert names() == ["t-two", "t-one"]
    run(
        "UPDATE article_tags SET position = 5 - position WHERE article_id = "
        "(SELECT id FROM articles WHERE slug = 'old-code')"
    )
    assert names() == ["t-one", "t-two"]
    run("DELETE FROM article_tags WHERE tag_id = (SELECT id FROM tags WHERE name = 't-one')")
    assert names() == ["t-two"]
    assert all(stored == linked for _, stored, linked in stored_and_linked(connection))
