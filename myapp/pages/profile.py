"""Profiles: a user's articles, their favourites, and following them."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.pages import forms, reads
from myapp.resources import USER
from myapp.services import users
from myapp.services.articles import Filters

TEMPLATE = "myapp:templates/profile.jinja2"


def _page(request: Request, tab: str) -> dict[str, Any]:
    username = request.matchdict["username"]
    profile = reads.profile(request, username)
    filters = Filters(favorited=username) if tab == "favorites" else Filters(author=username)
    page = reads.article_list(request, filters, reads.page_number(request))
    viewer = request.identity
    is_self = viewer is not None and viewer.username == profile["username"]
    return {
        "nav": "profile" if is_self else None,
        "profile": profile,
        "is_self": is_self,
        "tab": tab,
        "page": page,
    }


@view_config(route_name="profile", request_method="GET", renderer=TEMPLATE)
def articles(request: Request) -> dict[str, Any]:
    return _page(request, "articles")


@view_config(route_name="profile.favorites", request_method="GET", renderer=TEMPLATE)
def favorites(request: Request) -> dict[str, Any]:
    return _page(request, "favorites")


def _profile_url(request: Request) -> str:
    return request.route_path("profile", username=request.matchdict["username"])


@view_config(route_name="profile.follow", request_method="POST", permission=USER)
def follow(request: Request) -> Any:
    user = users.by_username(request.dbsession, request.matchdict["username"])
    users.follow(request.dbsession, request.identity, user)
    return forms.back(request, _profile_url(request))


@view_config(route_name="profile.unfollow", request_method="POST", permission=USER)
def unfollow(request: Request) -> Any:
    user = users.by_username(request.dbsession, request.matchdict["username"])
    users.unfollow(request.dbsession, request.identity, user)
    return forms.back(request, _profile_url(request))
