"""The editor: write a new article, or edit one of your own."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.jobs.notify import notify_followers
from myapp.models import Article
from myapp.pages import forms
from myapp.resources import USER
from myapp.services import articles
from myapp.services.errors import DomainError

TEMPLATE = "myapp:templates/editor.jinja2"


def _form(request: Request, values: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    if errors:
        request.response.status = 422
    return {"nav": "editor", "values": values, "errors": errors}


def _posted(request: Request) -> dict[str, Any]:
    return {
        "title": forms.text(request, "title"),
        "description": forms.text(request, "description"),
        "body": forms.text(request, "body"),
        "tagList": forms.tags(request),
    }


def _own_article(request: Request) -> Article:
    """The article named in the URL: 404 if there is none, 403 if not yours."""
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    articles.check_author(article, request.identity)
    return article


def _article_url(request: Request, article: Article) -> str:
    return request.route_path("article", slug=article.slug)


@view_config(route_name="editor", request_method="GET", renderer=TEMPLATE, permission=USER)
def new(request: Request) -> dict[str, Any]:
    return _form(request, {"title": "", "description": "", "body": "", "tagList": []}, [])


@view_config(route_name="editor", request_method="POST", renderer=TEMPLATE, permission=USER)
def create(request: Request) -> Any:
    values = _posted(request)
    try:
        article = articles.create(request.dbsession, request.identity, values)
    except DomainError as exc:
        return _form(request, values, forms.messages(exc.errors))
    # Followers hear of it by mail, from a worker, once this commits.
    request.dispatch(notify_followers, article.id, owner=request.identity)
    return forms.redirect(_article_url(request, article))


@view_config(route_name="editor.edit", request_method="GET", renderer=TEMPLATE, permission=USER)
def edit(request: Request) -> dict[str, Any]:
    article = _own_article(request)
    values = {
        "title": article.title,
        "description": article.description,
        "body": article.body,
        "tagList": list(article.tag_names),
    }
    return _form(request, values, [])


@view_config(route_name="editor.edit", request_method="POST", renderer=TEMPLATE, permission=USER)
def update(request: Request) -> Any:
    article = _own_article(request)
    values = _posted(request)
    try:
        articles.edit(request.dbsession, article, values)
    except DomainError as exc:
        return _form(request, values, forms.messages(exc.errors))
    return forms.redirect(_article_url(request, article))
