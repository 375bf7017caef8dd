"""An article: its page, comments, favourites, and deleting it.

Every action is a plain form post that redirects back (POST-redirect-GET),
so the page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.pages import forms, reads
from myapp.resources import USER
from myapp.services import articles, comments
from myapp.services.errors import DomainError, NotFound

TEMPLATE = "myapp:templates/article.jinja2"
MAX_ID = 2**63 - 1


def _page(request: Request, comment_form: dict[str, Any] | None = None) -> dict[str, Any]:
    view = reads.article(request, request.matchdict["slug"])
    data = view.article
    viewer = request.identity
    return {
        "article": data,
        "body_html": view.body_html,
        "comments": view.comments,
        "is_author": viewer is not None and viewer.username == data["author"]["username"],
        "comment_form": comment_form or {"body": "", "errors": []},
    }


def _article_url(request: Request) -> str:
    return request.route_path("article", slug=request.matchdict["slug"])


@view_config(route_name="article", request_method="GET", renderer=TEMPLATE)
def show(request: Request) -> dict[str, Any]:
    return _page(request)


@view_config(route_name="article.delete", request_method="POST", permission=USER)
def delete(request: Request) -> Any:
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.check_author(article, request.identity)
    articles.remove(request.dbsession, article)
    return forms.redirect(request.route_path("home"))


@view_config(route_name="article.favorite", request_method="POST", permission=USER)
def favorite(request: Request) -> Any:
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.favorite(request.dbsession, request.identity, article)
    return forms.back(request, _article_url(request))


@view_config(route_name="article.unfavorite", request_method="POST", permission=USER)
def unfavorite(request: Request) -> Any:
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.unfavorite(request.dbsession, request.identity, article)
    return forms.back(request, _article_url(request))


@view_config(route_name="comments", request_method="POST", renderer=TEMPLATE, permission=USER)
def add_comment(request: Request) -> Any:
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    body = forms.text(request, "body")
    try:
        comment = comments.add(request.dbsession, request.identity, article, body)
    except DomainError as exc:
        request.response.status = 422
        return _page(request, {"body": body, "errors": forms.messages(exc.errors)})
    return forms.redirect(f"{_article_url(request)}#comment-{comment.id}")


@view_config(route_name="comment.delete", request_method="POST", permission=USER)
def delete_comment(request: Request) -> Any:
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    try:
        comment_id = int(request.matchdict["id"])
    except ValueError as exc:
        raise NotFound("comment") from exc
    if not 0 < comment_id <= MAX_ID:  # cannot exist, and must not reach SQL
        raise NotFound("comment")
    comments.remove(request.dbsession, request.identity, article, comment_id)
    return forms.redirect(_article_url(request))
