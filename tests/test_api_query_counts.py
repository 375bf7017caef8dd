"""List endpoints and pages cost a fixed number of SQL statements, whatever
the page size.

``queries`` counts the statements sent on the test's connection, which the
app's sessions share (savepoints are not counted).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.models import Article, ArticleTag, Comment, Favorite, Follow, Tag, User
from myapp.models.meta import utcnow
from tests.conftest import Api, QueryCounter
from tests.pages_support import Browser

ARTICLES = 25
# One statement for the page (author and the viewer's flags joined), one for
# the page's tags, one for the total count.
LIST_STATEMENTS = 3
AUTH_STATEMENTS = 1  # the token's user


@pytest.fixture
def many(api: Api, dbsession: Session) -> dict[str, Any]:
    """Two users through the API (for their tokens); the rest written directly,
    which is much cheaper than 75 more requests: the reader follows the
    author and favourites each of the author's tagged, commented articles."""
    author = api.register("prolific")
    reader = api.register("reader")
    ids = {name: id_ for name, id_ in dbsession.execute(select(User.username, User.id))}
    author_id, reader_id = ids["prolific"], ids["reader"]
    dbsession.add(Follow(follower_id=reader_id, followed_id=author_id))
    common = Tag(name="common")
    now = utcnow()
    for i in range(ARTICLES):
        created = now - timedelta(minutes=i)
        article = Article(
            slug=f"bulk-{i}",
            title=f"Bulk {i}",
            description="d",
            body="b",
            author_id=author_id,
            favorites_count=1,
            created_at=created,
            updated_at=created,
        )
        article_tags = [common, Tag(name=f"tag{i}"), Tag(name=f"other{i}")]
        article.tag_links = [
            ArticleTag(tag=tag, position=position) for position, tag in enumerate(article_tags)
        ]
        article.tag_names = [tag.name for tag in article_tags]
        dbsession.add(article)
        dbsession.flush()
        dbsession.add(Favorite(user_id=reader_id, article_id=article.id))
        dbsession.add(
            Comment(
                article_id=article.id,
                author_id=author_id,
                body="c",
                created_at=created,
                updated_at=created,
            )
        )
    dbsession.commit()  # releases the session's savepoint: the app sees it all
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


@pytest.mark.parametrize(
    "url", ["/api/articles", "/api/articles?tag=common", "/api/articles?author=prolific"]
)
def test_an_anonymous_list_page_is_one_statement(
    api: Api, queries: QueryCounter, many: dict[str, Any], url: str
) -> None:
    """Page, authors, tag names and count in one statement (myapp.services.articles)."""
    statements, got = count(api, queries, url, None)
    assert got == 20
    assert statements == 1, queries.statements


# -- the HTML pages ---------------------------------------------------------------

# Each pair: a page of ten articles and a page of the same list with fewer.
PAGES = [
    ("/", "/?page=3"),
    ("/tag/common", "/tag/tag0"),
    ("/profile/prolific", "/profile/prolific?page=3"),
    ("/profile/reader/favorites", "/profile/reader/favorites?page=3"),
]
PAGE_STATEMENTS = 4  # issue 7: at most 4 for any list, whatever it shows
PAGE_AUTH_STATEMENTS = 1  # the logged-in visitor's user


def page_count(browser: webtest.TestApp, queries: QueryCounter, url: str) -> tuple[int, int]:
    """Statements for one page on a cold cache, and the articles it shows."""
    browser.app.registry["cache"].invalidate_all()
    queries.reset()
    page = browser.get(url, status=200)
    return queries.count, len(page.html.select(".article-preview h1"))


@pytest.mark.parametrize(("full", "fewer"), PAGES)
@pytest.mark.parametrize("logged_in", [False, True])
def test_a_page_costs_the_same_whatever_it_shows(
    testapp: webtest.TestApp,
    queries: QueryCounter,
    many: dict[str, Any],
    full: str,
    fewer: str,
    logged_in: bool,
) -> None:
    browser = Browser.new(testapp)
    if logged_in:
        browser.login("reader@example.com", "password123")
    statements, shown = page_count(browser.app, queries, full)
    fewer_statements, fewer_shown = page_count(browser.app, queries, fewer)
    assert shown == 10 and 0 < fewer_shown < 10, (shown, fewer_shown)
    assert statements == fewer_statements, queries.statements
    limit = PAGE_STATEMENTS + (PAGE_AUTH_STATEMENTS if logged_in else 0)
    assert statements <= limit, queries.statements


def test_the_feed_page_costs_the_same_whatever_it_shows(
    testapp: webtest.TestApp, queries: QueryCounter, many: dict[str, Any]
) -> None:
    browser = Browser.new(testapp)
    browser.login("reader@example.com", "password123")
    statements, shown = page_count(browser.app, queries, "/?feed=following")
    fewer_statements, fewer_shown = page_count(browser.app, queries, "/?feed=following&page=3")
    assert (shown, fewer_shown) == (10, 5)
    assert statements == fewer_statements <= PAGE_STATEMENTS + PAGE_AUTH_STATEMENTS, (
        queries.statements
    )
