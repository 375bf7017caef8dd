"""myapp-seed: a consistent, deterministic data set; never over existing data
unless told; all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import webtest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from myapp.config import configure
from myapp.scripts import migrate, seed
from myapp.scripts import seed_data as data
from myapp.services import counts
from tests.conftest import ROOT, Api, base_settings, create_database, drop_database

INI = str(ROOT / "development.ini")
# One seeded database per run: every test of the module in one xdist worker.
pytestmark = pytest.mark.xdist_group("seed")
ARTICLES = 2000


def connect(url: str) -> Any:
    return create_engine(url, poolclass=pool.NullPool).connect()


def quiet(message: str) -> None:
    pass


def schema(conn: Connection) -> dict[str, set[str]]:
    """Indexes, constraints and triggers (with their enabled state) of the public schema."""
    return {
        "indexes": set(
            conn.scalars(text("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"))
        ),
        "constraints": set(
            conn.scalars(
                text(
                    "SELECT conname || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c "
                    "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
                )
            )
        ),
        "triggers": set(
            conn.scalars(
                text(
                    "SELECT tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal"
                )
            )
        ),
    }


def checksum(conn: Connection) -> str:
    """One digest of the data (users, articles, links, favourites, comments, follows)."""
    parts = [
        "SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u",
        "SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM articles a",
        "SELECT md5(string_agg(t::text, ',' ORDER BY article_id, tag_id)) FROM article_tags t",
        "SELECT md5(string_agg(f::text, ',' ORDER BY user_id, article_id)) FROM favorites f",
        "SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM comments c",
        "SELECT md5(string_agg(f::text, ',' ORDER BY follower_id, followed_id)) FROM follows f",
    ]
    return ":".join(str(conn.execute(text(sql)).scalar()) for sql in parts)


@pytest.fixture
def empty_url() -> Iterator[str]:
    url = create_database("conduit_test_seed")
    try:
        migrate.upgrade(INI, url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[str, seed.Report, dict[str, set[str]]]]:
    url = create_database("conduit_test_seed")
    try:
        migrate.upgrade(INI, url)
        with connect(url) as conn:
            before = schema(conn)
        report = seed.seed(url, ARTICLES, log=quiet)
        yield url, report, before
    finally:
        drop_database(url)


def test_the_data_set_has_the_planned_shape(seeded: Any) -> None:
    url, report, _ = seeded
    plan = data.Plan(ARTICLES)
    with connect(url) as conn:
        rows = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in seed.TABLES
        }
        assert rows == report.rows
        assert (rows["articles"], rows["users"], rows["tags"]) == (ARTICLES, plan.users, plan.tags)
        # Every other table is filled, with the ratios of a real site.
        assert rows["article_tags"] > ARTICLES * 2
        assert rows["favorites"] > ARTICLES
        assert rows["comments"] > ARTICLES
        assert rows["follows"] > plan.users
        # Skewed: the most prolific author wrote far more than the average.
        top = conn.execute(
            text("SELECT max(n) FROM (SELECT count(*) n FROM articles GROUP BY author_id) x")
        ).scalar()
        assert top > 10 * ARTICLES / plan.authors
        body = conn.execute(text("SELECT body FROM articles WHERE id = 1")).scalar()
        assert body.startswith("## ") and "\n\n" in body and "\\n" not in body


def test_derived_values_are_consistent(seeded: Any) -> None:
    url, report, before = seeded
    assert report.favorites_fixed == 0
    with connect(url) as conn:
        wrong = conn.execute(
            text(
                "SELECT count(*) FROM articles a WHERE favorites_count <> "
                "(SELECT count(*) FROM favorites f WHERE f.article_id = a.id)"
            )
        ).scalar()
        assert wrong == 0
        assert counts.stored(conn) == counts.exact(conn)
        assert counts.stored(conn)[("all", 0)] == ARTICLES
        links = conn.execute(
            text(
                "SELECT count(*) FROM article_tags t JOIN articles a ON a.id = t.article_id "
                "WHERE t.created_at IS DISTINCT FROM a.created_at"
            )
        ).scalar()
        assert links == 0
        # Each article's tag names (what lists read) are its links' names, in order.
        mismatched = conn.execute(
            text(
                "SELECT count(*) FROM articles a WHERE tag_names <> coalesce(("
                "SELECT array_agg(t.name::text ORDER BY l.position) FROM article_tags l "
                "JOIN tags t ON t.id = l.tag_id WHERE l.article_id = a.id), '{}')"
            )
        ).scalar()
        assert mismatched == 0
        # The indexes, foreign keys and triggers dropped for the load are back.
        assert schema(conn) == before
        analyzed = conn.execute(
            text(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = 'articles'"
            )
        ).scalar()
        assert analyzed


def test_the_app_works_on_the_seeded_data(empty_url: str) -> None:
    seed.seed(empty_url, 200, log=quiet)
    settings = base_settings(empty_url) | {"jobs.runner": "inline"}
    wsgi = configure(settings).make_wsgi_app()
    try:
        api = Api(webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "localhost"}))
        login = {"user": {"email": data.email(1), "password": data.PASSWORD}}
        user = api.post("/api/users/login", login, status=200).json["user"]
        assert user["username"] == data.username(1)
        # The sequences were moved past the loaded ids: new rows get new ids.
        article = api.article(user["token"], tagList=["python", "brand-new"])
        listed = api.get("/api/articles?limit=1").json
        assert listed["articles"][0]["slug"] == article["slug"]
        assert listed["articlesCount"] == 201
        tagged = api.get("/api/articles?tag=brand-new").json
        assert tagged["articlesCount"] == 1
    finally:
        wsgi.registry["db_engine"].dispose()


def test_same_arguments_same_data_and_force_starts_over(empty_url: str) -> None:
    seed.seed(empty_url, 300, log=quiet)
    with connect(empty_url) as conn:
        first = checksum(conn)
    seed.seed(empty_url, 300, force=True, log=quiet)
    with connect(empty_url) as conn:
        assert checksum(conn) == first
        assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == 300
        assert counts.stored(conn) == counts.exact(conn)
    seed.seed(empty_url, 300, seed=7, force=True, log=quiet)
    with connect(empty_url) as conn:
        assert checksum(conn) != first


def test_a_database_with_data_is_refused(empty_url: str) -> None:
    seed.seed(empty_url, 100, log=quiet)
    with connect(empty_url) as conn:
        before = checksum(conn)
    with pytest.raises(seed.SeedError, match="--force"):
        seed.seed(empty_url, 200, log=quiet)
    assert seed.main([INI, "--url", empty_url, "--articles", "200"]) == 2
    with connect(empty_url) as conn:
        assert checksum(conn) == before


def test_a_failed_load_changes_nothing(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(empty_url) as conn:
        before = schema(conn)

    def broken(plan: data.Plan) -> Iterator[str]:
        yield "1\t1\t1\tfine\t2024-01-01T00:00:00+00:00\t2024-01-01T00:00:00+00:00\n"
        raise RuntimeError("the generator broke")

    monkeypatch.setattr(data, "comments", broken)
    with pytest.raises(psycopg2.Error, match="generator broke"):
        seed.seed(empty_url, 100, log=quiet)
    with connect(empty_url) as conn:
        assert schema(conn) == before
        assert not any(seed.existing_rows(conn).values())


def test_the_command_needs_postgres(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert seed.main([INI, "--url", url, "--articles", "10"]) == 2
    assert not (tmp_path / "x.sqlite").exists()
