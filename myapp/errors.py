"""Error responses in one shape.

The API answers RealWorld's ``{"errors": {field: [message]}}`` as JSON; the
pages (myapp.pages) render their own error templates, so this module only
has to know which of the two a request is for.
"""

from __future__ import annotations

from pyramid.request import Request
from pyramid.response import Response

ErrorMap = dict[str, list[str]]


def wants_json(request: Request) -> bool:
    return (
        request.path_info.startswith("/api")
        or request.accept.best_match(["text/html", "application/json"]) == "application/json"
    )


def error_response(request: Request, status: int, errors: ErrorMap) -> Response:
    response = Response(status=status, charset="utf-8")
    if wants_json(request):
        response.content_type = "application/json"
        response.json_body = {"errors": errors}
    else:
        response.content_type = "text/plain"
        response.text = "\n".join(f"{key} {msg}" for key, msgs in errors.items() for msg in msgs)
    response.cache_control.no_store = True
    return response
