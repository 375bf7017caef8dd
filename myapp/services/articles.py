"""Articles: lists and feeds, reads, writes, tags and favourites.

Every list page is ONE statement: the page's ids from the index that
serves the list (myapp.services.paging), the articles with their author,
their tag names (kept on the article, ``articles.tag_names``) and the
viewer's ``favorited``/``following`` flags as EXISTS columns, and the
list's count from the maintained counters (myapp.services.counts) as one
more column. Only a page past the end (no rows to carry the count), the
feed (whose counters pick its plan) and combined filters (no counter)
count in a second statement.

Reads return plain rows (``ArticleRow``: dicts by column name), not ORM
objects: a list page is read, serialised and forgotten, and building twenty
``Article`` and ``User`` instances with their identity-map bookkeeping cost
more than the query itself. Each shape of statement is built once (see
``_page``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from slugify import slugify
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from myapp import db_reads
from myapp.db_reads import Reader, dialect_name
from myapp.models import Article, ArticleTag, Favorite, Tag, User
from myapp.models.article import SLUG_MAX
from myapp.models.meta import utc_text, utcnow
from myapp.services import counts, paging, rules
from myapp.services.errors import ErrorMap, Forbidden, NotFound
from myapp.services.paging import ARTICLES, FAVORITES, FOLLOWS, USERS

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Slugs that /api/articles/{slug} cannot reach because a fixed route wins.
RESERVED_SLUGS = frozenset({"feed"})

# Page sizes whose first global page is a prepared statement of its own
# (see ``_page``): the pages' 10 and the API's default 20. Each size is one
# more statement kept by every database connection (~100 kB each); any
# size would let a client make each connection hold two hundred.
FIRST_PAGE_SIZES = frozenset({10, LIMIT_DEFAULT})

# The lists whose page statement is prepared at any page (see ``_page``).
PREPARED_SHAPES = frozenset({("tag",), ("author",)})

# An article as one viewer sees it: the article's columns (``body`` only for
# single reads; ``created`` and ``updated`` as UTC text), the author's
# ``username``/``bio``/``image``, and the viewer's ``favorited``/``following``.
ArticleRow = dict[str, Any]


@dataclass(frozen=True)
class Filters:
    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    feed_of: int | None = None  # the follower's user id, for "Your Feed"
    before: str | None = None  # a keyset cursor: the page starts after it (paging.Cursor)


def _viewer_select(personal: bool, with_body: bool) -> Select[Any]:
    """Articles with their author and the viewer's flags (``viewer_id``).

    Lists show no body: ``with_body=False`` leaves it out of the rows, a
    fifth of a list query's bytes.
    """
    if personal:
        viewer = bindparam("viewer_id")
        favorited: ColumnElement[bool] = (
            exists()
            .where(FAVORITES.c.article_id == ARTICLES.c.id, FAVORITES.c.user_id == viewer)
            .label("favorited")
        )
        following: ColumnElement[bool] = (
            exists()
            .where(FOLLOWS.c.followed_id == ARTICLES.c.author_id, FOLLOWS.c.follower_id == viewer)
            .label("following")
        )
    else:
        favorited, following = false().label("favorited"), false().label("following")
    a = ARTICLES.c
    columns = [a.id, a.slug, a.title, a.description, a.tag_names, a.favorites_count]
    # The timestamps as the API prints them, but to the microsecond (the
    # cursor's precision): text the database writes (models.meta.utc_text).
    columns += [utc_text(a.created_at).label("created"), utc_text(a.updated_at).label("updated")]
    columns += [a.author_id]
    if with_body:
        columns.append(a.body)
    columns += [USERS.c.username, USERS.c.bio, USERS.c.image, favorited, following]
    return select(*columns).select_from(ARTICLES.join(USERS, USERS.c.id == a.author_id))


@lru_cache(maxsize=256)
def _page(
    dialect: str,
    names: tuple[str, ...],
    after: bool,
    lateral_feed: bool,
    personal: bool,
    first: int | None = None,
) -> tuple[Select[Any], Select[Any] | None]:
    """The page statement for one shape of list, and the counter query it
    carries as its ``total`` column (None: the list has no counter).

    Built once per shape (a few dozen exist), so SQLAlchemy's compiled
    cache finds it by identity instead of walking a new statement per
    request. Prepared on Postgres (myapp.db_prepared) where one plan fits
    every value: a tag's or an author's list walks that tag's or author's
    index range whatever the page, and so does the first page of the
    global list (``first``: its size, written in). A global page at an
    offset given as a parameter is not: a planner that does not know
    ``LIMIT``/``OFFSET`` plans for a tenth of all articles (a sequential
    scan), so those are planned with their values each time.
    """
    query = _viewer_select(personal, with_body=False)
    if first is not None:
        # The global list's first page (the home page's): the newest articles
        # joined to their authors, walking the index, its LIMIT written in.
        # The ids-first form below (paging.page_ids: offsets, cursors, the
        # filters) read each article twice and sorted the page again: ~0.07 ms
        # more of Postgres CPU for the list's hottest statement (pgbench, of
        # 0.56; docs/database.md).
        query = query.limit(literal_column(str(int(first)), Integer))
    else:
        query = query.where(ARTICLES.c.id.in_(paging.page_ids(names, after, lateral_feed)))
    query = query.order_by(ARTICLES.c.created_at.desc(), ARTICLES.c.id.desc())
    total = counts.maintained_query(dialect, names)
    if total is not None:
        query = query.add_columns(total.scalar_subquery().label("total"))
    if names in PREPARED_SHAPES or first is not None:
        query = query.execution_options(prepare=True)
    return query, total


@lru_cache(maxsize=16)
def _count(names: tuple[str, ...]) -> Select[Any]:
    return select(func.count(ARTICLES.c.id)).where(*paging.conditions(names))


@dataclass(frozen=True)
class ListQuery:
    """One list page's statement with its values, and how its count is known."""

    statement: Select[Any]
    values: dict[str, Any]
    total: Select[Any] | None  # the counter the statement carries as ``total``
    names: tuple[str, ...]
    count: int | None  # known before the page is read (the feed's counters)


