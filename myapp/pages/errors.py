"""How the pages fail: a real page with the layout, the right status, no 500s
for bad input.

* nobody asks for something that needs a login -> /login?next=<here>;
* somebody touches another's article or comment -> a 403 page;
* an unknown article, profile or URL -> a 404 page;
* a form without a valid CSRF token, or undecodable input -> a 400 page;
* the session store is down -> a 503 page (browsing still works: visitors
  are anonymous until it is back, see myapp.sessions).

The API under /api has its own views (myapp.api.errors); the ``path_info``
predicate below keeps these away from it.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken
from pyramid.httpexceptions import HTTPBadRequest, HTTPException
from pyramid.request import Request
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from myapp.pages import forms
from myapp.services.errors import DomainError, Forbidden, NotFound

log = logging.getLogger(__name__)

PAGES = r"^(?!/api(/|$))"
TEMPLATE = "myapp:templates/error.jinja2"
TITLES = {
    400: "Bad request",
    403: "Not yours",
    404: "Page not found",
    422: "That did not work",
    500: "Something went wrong",
    503: "Try again in a moment",
}


def error_page(request: Request, status: int, message: str) -> dict[str, Any]:
    request.response.status = status
    request.response.cache_control.no_store = True
    return {"status": status, "title": TITLES.get(status, "Error"), "message": message}


@notfound_view_config(path_info=PAGES, renderer=TEMPLATE)
def not_found(request: Request) -> dict[str, Any]:
    return error_page(request, 404, "There is nothing here. It may have been deleted.")


@forbidden_view_config(path_info=PAGES, renderer=TEMPLATE)
def forbidden(request: Request) -> Any:
    if request.identity is None:
        # GET pages come back here after login; a form post goes back to
        # the page it was posted from.
        here = request.path_qs if request.method == "GET" else request.POST.get("next")
        return forms.login_redirect(request, here)
    return error_page(request, 403, "You can't do that: it belongs to someone else.")


@exception_view_config(NotFound, path_info=PAGES, renderer=TEMPLATE)
def domain_not_found(exc: NotFound, request: Request) -> dict[str, Any]:
    what = {"profile": "That profile", "comment": "That comment"}.get(exc.resource, "That article")
    return error_page(request, 404, f"{what} does not exist (any more).")


@exception_view_config(Forbidden, path_info=PAGES, renderer=TEMPLATE)
def domain_forbidden(exc: Forbidden, request: Request) -> dict[str, Any]:
    return error_page(request, 403, f"You can't change this {exc.resource}: it is not yours.")


@exception_view_config(DomainError, path_info=PAGES, renderer=TEMPLATE)
def domain_error(exc: DomainError, request: Request) -> dict[str, Any]:
    """Rule violations outside a form (following yourself...)."""
    return error_page(request, exc.status, "; ".join(forms.messages(exc.errors)))


@exception_view_config(BadCSRFToken, path_info=PAGES, renderer=TEMPLATE)
@exception_view_config(BadCSRFOrigin, path_info=PAGES, renderer=TEMPLATE)
def bad_csrf(exc: HTTPBadRequest, request: Request) -> dict[str, Any]:
    return error_page(
        request,
        400,
        "This form has expired or did not come from this site. "
        "Go back, reload the page and try again.",
    )


@exception_view_config(UnicodeDecodeError, path_info=PAGES, renderer=TEMPLATE)
def undecodable(exc: UnicodeDecodeError, request: Request) -> dict[str, Any]:
    return error_page(request, 400, "The form data could not be read (not UTF-8).")


@exception_view_config(redis.RedisError, path_info=PAGES, renderer=TEMPLATE)
def session_store_down(exc: redis.RedisError, request: Request) -> dict[str, Any]:
    log.warning("session store unavailable on %s %s: %s", request.method, request.path, exc)
    request.response.headers["Retry-After"] = "5"
    return error_page(request, 503, "Signing in is unavailable for a moment. Please try again.")


@exception_view_config(HTTPException, path_info=PAGES, renderer=TEMPLATE)
def http_error(exc: HTTPException, request: Request) -> Any:
    """Other HTTP errors Pyramid raises; redirects pass through untouched."""
    if not exc.code or exc.code < 400:
        return exc
    return error_page(request, exc.code, exc.explanation or exc.title)


@exception_view_config(Exception, path_info=PAGES, renderer=TEMPLATE)
def server_error(exc: Exception, request: Request) -> dict[str, Any]:
    """A bug: logged with its traceback, and still a page with the layout."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_page(request, 500, "Sorry, that's our fault. Please try again later.")
