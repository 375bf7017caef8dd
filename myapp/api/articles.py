"""/articles, /articles/feed, /articles/{slug} and favourites."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import orjson
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from myapp import identities
from myapp.api.auth import optional_user, required_user
from myapp.api.validation import int_param, str_param, validated_body
from myapp.jobs.notify import notify_followers
from myapp.models import User
from myapp.resources import USER
from myapp.services import articles, paging, public
from myapp.services.articles import LIMIT_DEFAULT, LIMIT_MAX, Filters
from myapp.viewcache import shared_response

# A query string that may be copied into a header as it is (no ``<>;"``, spaces, raw bytes).
_PLAIN_QUERY = re.compile(r"[\w.~%+=&-]*", re.ASCII)

# The query parameters the list reads (any other bypasses the views cache).
LIST_PARAMS = ("tag", "author", "favorited", "limit", "offset", "before")


def _paging(request: Request) -> tuple[int, int]:
    limit = int_param(request, "limit", LIMIT_DEFAULT, minimum=1, maximum=LIMIT_MAX)
    offset = int_param(request, "offset", 0, minimum=0)
    return limit, offset


def _before(request: Request) -> str | None:
    """``?before=<cursor>``: keyset paging, an extension (myapp.services.paging)."""
    raw = str_param(request, "before")
    if raw is not None:
        paging.Cursor.decode(raw)  # a malformed cursor is a 422 here
    return raw


def _link_next(request: Request, page: public.Page, limit: int) -> None:
    """A full page links to the next one by cursor: ``Link: <...>; rel="next"``."""
    cursor = public.page_cursor(page) if len(page["ids"]) == limit else None
    if not cursor:
        return
    params = request.GET
    given = request.environ.get("QUERY_STRING", "")
    if "offset" in params or "before" in params or not _PLAIN_QUERY.fullmatch(given):
        query = [(k, v) for k, v in params.items() if k not in ("offset", "before")]
        next_query = urlencode([*query, ("before", cursor)])
    else:
        # The usual case: the client's own query string when it is plainly
        # encoded, and the cursor (digits and a dash: nothing to quote).
        # Re-encoding it cost more than the rest of the link.
        next_query = f"{given}&before={cursor}" if given else f"before={cursor}"
    request.response.headers["Link"] = f'<{request.path_url}?{next_query}>; rel="next"'


def _page(request: Request, viewer: User | None, page: public.Page) -> dict[str, Any]:
    articles: Any
    if viewer is None or page["personal"]:
        # The stored flags, or the viewer's own: the page's JSON as it was
        # written (by Postgres: myapp.services.pagejson) goes into the body.
        articles = orjson.Fragment(page["json"])
    else:
        token = identities.flags_token(request, viewer)
        session = identities.flags_session(request, viewer)
        entries = public.page_entries(page)
        articles = public.personalise(session, viewer, entries, request.cache, token)
    return {"articles": articles, "articlesCount": page["count"]}


def _single(
    request: Request, viewer: User | None, slug: str, fresh: bool = False
) -> dict[str, Any]:
    """One article for ``viewer``; ``fresh`` after a write, whose purge waits for the commit."""
    entry = public.article(request.dbreads, request.cache, slug, fresh=fresh)
    # After a write, the viewer's cached flags are purged only at commit: query them.
    cache = None if fresh else request.cache
    token = identities.flags_token(request, viewer)
    return {
        "article": public.personalise(
            identities.flags_session(request, viewer), viewer, [entry], cache, token
        )[0]
    }


@view_config(
    route_name="api.articles",
    request_method="GET",
    renderer="json",
    decorator=shared_response("lists", "people", params=LIST_PARAMS),
)
def list_articles(request: Request) -> dict[str, Any]:
    filters = Filters(
        tag=str_param(request, "tag"),
        author=str_param(request, "author"),
        favorited=str_param(request, "favorited"),
        before=_before(request),
    )
    viewer = optional_user(request)
    limit, offset = _paging(request)
    page = public.article_page(request.dbreads, request.cache, filters, limit, offset)
    _link_next(request, page, limit)
    return _page(request, viewer, page)


@view_config(route_name="api.feed", request_method="GET", renderer="json", permission=USER)
def feed(request: Request) -> dict[str, Any]:
    viewer = required_user(request)
    limit, offset = _paging(request)
    page = public.feed_page(request.dbsession, viewer, limit, offset, _before(request))
    _link_next(request, page, limit)
    return _page(request, viewer, page)


@view_config(route_name="api.articles", request_method="POST", renderer="json", permission=USER)
def create(request: Request) -> dict[str, Any]:
    author = required_user(request)
    data = validated_body(request, "NewArticleRequest", "article")
    article = articles.create(request.dbsession, author, data)
    request.dispatch(notify_followers, article.id, owner=author)
    request.response.status = 201
    return _single(request, author, article.slug, fresh=True)


@view_config(
    route_name="api.article",
    request_method="GET",
    renderer="json",
    decorator=shared_response("lists", "people"),
)
def read(request: Request) -> dict[str, Any]:
    return _single(request, optional_user(request), request.matchdict["slug"])


@view_config(route_name="api.article", request_method="PUT", renderer="json", permission=USER)
def update(request: Request) -> dict[str, Any]:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.check_author(article, user)
    data = validated_body(request, "UpdateArticleRequest", "article")
    articles.edit(request.dbsession, article, data)
    return _single(request, user, article.slug, fresh=True)


@view_config(route_name="api.article", request_method="DELETE", permission=USER)
def delete(request: Request) -> Response:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.check_author(article, user)
    articles.remove(request.dbsession, article)
    return Response(status=204)


@view_config(route_name="api.favorite", request_method="POST", renderer="json", permission=USER)
def favorite(request: Request) -> dict[str, Any]:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.favorite(request.dbsession, user, article)
    return _single(request, user, article.slug, fresh=True)


@view_config(route_name="api.favorite", request_method="DELETE", renderer="json", permission=USER)
def unfavorite(request: Request) -> dict[str, Any]:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.unfavorite(request.dbsession, user, article)
    return _single(request, user, article.slug, fresh=True)