def list_query(
    db: Reader, viewer: User | None, filters: Filters, limit: int, offset: int
) -> ListQuery:
    """The statement of one list page (see ``_page``) and its values."""
    dialect = dialect_name(db)
    names = paging.given(filters)
    values = paging.params(filters, limit, offset)
    count = None
    lateral_feed = False
    if names == ("feed_of",) and dialect == "postgresql":
        # The feed's counters also say how many authors it follows, which
        # picks its plan.
        count, feed_authors = counts.feed(db, filters.feed_of)  # type: ignore[arg-type]
        lateral_feed = feed_authors <= paging.FEED_LATERAL_MAX
    after = filters.before is not None
    # The first page of the global list (the home page): its size written in.
    first = None
    if not names and not after and offset == 0 and limit in FIRST_PAGE_SIZES:
        first = limit if dialect == "postgresql" else None
    query, total = _page(dialect, names, after, lateral_feed, bool(viewer), first)
    if viewer is not None:
        values["viewer_id"] = viewer.id
    return ListQuery(query, values, total, names, count)


def list_count(db: Reader, query: ListQuery, carried: int | None, empty: bool) -> int:
    """The list's count: ``carried`` by the page's rows (their ``total``),
    or asked for when the page is ``empty`` or the list has no counter."""
    count = query.count
    if query.total is not None:
        # A page past the end has no row to carry the count: ask the counter.
        count = (db.execute(query.total, query.values).scalar() or 0) if empty else carried
    if count is None:
        count = db.execute(_count(query.names), query.values).scalar() or 0
    return int(count)


def list_articles(
    db: Reader, viewer: User | None, filters: Filters, limit: int, offset: int
) -> tuple[Sequence[ArticleRow], int]:
    query = list_query(db, viewer, filters, limit, offset)
    rows = db_reads.rows(db, query.statement, query.values)
    carried = rows[0]["total"] if rows and query.total is not None else None
    return rows, list_count(db, query, carried, not rows)


def get_view(db: Reader, viewer: User | None, slug: str) -> ArticleRow:
    query = _single(bool(viewer))
    values: dict[str, Any] = {"slug": slug}
    if viewer is not None:
        values["viewer_id"] = viewer.id
    found = db_reads.rows(db, query, values)
    if not found:
        raise NotFound("article")
    return found[0]


@lru_cache(maxsize=2)
def _single(personal: bool) -> Select[Any]:
    query = _viewer_select(personal, with_body=True).where(ARTICLES.c.slug == bindparam("slug"))
    return query.execution_options(prepare=True)  # by the unique slug


def get_article(db: Session, slug: str) -> Article:
    article = db.scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise NotFound("article")
    return article


