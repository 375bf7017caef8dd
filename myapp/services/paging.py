"""Which articles are on a page: their ids first, each list through its index.

A list page is two steps in ONE statement (a "deferred join"): a subquery
finds the page's ids in list order (newest first) using only an index, and
the outer query loads those few articles with their authors, tags and
flags. Skipped rows (``OFFSET``) and non-matching rows are then index
entries, never articles with their tags aggregated — that was the
difference between 96 s and 60 ms at offset 500,000 of a million articles
(docs/database.md).

Each list's index (EXPLAIN-checked by tests/test_explain.py):

* everything: ``ix_articles_created_at_id``, walked backwards;
* an author: ``ix_articles_author_id_created_at_id`` for that author only,
  the author's id looked up by username in an InitPlan. (Joining ``users``
  instead hides the id from the planner, which then fetched all 140,000
  articles of a prolific author to sort them);
* a tag: ``ix_article_tags_tag_id_created_at_article_id``: the link rows
  carry their article's ``created_at``, so a tag's newest links are the
  first entries of its index range, for a tag on 30% of the articles as
  for one on a single article. (Walking the articles and probing each for
  the tag costs a full index scan for a rare tag; collecting all of a
  popular tag's articles to sort them costs hundreds of thousands of
  rows. The planner cannot know which one a tag needs.);
* the feed (Postgres), following up to ``FEED_LATERAL_MAX`` authors: for
  each followed author, at most ``offset + limit`` of their newest
  articles (the author index again, a LATERAL join), then the newest of
  those: bounded by followed authors x page window, however prolific the
  authors (collecting all their articles to sort them took 2.6 s for a
  reader of the most prolific author). Following more, the planner's walk
  down ``ix_articles_created_at_id`` finds the page fastest (6,900
  followed authors: 6 ms, against 220 ms for the LATERAL plan); the
  counters tell which case a feed is (myapp.services.counts.feed);
* a user's favourites, and combined filters: the conditions, planned by
  Postgres (bounded by the smallest set, through the indexes).

Keyset paging (``before``): a page can also start after a cursor — the
(created_at, id) of the last article seen, as ``<microseconds>-<id>`` —
instead of an offset: a row-value comparison on the same indexes, so page
50,000 costs what page 1 does. The API sends the next page's URL in a
``Link: <...>; rel="next"`` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    select,
    true,
    tuple_,
)

from myapp.models import Article, ArticleTag, Favorite, Follow, Tag, User
from myapp.services.errors import Invalid

if TYPE_CHECKING:
    from myapp.services.articles import Filters

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_RE = re.compile(r"^(\d{1,19})-(\d{1,19})$")
BIGINT_MAX = 2**63 - 1
# Up to this many followed authors, the feed takes each one's newest
# articles (followed x window index entries); beyond, Postgres plans it.
FEED_LATERAL_MAX = 100


@dataclass(frozen=True)
class Cursor:
    """A position in a list: just after the article (created_at, id)."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.created_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        match = CURSOR_RE.match(raw)
        if match is None:
            raise Invalid({"before": ["is invalid"]})
        micros, ident = (int(group) for group in match.groups())
        if ident > BIGINT_MAX:
            # A bind parameter of a prepared statement is a bigint: a larger
            # id would fail there (a 500), and no article has one.
            raise Invalid({"before": ["is invalid"]})
        try:
            created_at = EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise Invalid({"before": ["is invalid"]}) from None
        return cls(created_at, ident)


def cursor_of(created: str, ident: int) -> str:
    """The cursor just after the article ``ident`` created at ``created``
    (UTC ISO 8601 text with microseconds, as ``utc_text`` reads it)."""
    return Cursor(datetime.fromisoformat(created), ident).encode()


# The statements below are built once per *shape* of list (which filters,
# a cursor or not) with bind parameters for the values, so SQLAlchemy
# compiles each shape once and a request only binds its values
# (myapp.services.articles caches them). They use the tables, not the ORM
# classes: rows come back as plain rows, no ORM objects to build.
ARTICLES = Article.__table__
ARTICLE_TAGS = ArticleTag.__table__
TAGS = Tag.__table__
USERS = User.__table__
FAVORITES = Favorite.__table__
FOLLOWS = Follow.__table__
FILTERS = ("tag", "author", "favorited", "feed_of")


