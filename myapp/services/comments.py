"""Comments on an article: the public, cached list and the writes.

A comment list is read far more often than written, and every RealWorld
client asks for it with each article. It is cached per article (region
``comments``) as the API shows it to anyone logged out (``following``
false), with each comment's author id for a viewer's flags. The entry
records the ``people`` generation it was built under (every comment embeds
its author's profile, as articles do): a rename or new bio makes it stale.
Adding or deleting a comment purges the article's entry after the commit
(myapp.services.public.collect), so the writes go through the ORM's unit of
work, which the flush hook sees; so does any write to the article (its
deletion deletes the comments in the database). A reader that read just
before a commit and stores just after its purge — or read a replica that
had not replayed the commit yet (myapp.db_replicas) — leaves a stale list
for at most the region's expiry (5 minutes), as with the other purged
regions; so do comments written by a release that predates this cache,
during a rolling deploy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from myapp import db_reads
from myapp.cache import Cache
from myapp.db_reads import Reader
from myapp.models import Article, Comment, User
from myapp.models.meta import utc_text, utcnow
from myapp.services import public, rules
from myapp.services.errors import ErrorMap, Forbidden, NotFound

Data = dict[str, Any]
REGION = "comments"

_COMMENTS = Comment.__table__
_USERS = User.__table__


def _list_statement() -> Select[Any]:
    c, u = _COMMENTS.c, _USERS.c
    return (
        select(
            c.id,
            c.body,
            utc_text(c.created_at).label("created"),
            utc_text(c.updated_at).label("updated"),
            c.author_id,
            u.username,
            u.bio,
            u.image,
        )
        .join_from(_COMMENTS, _USERS, u.id == c.author_id)
        .where(c.article_id == bindparam("article_id"))
        # ix_comments_article_id_created_at, newest first.
        .order_by(c.created_at.desc(), c.id.desc())
    )


LIST = _list_statement()


def _entry(row: Data) -> Data:
    return {
        "author_id": row["author_id"],
        "comment": {
            "id": row["id"],
            "createdAt": row["created"][:23] + "Z",
            "updatedAt": row["updated"][:23] + "Z",
            "body": row["body"],
            "author": {
                "username": row["username"],
                "bio": row["bio"],
                "image": row["image"],
                "following": False,
            },
        },
    }


def read(db: Reader, article_id: int) -> list[Data]:
    """The article's comments, newest first, in one statement (uncached)."""
    return [_entry(row) for row in db_reads.rows(db, LIST, {"article_id": article_id})]


def public_list(db: Reader, cache: Cache, article_id: int) -> list[Data]:
    """The article's comments as anyone logged out sees them, cached: each
    ``{"author_id", "comment"}`` (the API's representation)."""
    people = cache.generation("people")

    def load() -> Data:
        return {"people": people, "entries": read(db, article_id)}

    cached = cache.get_or_create(
        REGION, str(article_id), load, valid=lambda value: value["people"] == people
    )
    return cached["entries"]


def personalise(
    db: Session | None,
    viewer: User | None,
    article_id: int,
    entries: list[Data],
    cache: Cache | None = None,
    token: str | None = None,
) -> list[Data]:
    """The comments with ``viewer``'s ``following`` flags (their cached
    flags, myapp.services.public.flags: no query on a warm read); anyone
    logged out gets the cached representations themselves."""
    if viewer is None or not entries:
        return [entry["comment"] for entry in entries]
    if db is None:
        raise ValueError("a viewer's flags are read from the database: db is required")
    pairs = [{"id": article_id, "author_id": entry["author_id"]} for entry in entries]
    _favorited, following = public.flags(db, viewer, pairs, cache, token)
    result = []
    for entry in entries:
        data = entry["comment"]
        author = {**data["author"], "following": entry["author_id"] in following}
        result.append({**data, "author": author})
    return result


def add(db: Session, author: User, article: Article, body: str) -> Comment:
    errors: ErrorMap = {}
    body = rules.clean_comment(errors, body)
    rules.raise_if(errors)
    now = utcnow()
    comment = Comment(
        article_id=article.id, author=author, body=body, created_at=now, updated_at=now
    )
    db.add(comment)
    db.flush()
    return comment


def remove(db: Session, user: User, article: Article, comment_id: int) -> None:
    comment = db.scalar(
        select(Comment).where(Comment.id == comment_id, Comment.article_id == article.id)
    )
    if comment is None:
        raise NotFound("comment")
    if user.id != comment.author_id:
        raise Forbidden("comment")
    # Through the unit of work, not a bulk DELETE: the flush hook purges the list.
    db.delete(comment)
    db.flush()
