"""How the API fails: RealWorld's error shape and status codes.

401 carries the token's problem (``{"token": ["is missing"]}``), 403/404
name the resource (``{"article": ["forbidden"]}``), 422 the fields.
"""

from __future__ import annotations

import logging

from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from myapp.errors import error_response
from myapp.services.errors import DomainError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A 4xx raised by the API layer itself (bad JSON, content type, size, token)."""

    def __init__(self, status: int, errors: dict[str, list[str]]):
        super().__init__(status, errors)
        self.status = status
        self.errors = errors


def unauthorized(request: Request) -> ApiError:
    reason = getattr(request, "token_error", None) or "is missing"
    return ApiError(401, {"token": [reason]})


def is_api(request: Request) -> bool:
    return request.path_info.startswith("/api")


@exception_view_config(DomainError, path_info=r"^/api")
def domain_error(exc: DomainError, request: Request) -> Response:
    return error_response(request, exc.status, exc.errors)


@exception_view_config(ApiError, path_info=r"^/api")
def api_error(exc: ApiError, request: Request) -> Response:
    response = error_response(request, exc.status, exc.errors)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Token realm="conduit"'
    return response


@forbidden_view_config(path_info=r"^/api")
def forbidden(request: Request) -> Response:
    """Pyramid denied a permission: 401 for nobody, 403 for somebody."""
    if request.identity is None:
        return api_error(unauthorized(request), request)
    return error_response(request, 403, {"resource": ["forbidden"]})


@notfound_view_config(path_info=r"^/api")
def not_found(request: Request) -> Response:
    return error_response(request, 404, {"resource": ["not found"]})


def allowed_methods(request: Request) -> list[str]:
    """The methods some view of the matched route answers, from the registry's
    introspector (so the list never drifts from the ``view_config``s)."""
    route = request.matched_route
    if route is None:
        return []
    methods: set[str] = set()
    for item in request.registry.introspector.get_category("views") or []:
        intr = item["introspectable"]
        if intr["route_name"] != route.name or not intr["request_methods"]:
            continue
        declared = intr["request_methods"]
        methods.update([declared] if isinstance(declared, str) else declared)
    if "GET" in methods:
        methods.add("HEAD")  # Pyramid serves HEAD with the GET view
    return sorted(methods)


@exception_view_config(PredicateMismatch, path_info=r"^/api")
def method_not_allowed(exc: PredicateMismatch, request: Request) -> Response:
    """A known route with no view for this method: 405 + Allow, not 404.

    Pyramid raises PredicateMismatch (a 404) when the route matched but no
    view's predicates did; under /api the only predicate is the method.
    """
    allowed = allowed_methods(request)
    if not allowed or request.method in allowed:
        return not_found(request)
    response = error_response(request, 405, {"method": [f"{request.method} is not allowed"]})
    response.headers["Allow"] = ", ".join(allowed)
    return response


@exception_view_config(HTTPException, path_info=r"^/api")
def http_exception(exc: HTTPException, request: Request) -> Response:
    """Any other HTTP error Pyramid raises (405, 400...) in the API's shape."""
    if exc.code and exc.code < 400:
        return exc
    return error_response(request, exc.code or 500, {"request": [exc.explanation or exc.title]})


@exception_view_config(Exception, path_info=r"^/api")
def server_error(exc: Exception, request: Request) -> Response:
    """Last resort: log the traceback, answer in the API's shape."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(request, 500, {"server": ["unexpected error"]})