def _user_id(param: str) -> Any:
    return select(USERS.c.id).where(USERS.c.username == bindparam(param)).scalar_subquery()


def _tag_id() -> Any:
    return select(TAGS.c.id).where(TAGS.c.name == bindparam("tag")).scalar_subquery()


def given(filters: Filters) -> tuple[str, ...]:
    """The names of the filters in use, in a fixed order."""
    return tuple(name for name in FILTERS if getattr(filters, name) is not None)


def params(filters: Filters, limit: int, offset: int) -> dict[str, Any]:
    """The bind values for a list statement of this shape."""
    values: dict[str, Any] = {"limit": limit, "offset": offset}
    values.update((name, getattr(filters, name)) for name in given(filters))
    if filters.before is not None:
        after = Cursor.decode(filters.before)
        values["after_created"], values["after_id"] = after.created_at, after.id
    return values


def conditions(names: tuple[str, ...]) -> list[ColumnElement[bool]]:
    """The filters ``names`` as conditions on ``articles`` (no join needed)."""
    found: list[ColumnElement[bool]] = []
    if "tag" in names:
        found.append(
            ARTICLES.c.id.in_(
                select(ARTICLE_TAGS.c.article_id).where(ARTICLE_TAGS.c.tag_id == _tag_id())
            )
        )
    if "author" in names:
        found.append(ARTICLES.c.author_id == _user_id("author"))
    if "favorited" in names:
        found.append(
            ARTICLES.c.id.in_(
                select(FAVORITES.c.article_id).where(FAVORITES.c.user_id == _user_id("favorited"))
            )
        )
    if "feed_of" in names:
        found.append(
            ARTICLES.c.author_id.in_(
                select(FOLLOWS.c.followed_id).where(FOLLOWS.c.follower_id == bindparam("feed_of"))
            )
        )
    return found


def page_ids(names: tuple[str, ...], after: bool, lateral_feed: bool = False) -> Select[Any]:
    """A subquery of the page's article ids (see the module docs).

    ``names``: the filters in use; ``after``: a cursor is given;
    ``lateral_feed``: the feed of at most ``FEED_LATERAL_MAX`` authors
    (Postgres counters tell, myapp.services.counts.feed). (The first page
    of the global list is read without it: myapp.services.articles._page.)
    """
    limit, offset = bindparam("limit", type_=Integer), bindparam("offset", type_=Integer)
    if names == ("tag",):
        created, ident = ARTICLE_TAGS.c.created_at, ARTICLE_TAGS.c.article_id
        query = select(ident).where(ARTICLE_TAGS.c.tag_id == _tag_id())
    elif names == ("feed_of",) and lateral_feed:
        followed = (
            select(FOLLOWS.c.followed_id)
            .where(FOLLOWS.c.follower_id == bindparam("feed_of"))
            .subquery()
        )
        newest = select(ARTICLES.c.id, ARTICLES.c.created_at).where(
            ARTICLES.c.author_id == followed.c.followed_id
        )
        if after:
            newest = newest.where(_before(ARTICLES.c.created_at, ARTICLES.c.id))
        newest_by_author = (
            newest.order_by(ARTICLES.c.created_at.desc(), ARTICLES.c.id.desc())
            .limit(offset + limit)
            .lateral()
        )
        return (
            select(newest_by_author.c.id)
            .select_from(followed)
            .join(newest_by_author, true())
            .order_by(newest_by_author.c.created_at.desc(), newest_by_author.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    else:
        created, ident = ARTICLES.c.created_at, ARTICLES.c.id
        query = select(ident).where(*conditions(names))
    if after:
        query = query.where(_before(created, ident))
    query = query.order_by(created.desc(), ident.desc())
    return query.limit(limit).offset(offset)


def _before(created: Any, ident: Any) -> ColumnElement[bool]:
    # A row-value comparison: btree indexes on (..., created_at, id) serve it.
    return tuple_(created, ident) < tuple_(
        bindparam("after_created", type_=created.type), bindparam("after_id", type_=ident.type)
    )
