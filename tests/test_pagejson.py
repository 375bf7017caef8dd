"""myapp.services.pagejson: the list pages Postgres writes as JSON are the
pages Python builds from the same rows (public.page_of_rows), in one
statement, prepared where the rows' statement is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from myapp import db_prepared
from myapp.db_reads import CoreReads
from myapp.models import User
from myapp.services import articles, paging, public
from myapp.services.articles import Filters
from tests.test_db_reads import App, url  # noqa: F401  (the module's database)


@pytest.fixture(scope="module")
def app(url: str) -> Iterator[App]:  # noqa: F811
    instance = App(url)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def data(app: App) -> dict[str, Any]:
    """Two authors, a reader who follows one and favourites some articles;
    three articles share one creation time (ordered by id among themselves)."""
    api = app.api
    alice = api.register(username="pj_alice")
    profile = {"bio": "Writes <b>a lot</b> \u2028", "image": "http://x/a.png"}
    api.put("/api/user", {"user": profile}, token=alice["token"], status=200)
    bob = api.register(username="pj_bob")
    reader = api.register(username="pj_reader")
    slugs = []
    for i in range(7):
        token = (alice if i % 2 else bob)["token"]
        tags = ["pj", f"pj{i}"] if i % 3 else []
        title = f'Page "JSON" {i} \u00e9\u4e2d \\ \n'
        slugs.append(api.article(token, title=title, tagList=tags)["slug"])
    for slug in slugs[:3]:
        api.post(f"/api/articles/{slug}/favorite", token=reader["token"])
    api.post("/api/profiles/pj_alice/follow", token=reader["token"])
    with app.engine.begin() as conn:
        conn.execute(
            text("UPDATE articles SET created_at = :t WHERE slug = ANY(:s)"),
            {"t": "2024-01-02 03:04:05.678901+00", "s": slugs[2:5]},
        )
    link = api.get("/api/articles?tag=pj&limit=2").headers["Link"]
    before = parse_qs(urlsplit(link.split(";")[0].strip("<>")).query)["before"][0]
    return {"before": before, "reader": reader}


def _shapes(before: str) -> list[tuple[Filters, int, int]]:
    return [
        (Filters(), 20, 0),  # the home page's first pages: prepared with the size written in
        (Filters(), 10, 0),
        (Filters(), 3, 2),  # planned with its values
        (Filters(tag="pj"), 20, 0),
        (Filters(tag="pj"), 2, 1),
        (Filters(author="pj_alice"), 20, 0),
        (Filters(favorited="pj_reader"), 20, 0),
        (Filters(tag="pj", author="pj_bob"), 20, 0),  # no counter: counted apart
        (Filters(tag="pj", before=before), 20, 0),
        (Filters(before=before), 2, 0),
        (Filters(tag="pj"), 20, 500),  # past the end: no rows to carry the count
        (Filters(tag="no-such-tag"), 20, 0),
    ]


def _as_data(page: public.Page) -> dict[str, Any]:
    return {**page, "json": orjson.loads(page["json"])}


@pytest.mark.parametrize("as_reader", [False, True])
@pytest.mark.parametrize("lateral_feed_max", [0, 1000])
def test_postgres_writes_the_page_python_builds(
    app: App,
    data: dict[str, Any],
    as_reader: bool,
    lateral_feed_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every list shape, the reader's feed with both of its plans, anonymous
    pages through the cursor (db_prepared.fetch) as production reads them."""
    monkeypatch.setattr(paging, "FEED_LATERAL_MAX", lateral_feed_max)
    reads = CoreReads(lambda: app.engine, app.engine.dialect)
    try:
        with Session(app.engine) as session:
            reader = session.scalar(select(User).where(User.username == "pj_reader"))
            assert reader is not None
            viewer = reader if as_reader else None
            shapes = _shapes(data["before"])
            shapes += [(Filters(feed_of=reader.id), 20, 0), (Filters(feed_of=reader.id), 2, 1)]
            seen = 0
            for filters, limit, offset in shapes:
                rows, count = articles.list_articles(session, viewer, filters, limit, offset)
                expected = public.page_of_rows(rows, count, personal=viewer is not None)
                written = public.read_page(session, viewer, filters, limit, offset)
                assert _as_data(written) == _as_data(expected), filters
                if viewer is None:
                    fetched = public.read_page(reads, None, filters, limit, offset)
                    assert _as_data(fetched) == _as_data(expected), filters
                seen += len(rows)
                if viewer is not None:
                    # The viewer's own flags are in the JSON.
                    docs = orjson.loads(written["json"])
                    flags = [(a["favorited"], a["author"]["following"]) for a in docs]
                    assert flags == [(bool(r["favorited"]), bool(r["following"])) for r in rows]
            assert seen > 20
            # Counts known independently: four articles tagged, one past the end.
            assert public.read_page(reads, None, Filters(tag="pj"), 20, 500)["count"] == 4
            feed = public.read_page(session, reader, Filters(feed_of=reader.id), 20, 0)
            assert feed["count"] == 3 and len(feed["ids"]) == 3  # pj_alice's: i = 1, 3, 5
    finally:
        reads.close()


