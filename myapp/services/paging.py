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

from sqlalchemy import ColumnElement, Select, bindparam, select, true, tuple_

from myapp.models import Article, ArticleTag, Favorite, Follow, Tag, User
from myapp.services.errors import Invalid

if TYPE_CHECKING:
    from myapp.services.articles import Filters

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_RE = re.compile(r"^(\d{1,19})-(\d{1,19})$")
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
        try:
            created_at = EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise Invalid({"before": ["is invalid"]}) from None
        return cls(created_at, ident)


def cursor_of(article: Article) -> str:
    return Cursor(article.created_at, article.id).encode()


def _user_id(username: str) -> Any:
    return select(User.id).where(User.username == username).scalar_subquery()


def conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters as conditions on ``articles`` (no join needed)."""
    found: list[ColumnElement[bool]] = []
    if filters.tag is not None:
        found.append(
            Article.id.in_(select(ArticleTag.article_id).join(Tag).where(Tag.name == filters.tag))
        )
    if filters.author is not None:
        found.append(Article.author_id == _user_id(filters.author))
    if filters.favorited is not None:
        found.append(
            Article.id.in_(
                select(Favorite.article_id).where(Favorite.user_id == _user_id(filters.favorited))
            )
        )
    if filters.feed_of is not None:
        found.append(
            Article.author_id.in_(
                select(Follow.followed_id).where(Follow.follower_id == filters.feed_of)
            )
        )
    return found


def only(filters: Filters) -> str | None:
    """The one filter in use ("tag", "feed_of", ...), "" for none, None for several."""
    given = [
        name
        for name in ("tag", "author", "favorited", "feed_of")
        if getattr(filters, name) is not None
    ]
    return given[0] if len(given) == 1 else ("" if not given else None)


def page_ids(
    dialect: str, filters: Filters, limit: int, offset: int, feed_authors: int | None = None
) -> Select[Any]:
    """A subquery of the page's article ids (see the module docs).

    ``feed_authors``: how many authors the feed follows (Postgres counters).
    """
    after = Cursor.decode(filters.before) if filters.before is not None else None
    only_filter = only(filters)
    if only_filter == "tag":
        created, ident = ArticleTag.created_at, ArticleTag.article_id
        query = select(ident).where(
            ArticleTag.tag_id == select(Tag.id).where(Tag.name == filters.tag).scalar_subquery()
        )
    elif only_filter == "feed_of" and feed_authors is not None and feed_authors <= FEED_LATERAL_MAX:
        followed = (
            select(Follow.followed_id).where(Follow.follower_id == filters.feed_of).subquery()
        )
        newest = select(Article.id, Article.created_at).where(
            Article.author_id == followed.c.followed_id
        )
        if after is not None:
            newest = newest.where(_before(Article.created_at, Article.id, after))
        newest_by_author = (
            newest.order_by(Article.created_at.desc(), Article.id.desc())
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
        created, ident = Article.created_at, Article.id
        query = select(Article.id).where(*conditions(filters))
    if after is not None:
        query = query.where(_before(created, ident, after))
    return query.order_by(created.desc(), ident.desc()).limit(limit).offset(offset)


def _before(created: Any, ident: Any, after: Cursor) -> ColumnElement[bool]:
    # A row-value comparison: btree indexes on (..., created_at, id) serve it.
    return tuple_(created, ident) < tuple_(
        bindparam(None, after.created_at, type_=created.type),
        bindparam(None, after.id, type_=ident.type),
    )
