"""The home page: Global Feed, Your Feed (``?feed=following``), tag feeds."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.pages import forms, reads
from myapp.services.articles import Filters
from myapp.viewcache import shared_response

TEMPLATE = "myapp:templates/home.jinja2"


def _home(request: Request, page: reads.Page, tab: str, tag: str | None = None) -> dict[str, Any]:
    return {
        "nav": "home",
        "page": page,
        "tab": tab,
        "tag": tag,
        "tags": reads.popular_tags(request),
    }


@view_config(
    route_name="home",
    request_method="GET",
    renderer=TEMPLATE,
    decorator=shared_response("lists", "people", params=("page", "feed")),
)
def home(request: Request) -> Any:
    number = reads.page_number(request)
    if request.GET.get("feed") == "following":
        viewer = request.identity
        if viewer is None:
            return forms.login_redirect(request, request.path_qs)
        return _home(request, reads.feed(request, viewer, number), "feed")
    return _home(request, reads.article_list(request, Filters(), number), "global")


@view_config(
    route_name="tag",
    request_method="GET",
    renderer=TEMPLATE,
    decorator=shared_response("lists", "people", params=("page",)),
)
def tag(request: Request) -> dict[str, Any]:
    name = request.matchdict["tag"]
    page = reads.article_list(request, Filters(tag=name), reads.page_number(request))
    return _home(request, page, "tag", name)
