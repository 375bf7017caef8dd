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

from typing import TYPE_CHECKING

from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from myapp.models import ArticleCount, Follow, Tag, User

if TYPE_CHECKING:
    from myapp.services.articles import Filters

TABLE = ArticleCount.__tablename__
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


def maintained(db: Session, filters: Filters) -> int | None:
    """The list's article count from the counters; None when it is not kept.

    Not kept: on SQLite (no triggers), and for combined filters.
    """
    if db.get_bind().dialect.name != "postgresql":
        return None
    given = [
        value
        for value in (filters.tag, filters.author, filters.favorited, filters.feed_of)
        if value is not None
    ]
    if len(given) > 1:
        return None
    count = ArticleCount.articles
    if filters.tag is not None:
        query = (
            select(count)
            .join(Tag, Tag.id == ArticleCount.key)
            .where(ArticleCount.scope == TAG, Tag.name == filters.tag)
        )
    elif filters.author is not None:
        query = _by_user(AUTHOR, filters.author)
    elif filters.favorited is not None:
        query = _by_user(FAVORITED, filters.favorited)
    elif filters.feed_of is not None:
        return feed(db, filters.feed_of)[0]
    else:
        query = select(count).where(ArticleCount.scope == ALL, ArticleCount.key == 0)
    return int(db.scalar(query) or 0)


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


def tags_by_use(db: Session) -> list[str] | None:
    """Tags in use, most used first (None where counters are not kept)."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    query = (
        select(Tag.name)
        .join(ArticleCount, (ArticleCount.key == Tag.id) & (ArticleCount.scope == TAG))
        .where(ArticleCount.articles > 0)
        .order_by(ArticleCount.articles.desc(), Tag.name)
    )
    return list(db.scalars(query))


def _by_user(scope: str, username: str) -> Select[tuple[int]]:
    return (
        select(ArticleCount.articles)
        .join(User, User.id == ArticleCount.key)
        .where(ArticleCount.scope == scope, User.username == username)
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
