"""/articles/{slug}/comments."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from myapp import identities
from myapp.api.auth import optional_user, required_user
from myapp.api.serialize import comment_body
from myapp.api.validation import validated_body
from myapp.resources import USER
from myapp.services import articles, comments, public
from myapp.services.errors import NotFound

MAX_ID = 2**63 - 1


@view_config(route_name="api.comments", request_method="GET", renderer="json")
def list_comments(request: Request) -> dict[str, Any]:
    viewer = optional_user(request)
    # Both cached: the article (its id; a 404 for no such slug) and its comments.
    article = public.article(request.dbreads, request.cache, request.matchdict["slug"])
    found = comments.public_list(request.dbreads, request.cache, article["id"])
    session = identities.flags_session(request, viewer)
    token = identities.flags_token(request, viewer)
    return {
        "comments": comments.personalise(
            session, viewer, article["id"], found, request.cache, token
        )
    }


@view_config(route_name="api.comments", request_method="POST", renderer="json", permission=USER)
def add(request: Request) -> dict[str, Any]:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    data = validated_body(request, "NewCommentRequest", "comment")
    comment = comments.add(request.dbsession, user, article, data["body"])
    request.response.status = 201
    return {"comment": comment_body(comment, False)}


@view_config(route_name="api.comment", request_method="DELETE", permission=USER)
def delete(request: Request) -> Response:
    user = required_user(request)
    article = articles.get_article(request.dbsession, request.matchdict["slug"])
    try:
        comment_id = int(request.matchdict["id"])
    except ValueError as exc:
        raise NotFound("comment") from exc
    if comment_id > MAX_ID:  # beyond BIGINT: cannot exist, and must not reach SQL
        raise NotFound("comment")
    comments.remove(request.dbsession, user, article, comment_id)
    return Response(status=204)
