"""/users, /users/login, /user."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.api import serialize
from myapp.api.auth import required_user
from myapp.api.errors import ApiError
from myapp.api.validation import validated_body
from myapp.models import User
from myapp.resources import USER
from myapp.services import users
from myapp.services.errors import Invalid

UPDATABLE = {"email", "username", "password", "bio", "image"}


def _user_response(request: Request, user: User) -> dict[str, Any]:
    return serialize.user(user, request.registry["tokens"].issue(user.id))


@view_config(route_name="api.users", request_method="POST", renderer="json")
def register(request: Request) -> dict[str, Any]:
    data = validated_body(request, "NewUserRequest", "user")
    user = users.register(
        request.dbsession,
        request.registry["passwords"],
        data["username"],
        data["email"],
        data["password"],
    )
    request.response.status = 201
    return _user_response(request, user)


@view_config(route_name="api.login", request_method="POST", renderer="json")
def login(request: Request) -> dict[str, Any]:
    data = validated_body(request, "LoginUserRequest", "user")
    user = users.authenticate(
        request.dbsession, request.registry["passwords"], data["email"], data["password"]
    )
    if user is None:
        raise ApiError(401, {"credentials": ["invalid"]})
    return _user_response(request, user)


@view_config(route_name="api.user", request_method="GET", renderer="json", permission=USER)
def current(request: Request) -> dict[str, Any]:
    return _user_response(request, required_user(request))


@view_config(route_name="api.user", request_method="PUT", renderer="json", permission=USER)
def update(request: Request) -> dict[str, Any]:
    user = required_user(request)
    data = validated_body(request, "UpdateUserRequest", "user")
    # The spec: "At least **one** field is required."
    if not UPDATABLE & data.keys():
        raise Invalid({"user": ["must contain at least one of: " + ", ".join(sorted(UPDATABLE))]})
    users.update(request.dbsession, request.registry["passwords"], user, data)
    return _user_response(request, user)
