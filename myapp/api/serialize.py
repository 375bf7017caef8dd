"""JSON shapes of the RealWorld API (see openapi.yml's components)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from myapp.models import Comment, User
from myapp.services.articles import ArticleView


def timestamp(value: datetime) -> str:
    """``2016-02-18T03:22:56.637Z``: UTC, milliseconds, as the spec shows."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def user(user: User, token: str) -> dict[str, Any]:
    return {
        "user": {
            "email": user.email,
            "token": token,
            "username": user.username,
            "bio": user.bio,
            "image": user.image,
        }
    }


def profile_body(user: User, following: bool) -> dict[str, Any]:
    return {
        "username": user.username,
        "bio": user.bio,
        "image": user.image,
        "following": following,
    }


def article_body(view: ArticleView, with_body: bool = True) -> dict[str, Any]:
    article = view.article
    data: dict[str, Any] = {
        "slug": article.slug,
        "title": article.title,
        "description": article.description,
    }
    if with_body:
        data["body"] = article.body
    data.update(
        {
            "tagList": article.tag_list,
            "createdAt": timestamp(article.created_at),
            "updatedAt": timestamp(article.updated_at),
            "favorited": view.favorited,
            "favoritesCount": article.favorites_count,
            "author": profile_body(article.author, view.following),
        }
    )
    return data


def comment_body(comment: Comment, following: bool) -> dict[str, Any]:
    return {
        "id": comment.id,
        "createdAt": timestamp(comment.created_at),
        "updatedAt": timestamp(comment.updated_at),
        "body": comment.body,
        "author": profile_body(comment.author, following),
    }
