"""Every query the app sends uses an index: EXPLAIN proves it on a big data set.

The module seeds a private database with ``ARTICLES`` articles (myapp-seed's
data: skewed authors, tags and follows; VACUUM ANALYZE'd), drives the real
app over it — API and pages, reads and writes, background jobs run inline —
records every statement the app sends, and runs ``EXPLAIN (FORMAT JSON)``
on each SELECT, UPDATE and DELETE. A sequential scan of a big table fails
the test, and the lists must use the index that makes them O(page).

``python -m tests.test_explain URL`` prints the same report (with EXPLAIN
ANALYZE timings) for a database seeded elsewhere, e.g. with a million
articles (docs/database.md quotes it).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import webtest
from sqlalchemy import create_engine, event, pool, text
from sqlalchemy.engine import Engine

from myapp import db_prepared
from myapp.config import configure
from myapp.scripts import migrate, seed
from tests.conftest import ROOT, base_settings, create_database, drop_database

# One seeded database per run: every test of the module in one xdist worker.
pytestmark = pytest.mark.xdist_group("explain")
ARTICLES = 50_000
BIG_TABLES = {"articles", "article_tags", "favorites", "follows", "comments", "users"}
EXPLAINED = ("SELECT", "UPDATE", "DELETE", "WITH")


@dataclass
class Statement:
    label: str
    sql: str
    params: Any
    plan: dict[str, Any] = field(default_factory=dict)
    # Sent as a prepared statement (myapp.db_prepared), and its generic plan:
    # the one Postgres may keep using for any values.
    prepared: bool = False
    generic: dict[str, Any] = field(default_factory=dict)

    def nodes(self, plan: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        stack = [self.plan if plan is None else plan]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.get("Plans", []))

    def seq_scans(self, plan: dict[str, Any] | None = None) -> set[str]:
        return {
            n["Relation Name"]
            for n in self.nodes(plan)
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in BIG_TABLES
        }

    def indexes(self, plan: dict[str, Any] | None = None) -> set[str]:
        return {n["Index Name"] for n in self.nodes(plan) if "Index Name" in n}


class Recorder:
    """Every statement the app's engine sends, under the current label."""

    def __init__(self, engine: Engine):
        self.label = ""
        self.statements: list[Statement] = []
        self.lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(
        self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        prepared = context is not None and bool(context.execution_options.get("prepare"))
        if prepared:
            sql = context.statement  # not the EXECUTE it became (myapp.db_prepared)
        elif (original := db_prepared.statement_of(sql)) is not None:
            sql, prepared = original, True  # db_prepared.fetch's EXECUTE: no context
        if not many and sql.lstrip().upper().startswith(EXPLAINED):
            with self.lock:
                self.statements.append(Statement(self.label, sql, params, prepared=prepared))

    def of(self, label: str) -> list[Statement]:
        return [s for s in self.statements if s.label == label]


def explain(engine: Engine, statements: list[Statement], analyze: bool = False) -> None:
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement in statements:
            cursor.execute(f"EXPLAIN ({options}) {statement.sql}", statement.params)
            result = cursor.fetchone()[0]
            document = json.loads(result) if isinstance(result, str) else result
            statement.plan = document[0]["Plan"]
            statement.plan["Execution Time"] = document[0].get("Execution Time")
            if statement.prepared:
                statement.generic = generic_plan(cursor, statement)
        raw.rollback()
    finally:
        raw.close()


def generic_plan(cursor: Any, statement: Statement) -> dict[str, Any]:
    """The plan Postgres makes for the prepared statement without its values."""
    prepared = db_prepared.translate(statement.sql)
    # A name of its own: this pooled connection may hold the app's statement.
    name = f"explain_{prepared.name}"
    cursor.execute("SET plan_cache_mode = force_generic_plan")
    try:
        cursor.execute(prepared.prepare.replace(prepared.name, name, 1))
        execute = prepared.execute.replace(prepared.name, name, 1)
        cursor.execute(f"EXPLAIN (FORMAT JSON) {execute}", statement.params)
        result = cursor.fetchone()[0]
        cursor.execute(f"DEALLOCATE {name}")
    finally:
        cursor.execute("RESET plan_cache_mode")
    document = json.loads(result) if isinstance(result, str) else result
    return document[0]["Plan"]


@dataclass
class Scene:
    """Ids and names in the seeded data that make the interesting cases."""

    prolific: str
    rare_author: str
    popular_tag: str
    rare_tag: str
    favoriter: str
    light: int  # follows a few authors, the most prolific among them
    heavy: int  # follows more authors than the feed's LATERAL plan takes
    slug: str
    articles: int


def scene(engine: Engine) -> Scene:
    def one(sql: str) -> Any:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()

    author_rank = (
        "SELECT u.username FROM article_counts c JOIN users u ON u.id = c.key "
        "WHERE c.scope = 'author' ORDER BY c.articles {} , u.id LIMIT 1"
    )
    tag_rank = (
        "SELECT t.name FROM article_counts c JOIN tags t ON t.id = c.key "
        "WHERE c.scope = 'tag' AND c.articles > 0 ORDER BY c.articles {}, t.id LIMIT 1"
    )
    prolific_id = one(
        "SELECT key FROM article_counts WHERE scope = 'author' ORDER BY articles DESC LIMIT 1"
    )
    follows = "SELECT follower_id FROM follows GROUP BY follower_id HAVING count(*) {} "
    return Scene(
        prolific=one(author_rank.format("DESC")),
        rare_author=one(author_rank.format("ASC")),
        popular_tag=one(tag_rank.format("DESC")),
        rare_tag=one(tag_rank.format("ASC")),
        favoriter=one(
            "SELECT u.username FROM article_counts c JOIN users u ON u.id = c.key "
            "WHERE c.scope = 'favorited' ORDER BY c.articles DESC LIMIT 1"
        ),
        light=one(
            follows.format("BETWEEN 2 AND 20")
            + f"AND bool_or(followed_id = {prolific_id}) ORDER BY follower_id LIMIT 1"
        ),
        heavy=one(follows.format("> 150") + "ORDER BY count(*) DESC LIMIT 1"),
        # A discussed article, as most are (a few comments, not the most).
        slug=one(
            "SELECT a.slug FROM articles a JOIN comments c ON c.article_id = a.id "
            "GROUP BY a.id HAVING count(*) BETWEEN 5 AND 20 ORDER BY a.id LIMIT 1"
        ),
        articles=one("SELECT count(*) FROM articles"),
    )


def drive(app: webtest.TestApp, recorder: Recorder, s: Scene) -> None:
    """Every kind of request, each under its label."""
    tokens = app.app.registry["tokens"]
    light, heavy = tokens.issue(s.light), tokens.issue(s.heavy)
    auth = {"Authorization": f"Token {light}"}

    def get(label: str, url: str, token: str | None = None, status: int = 200) -> Any:
        recorder.label = label
        headers = {"Authorization": f"Token {token}"} if token else {}
        return app.get(url, headers=headers, status=status)

    def send(label: str, method: str, url: str, body: Any = None, status: Any = "*") -> Any:
        recorder.label = label
        return getattr(app, f"{method}_json")(url, body, headers=auth, status=status)

    first = get("list", "/api/articles?limit=20")
    before = first.headers["Link"].split("before=")[1].split(">")[0]
    get("list, keyset", f"/api/articles?limit=20&before={before}")
    get("list, deep offset", f"/api/articles?limit=20&offset={s.articles // 2}")
    get("list, viewer flags", "/api/articles?limit=20", light)
    tagged = get("tag, popular", f"/api/articles?tag={s.popular_tag}")
    after = tagged.headers["Link"].split("before=")[1].split(">")[0]
    get("tag, keyset", f"/api/articles?tag={s.popular_tag}&before={after}")
    get("tag, rare", f"/api/articles?tag={s.rare_tag}")
    get("tag, unknown", "/api/articles?tag=no-such-tag")
    get("author, prolific", f"/api/articles?author={s.prolific}")
    get("author, rare", f"/api/articles?author={s.rare_author}")
    get("author, offset", f"/api/articles?author={s.prolific}&offset=1000")
    get("favorited", f"/api/articles?favorited={s.favoriter}")
    get("combined filters", f"/api/articles?tag={s.popular_tag}&author={s.prolific}")
    get("feed, few authors", "/api/articles/feed", light)
    get("feed, many authors", "/api/articles/feed", heavy)
    get("article", f"/api/articles/{s.slug}", light)
    get("comments", f"/api/articles/{s.slug}/comments", light)
    get("profile", f"/api/profiles/{s.prolific}", light)
    get("tags", "/api/tags")
    get("current user", "/api/user", light)
    get("page: home", "/")
    get("page: home, deep", f"/?page={s.articles // 20}")
    get("page: tag", f"/tag/{s.popular_tag}")
    get("page: article", f"/article/{s.slug}")
    get("page: profile", f"/profile/{s.prolific}")
    get("page: favourites", f"/profile/{s.favoriter}/favorites")
    article = send(
        "publish (and notify followers)",
        "post",
        "/api/articles",
        {"article": {"title": "Explained", "description": "d", "body": "b", "tagList": ["x"]}},
        201,
    ).json["article"]
    url = f"/api/articles/{article['slug']}"
    send("edit", "put", url, {"article": {"tagList": ["y", s.popular_tag]}}, 200)
    send("favourite", "post", f"/api/articles/{s.slug}/favorite", None, 200)
    send("unfavourite", "delete", f"/api/articles/{s.slug}/favorite", None, 200)
    send("follow", "post", f"/api/profiles/{s.prolific}/follow", None, 200)
    send("unfollow", "delete", f"/api/profiles/{s.prolific}/follow", None, 200)
    comment = send("comment", "post", f"{url}/comments", {"comment": {"body": "c"}}, 201)
    send("delete comment", "delete", f"{url}/comments/{comment.json['comment']['id']}", None, 204)
    send("delete article", "delete", url, None, 204)
    send("export (job)", "post", "/api/user/exports", None, 202)
    recorder.label = ""


# Lists and the index that makes each one O(page).
EXPECTED_INDEXES = {
    "list": {"ix_articles_created_at_id", "pk_article_counts"},
    "list, keyset": {"ix_articles_created_at_id"},
    "list, deep offset": {"ix_articles_created_at_id"},
    "tag, popular": {"ix_article_tags_tag_id_created_at_article_id", "pk_article_counts"},
    "tag, rare": {"ix_article_tags_tag_id_created_at_article_id"},
    "author, prolific": {"ix_articles_author_id_created_at_id", "pk_article_counts"},
    "author, rare": {"ix_articles_author_id_created_at_id"},
    "author, offset": {"ix_articles_author_id_created_at_id"},
    "tag, keyset": {"ix_article_tags_tag_id_created_at_article_id"},
    "favorited": {"pk_favorites", "pk_article_counts"},
    "feed, few authors": {"ix_articles_author_id_created_at_id", "pk_article_counts"},
    "feed, many authors": {"ix_articles_created_at_id"},
    "tags": {"pk_article_counts"},
}


@pytest.fixture(scope="module")
def seeded() -> Iterator[str]:
    url = create_database("conduit_test_explain")
    try:
        migrate.upgrade(str(ROOT / "development.ini"), url)
        seed.seed(url, ARTICLES, log=lambda message: None)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def explained(seeded: str) -> list[Statement]:
    settings = base_settings(seeded) | {"cache.enabled": "false", "jobs.runner": "inline"}
    settings["_explicit"] = list(settings)
    wsgi = configure(settings).make_wsgi_app()
    engine = wsgi.registry["db_engine"]
    try:
        found = scene(engine)  # before recording: the test's own queries
        recorder = Recorder(engine)
        app = webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "localhost"})
        drive(app, recorder, found)
        explain(engine, recorder.statements)
    finally:
        engine.dispose()
    return recorder.statements


