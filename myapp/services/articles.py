"""Articles: lists and feeds, reads, writes, tags and favourites.

Every list is one query for the page (author joined, the viewer's
``favorited``/``following`` flags as EXISTS columns, the tag names
aggregated into one column) and one count: two queries whatever the page
size. The page's ids come first, from the index that serves the list
(myapp.services.paging); the count from the maintained counters
(myapp.services.counts).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from slugify import slugify
from sqlalchemy import ColumnElement, Select, exists, false, func, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, contains_eager, defer, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from myapp.models import Article, ArticleTag, Favorite, Follow, Tag, User
from myapp.models.article import SLUG_MAX
from myapp.models.meta import utcnow
from myapp.services import counts, paging, rules
from myapp.services.errors import ErrorMap, Forbidden, NotFound

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Slugs that /api/articles/{slug} cannot reach because a fixed route wins.
RESERVED_SLUGS = frozenset({"feed"})


@dataclass(frozen=True)
class ArticleView:
    """An article as one viewer sees it, with its tag names in order."""

    article: Article
    favorited: bool
    following: bool
    tags: list[str]


@dataclass(frozen=True)
class Filters:
    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    feed_of: int | None = None  # the follower's user id, for "Your Feed"
    before: str | None = None  # a keyset cursor: the page starts after it (paging.Cursor)


def _tag_names(dialect: str) -> ColumnElement[Any]:
    """The article's tag names in the author's order, as one column.

    Aggregated in the page query itself (instead of a second query per page):
    Postgres' ``array_agg(... ORDER BY position)``, SQLite's
    ``json_group_array`` over an ordered subquery.
    """
    if dialect == "postgresql":
        return (
            select(func.array_agg(aggregate_order_by(Tag.name, ArticleTag.position)))
            .select_from(ArticleTag)
            .join(Tag, Tag.id == ArticleTag.tag_id)
            .where(ArticleTag.article_id == Article.id)
            .scalar_subquery()
        )
    ordered = (
        select(Tag.name.label("name"))
        .select_from(ArticleTag)
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id == Article.id)
        .order_by(ArticleTag.position)
        .correlate(Article)
        .subquery()
    )
    return select(func.json_group_array(ordered.c.name)).scalar_subquery()


def _tags_value(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value)


def _viewer_select(db: Session, viewer: User | None, with_body: bool = True) -> Select[Any]:
    """Articles with their author, tags and ``viewer``'s flags, in one statement.

    Lists show no body: ``with_body=False`` leaves it (and the author's
    private columns) out of the rows, a fifth of a list query's bytes.
    """
    if viewer is None:
        favorited: ColumnElement[bool] = false().label("favorited")
        following: ColumnElement[bool] = false().label("following")
    else:
        favorited = (
            exists()
            .where(Favorite.article_id == Article.id, Favorite.user_id == viewer.id)
            .label("favorited")
        )
        following = (
            exists()
            .where(Follow.followed_id == Article.author_id, Follow.follower_id == viewer.id)
            .label("following")
        )
    tags = _tag_names(db.get_bind().dialect.name).label("tag_names")
    author = contains_eager(Article.author)
    options = [author]
    if not with_body:
        options = [
            author.load_only(User.username, User.bio, User.image),
            defer(Article.body),
        ]
    return select(Article, favorited, following, tags).join(Article.author).options(*options)


def _view(row: Any) -> ArticleView:
    return ArticleView(row[0], bool(row[1]), bool(row[2]), _tags_value(row[3]))


def list_articles(
    db: Session, viewer: User | None, filters: Filters, limit: int, offset: int
) -> tuple[list[ArticleView], int]:
    dialect = db.get_bind().dialect.name
    # Maintained counters where they exist (myapp.services.counts says why);
    # the feed's also say how many authors it follows, which picks its plan.
    feed_authors = None
    if (
        filters.feed_of is not None
        and paging.only(filters) == "feed_of"
        and dialect == "postgresql"
    ):
        count, feed_authors = counts.feed(db, filters.feed_of)
    else:
        count = counts.maintained(db, filters)
    ids = paging.page_ids(dialect, filters, limit, offset, feed_authors)
    page = (
        _viewer_select(db, viewer, with_body=False)
        .where(Article.id.in_(ids))
        .order_by(Article.created_at.desc(), Article.id.desc())
    )
    views = [_view(row) for row in db.execute(page)]
    if count is None:
        count_query = select(func.count(Article.id)).where(*paging.conditions(filters))
        count = int(db.scalar(count_query) or 0)
    return views, count


def get_view(db: Session, viewer: User | None, slug: str) -> ArticleView:
    row = db.execute(_viewer_select(db, viewer).where(Article.slug == slug)).first()
    if row is None:
        raise NotFound("article")
    return _view(row)


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
    load_tags(db, article)
    if "title" in values and values["title"] != article.title:
        article.slug = _unique_slug(db, values["title"], current=article)
    for key, value in values.items():
        setattr(article, key, value)
    if tags is not None and tags != article.tag_list:
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


def all_tags(db: Session) -> list[str]:
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
