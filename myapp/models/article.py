"""Articles, their tags, and favourites."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from myapp.models.meta import Base, BigId, StringList, UTCDateTime, utcnow
from myapp.models.user import User

SLUG_MAX = 255
TITLE_MAX = 255
DESCRIPTION_MAX = 1024
BODY_MAX = 100_000
TAG_MAX = 64
TAGS_PER_ARTICLE_MAX = 20


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        # Newest first, for the global list (id breaks ties inside one instant).
        Index("ix_articles_created_at_id", "created_at", "id"),
        # An author's articles newest first: profile pages and the feed.
        Index("ix_articles_author_id_created_at_id", "author_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    # Maintained by atomic UPDATEs on (un)favourite, so lists never count rows.
    favorites_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The tag names in the author's order, a copy of ``tag_links`` written with
    # them (myapp.services.articles._set_tags; on Postgres triggers also keep
    # it, alembic revision 0004): a list page reads them with the article,
    # instead of aggregating every row's links (that sub-select was 0.66 of
    # the page query's 0.94 ms). ``article_tags`` stays the source for tag
    # filters, counters and popularity. The server default ('{}'; '[]' on
    # SQLite) lets a release that does not know the column insert articles.
    tag_names: Mapped[list[str]] = mapped_column(
        StringList, default=list, server_default=text("'{}'")
    )

    author: Mapped[User] = relationship(lazy="raise_on_sql")
    tag_links: Mapped[list[ArticleTag]] = relationship(
        order_by="ArticleTag.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise_on_sql",
    )

    def __repr__(self) -> str:
        return f"<Article {self.id} {self.slug!r}>"


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(TAG_MAX), unique=True)


class ArticleTag(Base):
    """An article's tag, in the order the author gave them."""

    __tablename__ = "article_tags"
    __table_args__ = (
        # "this tag's articles, newest first": tag pages and ?tag= filters
        # read the first entries of one index range (myapp.services.paging).
        Index("ix_article_tags_tag_id_created_at_article_id", "tag_id", "created_at", "article_id"),
    )

    article_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The article's created_at, copied (it never changes) so that the index
    # above is in list order. Set by the services; on Postgres a trigger
    # fills it in for any other insert (alembic revision 0003).
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tag: Mapped[Tag] = relationship(lazy="joined", innerjoin=True)


class Favorite(Base):
    """``user`` favourited ``article``; the primary key serves ?favorited=."""

    __tablename__ = "favorites"
    __table_args__ = (Index("ix_favorites_article_id", "article_id"),)

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
