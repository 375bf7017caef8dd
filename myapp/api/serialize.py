"""JSON shapes of the RealWorld API that are not cached representations
(those are in myapp.services.public)."""

from __future__ import annotations

from typing import Any

from myapp.models import Comment, User
from myapp.services.public import profile_data, timestamp


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


def comment_body(comment: Comment, following: bool) -> dict[str, Any]:
    return {
        "id": comment.id,
        "createdAt": timestamp(comment.created_at),
        "updatedAt": timestamp(comment.updated_at),
        "body": comment.body,
        "author": profile_data(comment.author, following),
    }
