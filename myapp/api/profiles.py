"""/profiles/{username} and following."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.api.auth import optional_user, required_user
from myapp.resources import USER
from myapp.services import public, users
from myapp.services.public import profile_data
from myapp.viewcache import shared_response


@view_config(
    route_name="api.profile",
    request_method="GET",
    renderer="json",
    decorator=shared_response("people"),
)
def profile(request: Request) -> dict[str, Any]:
    viewer = optional_user(request)
    entry = public.profile(request.dbsession, request.cache, request.matchdict["username"])
    following = entry["id"] in users.following_ids(request.dbsession, viewer, [entry["id"]])
    return {"profile": {**entry["profile"], "following": following}}


@view_config(route_name="api.follow", request_method="POST", renderer="json", permission=USER)
def follow(request: Request) -> dict[str, Any]:
    viewer = required_user(request)
    user = users.by_username(request.dbsession, request.matchdict["username"])
    users.follow(request.dbsession, viewer, user)
    return {"profile": profile_data(user, True)}


@view_config(route_name="api.follow", request_method="DELETE", renderer="json", permission=USER)
def unfollow(request: Request) -> dict[str, Any]:
    viewer = required_user(request)
    user = users.by_username(request.dbsession, request.matchdict["username"])
    users.unfollow(request.dbsession, viewer, user)
    return {"profile": profile_data(user, False)}
