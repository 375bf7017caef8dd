"""Your settings: picture, username, bio, email and (optionally) a new password."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.security import remember
from pyramid.view import view_config

from myapp.models import User
from myapp.pages import forms
from myapp.resources import USER
from myapp.services import users
from myapp.services.errors import DomainError

TEMPLATE = "myapp:templates/settings.jinja2"
FIELDS = ("image", "username", "bio", "email")


def _values(user: User) -> dict[str, str]:
    return {
        "image": user.image or "",
        "username": user.username,
        "bio": user.bio or "",
        "email": user.email,
    }


@view_config(route_name="settings", request_method="GET", renderer=TEMPLATE, permission=USER)
def show(request: Request) -> dict[str, Any]:
    return {"nav": "settings", "values": _values(request.identity), "errors": []}


@view_config(route_name="settings", request_method="POST", renderer=TEMPLATE, permission=USER)
def update(request: Request) -> Any:
    user: User = request.identity
    changes: dict[str, Any] = {name: forms.text(request, name) for name in FIELDS}
    password = forms.text(request, "password")
    if password:
        # An empty "New Password" means "keep the current one".
        changes["password"] = password
    try:
        users.update(request.dbsession, request.registry["passwords"], user, changes)
    except DomainError as exc:
        request.response.status = 422
        return {"nav": "settings", "values": changes, "errors": forms.messages(exc.errors)}
    if password:
        # A new password logs out every other browser (their sessions carry
        # the old password's fingerprint); this one gets a fresh session.
        remember(request, user.id, user=user)
    return forms.redirect(request.route_path("profile", username=user.username))