def test_no_sequential_scan_of_a_big_table(explained: list[Statement]) -> None:
    assert len({s.label for s in explained}) >= 30
    failures = [
        f"{s.label}: Seq Scan on {sorted(s.seq_scans())}\n  {s.sql[:300]}"
        for s in explained
        if s.seq_scans()
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("label", sorted(EXPECTED_INDEXES))
def test_lists_use_their_index(explained: list[Statement], label: str) -> None:
    used = set().union(*(s.indexes() for s in explained if s.label == label))
    assert EXPECTED_INDEXES[label] <= used, used


# Lists whose statements are prepared (myapp.services.articles._page).
PREPARED_LABELS = {
    "list",
    "tag, popular",
    "tag, rare",
    "tag, keyset",
    "author, prolific",
    "author, rare",
    "author, offset",
}


def test_prepared_statements_keep_their_plan_for_any_values(
    explained: list[Statement],
) -> None:
    """A prepared statement's generic plan is as good as its planned one."""
    prepared = [s for s in explained if s.prepared]
    assert PREPARED_LABELS | {"article"} <= {s.label for s in prepared}
    assert all(s.generic for s in prepared)
    failures = [
        f"{s.label}: generic plan scans {sorted(s.seq_scans(s.generic))}\n  {s.sql[:300]}"
        for s in prepared
        if s.seq_scans(s.generic)
    ]
    for label in PREPARED_LABELS:
        used = set().union(*(s.indexes(s.generic) for s in prepared if s.label == label))
        if not EXPECTED_INDEXES[label] <= used:
            failures.append(f"{label}: generic plan uses {sorted(used)}")
    assert not failures, "\n".join(failures)


def test_a_page_at_an_offset_is_not_prepared(explained: list[Statement]) -> None:
    """Its generic plan would scan every article (myapp.services.articles._page)."""
    deep = [s for s in explained if s.label == "list, deep offset" and "LIMIT" in s.sql]
    assert deep and not any(s.prepared for s in deep)


def test_the_checker_sees_a_sequential_scan(seeded: str) -> None:
    """The check above can fail: a query with no usable index is caught."""
    engine = create_engine(seeded, poolclass=pool.NullPool)
    try:
        statement = Statement("probe", "SELECT count(*) FROM comments WHERE body LIKE %(b)s", {})
        statement.params = {"b": "%x%"}
        explain(engine, [statement])
    finally:
        engine.dispose()
    assert statement.seq_scans() == {"comments"}


def report(url: str) -> str:
    """The EXPLAIN ANALYZE report for a seeded database (docs/database.md)."""
    settings = base_settings(url) | {"cache.enabled": "false", "jobs.runner": "inline"}
    settings["_explicit"] = list(settings)
    wsgi = configure(settings).make_wsgi_app()
    engine = wsgi.registry["db_engine"]
    found = scene(engine)
    recorder = Recorder(engine)
    drive(webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "localhost"}), recorder, found)
    explain(engine, recorder.statements, analyze=True)
    engine.dispose()
    lines = ["| request | statements | slowest (ms) | indexes | seq scans of big tables |"]
    lines.append("|---|---|---|---|---|")
    for label in dict.fromkeys(s.label for s in recorder.statements):
        mine = recorder.of(label)
        slowest = max(s.plan.get("Execution Time") or 0 for s in mine)
        indexes = sorted(set().union(*(s.indexes() for s in mine)))
        scans = sorted(set().union(*(s.seq_scans() for s in mine)))
        short = [re.sub(r"^(ix|pk|uq)_", "", i) for i in indexes]
        lines.append(
            f"| {label} | {len(mine)} | {slowest:.2f} | {', '.join(short)} | "
            f"{', '.join(scans) or 'none'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(report(sys.argv[1]))
