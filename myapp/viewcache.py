"""Whole-response caching for public GETs: the ``views`` region.

Most reads are anonymous, and an anonymous GET of a public URL gets the same
bytes whoever asks. :func:`shared_response` keeps those bytes (and their
ETag) in the ``views`` region, so a repeat skips the view, the read model,
JSON or template rendering and hashing: one Redis round trip for the
generations, one for the body. Nginx's micro-cache (nginx/) does the same at
the edge, but only for a few seconds and per Nginx; this one is shared by
every replica and is purged exactly when the data changes.

Correctness rests on three rules:

* **Only requests without credentials** (no ``Authorization``, no session or
  CSRF cookie — the same test the HTTP cache headers use, myapp.httpcache)
  are served from or stored in the cache. Logged-in requests go through the
  view, which shares the read model's cached data and merges their flags.
* **Only plain 200 responses** are stored: not one that sets a cookie, nor
  one whose request registered a response callback (a new session, a CSRF
  token), nor one with its own ``Cache-Control``.
* **Keys embed generation tokens** (myapp.cache): a view names the
  generations its output depends on, and a committed write that changes
  such data replaces the token (myapp.services.public.collect). Every write
  to articles, tags or favourites bumps ``lists``; every write to a user
  bumps ``people`` (and ``lists``, whose entries embed authors).

The key is the full URL (scheme, host, path and query): pages and ``Link``
headers contain absolute URLs. A view names the query parameters it reads;
a URL with any other (``?x=<random>``) goes to the view uncached, so nobody
can fill Redis with copies of one page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from pyramid.request import Request
from pyramid.response import Response

from myapp.httpcache import body_etag, is_personal, personal_cookies

View = Callable[[Any, Request], Response]
REGION = "views"
# Headers a view may set that belong to the stored representation.
KEPT_HEADERS = ("Link", "Content-Language")


def _storable(request: Request, response: Response) -> bool:
    return (
        response.status_code == 200
        and not request.response_callbacks
        and "Set-Cookie" not in response.headers
        and "Cache-Control" not in response.headers
    )


def _freeze(response: Response) -> dict[str, Any]:
    body = response.body
    return {
        "body": body,
        "content_type": response.content_type,
        "charset": response.charset,
        "etag": body_etag(body),
        "headers": [(k, v) for k, v in response.headers.items() if k in KEPT_HEADERS],
    }


def _thaw(stored: dict[str, Any]) -> Response:
    response = Response(
        body=stored["body"], content_type=stored["content_type"], charset=stored["charset"]
    )
    for name, value in stored["headers"]:
        response.headers[name] = value
    response.etag = stored["etag"]
    return response


def shared_response(*generations: str, params: Iterable[str] = ()) -> Callable[[View], View]:
    """A ``view_config(decorator=...)``: serve anonymous GETs from the ``views`` region.

    ``generations`` are the generation names whose data the view's output
    shows (see the module docstring); ``params`` the query parameters it reads.
    """
    known = frozenset(params)

    def decorate(view: View) -> View:
        def cached_view(context: Any, request: Request) -> Response:
            cache = request.cache
            if (
                not cache.enabled
                or request.method not in ("GET", "HEAD")
                or not known.issuperset(request.GET.keys())
                or is_personal(request, personal_cookies(request.registry.settings))
            ):
                return view(context, request)
            tokens = cache.generations(*generations)
            url = hashlib.sha1(request.url.encode(), usedforsecurity=False).hexdigest()
            made: list[Response] = []

            def create() -> dict[str, Any] | None:
                response = view(context, request)
                made.append(response)
                return _freeze(response) if _storable(request, response) else None

            stored = cache.get_or_create(
                REGION, f"{':'.join(tokens)}:{url}", create, should_cache=lambda v: v is not None
            )
            if made:
                response = made[0]
                if stored is not None:
                    response.etag = stored["etag"]
                return response
            return _thaw(stored)

        return cached_view

    return decorate
