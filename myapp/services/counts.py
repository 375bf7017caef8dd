"""``articlesCount`` without counting: the maintained list counters.

Why maintained counters, and not the alternatives (docs/database.md):

* ``count(*)`` of the global list is an index-only scan of every article:
  ~100 ms at a million, on every request the cache does not answer — and
  the feed is personal, so it is never cached at all;
* caching the count (the list page cache holds it for 60 s) helps only
  when the cache is on and warm; every new offset, tag or author is a miss
  that counts again, and the benchmarks run with the cache off too;
* a capped count ("10,000+") changes the API: ``articlesCount`` is an
  integer that clients use to draw page links.

So the database keeps the numbers (table ``article_counts``, triggers in
alembic revision 0003, exact as of the writer's commit) and a list reads
one row — or, for the feed, sums one row per followed author. A request
that combines filters (``?tag=x&author=y``) still counts, but one filter
already bounds that count by the smallest of the lists, through indexes.

Writers pay one upsert per statement: the "all" row is a hot row that
concurrent publishers update in turn (held until their commit, a few
milliseconds); for a blog, publishing is rare next to reading.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from myapp.db_reads import Reader, dialect_name
from myapp.models import ArticleCount, Follow, Tag, User
from myapp.services import paging

if TYPE_CHECKING:
    from myapp.services.articles import Filters

TABLE = ArticleCount.__tablename__
COUNTS = ArticleCount.__table__
TAGS = Tag.__table__
ALL, TAG, AUTHOR, FAVORITED = "all", "tag", "author", "favorited"

# Recomputes every counter from the rows (the seeder after a bulk load; the
# migration that introduced the counters runs the same statement).
RECOUNT = f"""
DELETE FROM {TABLE};
INSERT INTO {TABLE} (scope, key, articles)
SELECT '{ALL}', 0, count(*) FROM articles
UNION ALL SELECT '{AUTHOR}', author_id, count(*) FROM articles GROUP BY author_id
UNION ALL SELECT '{TAG}', tag_id, count(*) FROM article_tags GROUP BY tag_id
UNION ALL SELECT '{FAVORITED}', user_id, count(*) FROM favorites GROUP BY user_id;
"""


def recount(conn: Connection) -> None:
    conn.exec_driver_sql(RECOUNT)


def maintained_query(dialect: str, names: tuple[str, ...]) -> Select[tuple[int]] | None:
    """The counter of the list filtered by ``names`` (bind parameters named
    after the filters), or None where none is kept: on SQLite (no
    triggers), for the feed (:func:`feed`) and for combined filters."""
    if dialect != "postgresql" or len(names) > 1 or names == ("feed_of",):
        return None
    count = COUNTS.c.articles
    if names == ("tag",):
        return (
            select(count)
            .join(TAGS, TAGS.c.id == COUNTS.c.key)
            .where(COUNTS.c.scope == TAG, TAGS.c.name == bindparam("tag"))
        )
    if names == ("author",):
        return _by_user(AUTHOR, "author")
    if names == ("favorited",):
        return _by_user(FAVORITED, "favorited")
    return select(count).where(COUNTS.c.scope == ALL, COUNTS.c.key == 0)


def maintained(db: Session, filters: Filters) -> int | None:
    """The list's article count from the counters; None when it is not kept."""
    names, dialect = paging.given(filters), dialect_name(db)
    if names == ("feed_of",) and dialect == "postgresql":
        return feed(db, filters.feed_of)[0]  # type: ignore[arg-type]
    query = maintained_query(dialect, names)
    if query is None:
        return None
    values = {name: getattr(filters, name) for name in names}
    return int(db.execute(query, values).scalar() or 0)


def feed(db: Session, follower_id: int) -> tuple[int, int]:
    """(articles in the feed, followed authors who wrote any): one query.

    The second number lets myapp.services.paging pick the feed's plan.
    """
    followed = select(Follow.followed_id).where(Follow.follower_id == follower_id)
    query = select(func.coalesce(func.sum(ArticleCount.articles), 0), func.count()).where(
        ArticleCount.scope == AUTHOR, ArticleCount.key.in_(followed), ArticleCount.articles > 0
    )
    articles, authors = db.execute(query).one()
    return int(articles), int(authors)


def tags_by_use(db: Reader) -> list[str] | None:
    """Tags in use, most used first (None where counters are not kept)."""
    if dialect_name(db) != "postgresql":
        return None
    return db.scalar(_tags_by_use()) or []  # an aggregate over no rows is null


@lru_cache(maxsize=1)
def _tags_by_use() -> Select[tuple[list[str]]]:
    # Built once: building it from the ORM attributes cost a tenth of an
    # uncached home page's CPU. One row, the names as one text[] (psycopg2
    # reads it into a list in C): read as rows, the few hundred tags of a
    # big site cost SQLAlchemy ~0.5 ms of CPU to iterate.
    by_use = aggregate_order_by(Tag.name, ArticleCount.articles.desc(), Tag.name)
    return (
        select(func.array_agg(by_use, type_=NullType()))
        .select_from(Tag)
        .join(ArticleCount, (ArticleCount.key == Tag.id) & (ArticleCount.scope == TAG))
        .where(ArticleCount.articles > 0)
    )


def _by_user(scope: str, param: str) -> Select[tuple[int]]:
    users = User.__table__
    return (
        select(COUNTS.c.articles)
        .join(users, users.c.id == COUNTS.c.key)
        .where(COUNTS.c.scope == scope, users.c.username == bindparam(param))
    )


def exact(conn: Connection) -> dict[tuple[str, int], int]:
    """Every counter computed from the rows (for checks: tests, the seeder's report)."""
    rows = conn.execute(
        text(
            f"SELECT '{ALL}', 0, count(*) FROM articles "
            f"UNION ALL SELECT '{AUTHOR}', author_id, count(*) FROM articles GROUP BY 2 "
            f"UNION ALL SELECT '{TAG}', tag_id, count(*) FROM article_tags GROUP BY 2 "
            f"UNION ALL SELECT '{FAVORITED}', user_id, count(*) FROM favorites GROUP BY 2"
        )
    )
    return {(scope, key): n for scope, key, n in rows if n}


def stored(conn: Connection) -> dict[tuple[str, int], int]:
    """Every non-zero counter as stored."""
    rows = conn.execute(text(f"SELECT scope, key, articles FROM {TABLE} WHERE articles <> 0"))
    return {(scope, key): n for scope, key, n in rows}