def _unique_slug(db: Session, title: str, current: Article | None = None) -> str:
    base = slugify(title, max_length=SLUG_MAX - 8, word_boundary=True) or "article"
    # Keep the slug when it is already this title's: ``base`` itself or
    # ``base`` plus one of our random suffixes. A bare prefix test would keep
    # "hello-world" for the new title "Hello".
    if current is not None and (
        current.slug == base or re.fullmatch(re.escape(base) + r"-[0-9a-f]{6}", current.slug)
    ):
        return current.slug
    slug = base
    # Duplicate titles are allowed: a short random suffix keeps slugs unique
    # without counting rows. A concurrent twin still hits the unique
    # constraint and pyramid_retry replays the request. A reserved slug
    # counts as taken: /api/articles/feed is the feed, not an article.
    while (
        slug in RESERVED_SLUGS
        or db.scalar(select(Article.id).where(Article.slug == slug)) is not None
    ):
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def _set_tags(db: Session, article: Article, names: list[str]) -> None:
    existing = {}
    if names:
        existing = {t.name: t for t in db.scalars(select(Tag).where(Tag.name.in_(names)))}
    links = []
    for position, name in enumerate(names):
        tag = existing.get(name)
        if tag is None:
            tag = Tag(name=name)
            db.add(tag)
        links.append(ArticleTag(tag=tag, position=position, created_at=article.created_at))
    article.tag_links = links
    # The copy that lists read (models.article): written with the links.
    article.tag_names = list(names)


def create(db: Session, author: User, data: dict[str, Any]) -> Article:
    errors: ErrorMap = {}
    title = rules.clean_title(errors, data.get("title", ""))
    description = rules.clean_description(errors, data.get("description", ""))
    body = rules.clean_body(errors, data.get("body", ""))
    tags = rules.clean_tags(errors, data.get("tagList") or [])
    rules.raise_if(errors)
    now = utcnow()
    article = Article(
        slug=_unique_slug(db, title),
        title=title,
        description=description,
        body=body,
        author=author,
        favorites_count=0,
        created_at=now,
        updated_at=now,
    )
    set_committed_value(article, "tag_links", [])
    db.add(article)
    _set_tags(db, article, tags)
    db.flush()
    return article


def check_author(article: Article, user: User) -> None:
    if article.author_id != user.id:
        raise Forbidden("article")


def load_tags(db: Session, article: Article) -> None:
    """Load ``article.tag_links`` (they are never lazy-loaded by accident)."""
    db.execute(
        select(Article)
        .where(Article.id == article.id)
        .options(selectinload(Article.tag_links).joinedload(ArticleTag.tag))
    ).all()


def edit(db: Session, article: Article, data: dict[str, Any]) -> Article:
    """Change the fields present in ``data``; the slug follows the title."""
    errors: ErrorMap = {}
    values: dict[str, Any] = {}
    if "title" in data:
        values["title"] = rules.clean_title(errors, data["title"])
    if "description" in data:
        values["description"] = rules.clean_description(errors, data["description"])
    if "body" in data:
        values["body"] = rules.clean_body(errors, data["body"])
    tags = rules.clean_tags(errors, data["tagList"]) if "tagList" in data else None
    rules.raise_if(errors)
    if "title" in values and values["title"] != article.title:
        article.slug = _unique_slug(db, values["title"], current=article)
    for key, value in values.items():
        setattr(article, key, value)
    if tags is not None and tags != list(article.tag_names):
        load_tags(db, article)
        _set_tags(db, article, tags)
    if values or tags is not None:
        article.updated_at = utcnow()
    db.flush()
    return article


def remove(db: Session, article: Article) -> None:
    # An ORM delete (not a bulk DELETE) so that the flush shows it to the
    # cache's purge collector; tags, favourites and comments go with it by
    # ON DELETE CASCADE.
    db.delete(article)
    db.flush()


def favorite(db: Session, user: User, article: Article) -> None:
    if db.get(Favorite, (user.id, article.id)) is not None:
        return
    db.add(Favorite(user_id=user.id, article_id=article.id))
    db.flush()
    _bump_favorites(db, article, +1)


def unfavorite(db: Session, user: User, article: Article) -> None:
    found = db.get(Favorite, (user.id, article.id))
    if found is not None:
        db.delete(found)
        db.flush()
        _bump_favorites(db, article, -1)


def _bump_favorites(db: Session, article: Article, delta: int) -> None:
    # One atomic UPDATE: concurrent favourites never lose a count.
    new_count = db.scalar(
        update(Article)
        .where(Article.id == article.id)
        .values(favorites_count=Article.favorites_count + delta)
        .returning(Article.favorites_count)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(article, "favorites_count", int(new_count or 0))


def all_tags(db: Reader) -> list[str]:
    """Tags in use, most used first."""
    # The counters know every tag's use: no count over all the links.
    names = counts.tags_by_use(db)
    if names is not None:
        return names
    uses = func.count(ArticleTag.article_id)
    query = (
        select(Tag.name).join(ArticleTag).group_by(Tag.id, Tag.name).order_by(uses.desc(), Tag.name)
    )
    return list(db.scalars(query))
