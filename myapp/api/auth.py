"""Who is calling the API."""

from __future__ import annotations

from pyramid.request import Request

from myapp.api.errors import unauthorized
from myapp.models import User


def optional_user(request: Request) -> User | None:
    """The caller, or None when anonymous; a bad token is still a 401."""
    user = request.identity
    if user is None and getattr(request, "token_error", None):
        raise unauthorized(request)
    return user


def required_user(request: Request) -> User:
    user = request.identity
    if user is None:
        raise unauthorized(request)
    return user
