"""How many articles each list has, kept by the database itself.

``articlesCount`` of the global list, a tag, an author or a user's
favourites is one row here instead of a count over up to a million rows.
Postgres triggers (alembic revision 0003) add and subtract as articles,
tag links and favourites come and go, in the writer's own transaction, so
a count is exact as soon as the write commits; myapp.services.counts reads
them. SQLite (the embedded development database) has the table but no
triggers: counts are computed there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from myapp.models.meta import Base, BigId

SCOPE_MAX = 16


class ArticleCount(Base):
    """``articles`` articles are in the list ``scope`` (all, tag, author, favorited) ``key``."""

    __tablename__ = "article_counts"

    scope: Mapped[str] = mapped_column(String(SCOPE_MAX), primary_key=True)
    # 0 for "all"; else the tag's or user's id (no foreign key: a deleted
    # tag or user leaves a harmless row, and the triggers stay simple).
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    articles: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
