"""Comments on an article."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from myapp.models import Article, Comment, User
from myapp.models.meta import utcnow
from myapp.services import rules
from myapp.services.errors import ErrorMap, Forbidden, NotFound


def for_article(db: Session, article: Article) -> list[Comment]:
    """Newest first, each with its author, in one query."""
    query = (
        select(Comment)
        .where(Comment.article_id == article.id)
        .options(joinedload(Comment.author))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )
    return list(db.scalars(query))


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
    db.execute(delete(Comment).where(Comment.id == comment.id))