def test_the_page_is_one_prepared_statement(app: App, data: dict[str, Any]) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(app.engine, "before_cursor_execute", record)
    reads = CoreReads(lambda: app.engine, app.engine.dialect)
    try:
        for filters, limit, offset, prepared in [
            (Filters(), 20, 0, True),
            (Filters(tag="pj"), 2, 1, True),
            (Filters(tag="pj", before=data["before"]), 20, 0, True),
            (Filters(), 20, 1, False),
        ]:
            statements.clear()
            page = public.read_page(reads, None, filters, limit, offset)
            assert page["ids"]
            ours = [sql for sql in statements if not sql.startswith("PREPARE")]
            assert len(ours) == 1, ours
            assert (db_prepared.statement_of(ours[0]) is not None) is prepared, filters
    finally:
        reads.close()
        event.remove(app.engine, "before_cursor_execute", record)


def test_anonymous_lists_send_the_written_json(app: App, data: dict[str, Any]) -> None:
    """The API's body holds the page's JSON as Postgres wrote it, and a
    viewer's copy differs only by their flags."""
    anonymous = app.api.get("/api/articles?tag=pj").json
    mine = app.api.get("/api/articles?tag=pj", token=data["reader"]["token"]).json
    assert anonymous["articlesCount"] == mine["articlesCount"] == 4  # i = 1, 2, 4, 5
    assert not any(a["favorited"] or a["author"]["following"] for a in anonymous["articles"])
    assert any(a["favorited"] for a in mine["articles"])
    assert all(
        a["author"]["following"] == (a["author"]["username"] == "pj_alice")
        for a in mine["articles"]
    )
    for a in mine["articles"]:
        a["favorited"] = False
        a["author"]["following"] = False
    assert mine["articles"] == anonymous["articles"]


def test_ties_in_creation_time_are_ordered_by_id(app: App, data: dict[str, Any]) -> None:
    with Session(app.engine) as session:
        page = public.read_page(session, None, Filters(), 20, 0)
        created = dict(
            session.execute(
                text("SELECT id, created_at FROM articles WHERE id = ANY(:i)"), {"i": page["ids"]}
            ).all()
        )
    keys = [(created[i], i) for i in page["ids"]]
    assert keys == sorted(keys, reverse=True)
    assert len({created[i] for i in page["ids"]}) < len(page["ids"])  # there are ties


def test_a_page_that_is_not_full_has_no_next_link(app: App, data: dict[str, Any]) -> None:
    assert "Link" not in app.api.get("/api/articles?tag=pj&limit=20").headers
    with Session(app.engine) as session:
        empty = public.read_page(session, None, Filters(tag="no-such-tag"), 20, 0)
    assert empty == {
        "json": "[]",
        "ids": [],
        "author_ids": [],
        "last_created": None,
        "count": 0,
        "personal": False,
    }
    assert public.page_cursor(empty) is None
