"""Security headers on every HTML page.

The Content-Security-Policy is the second line of defence behind escaping
and sanitizing: even if markup slipped through, no inline script, no script
from elsewhere and no form posting elsewhere would run. Our own pages need
nothing more: one stylesheet and one script from /static, data in a
``<script type="application/json">`` block. Images may come from anywhere
(profile pictures and article images are URLs people give us).
"""

from __future__ import annotations

from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import EXCVIEW

from myapp.sessions import is_api

Handler = Callable[[Request], Response]

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' https: http: data:",
        "script-src 'self'",
        "style-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def security_headers_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """The headers on every HTML response outside /api (the API explorer at
    /api/docs keeps its own), error pages included: above the exception
    views and pyramid_tm, which renders an exception view itself when the
    commit fails.

    A tween, not a ``NewResponse`` subscriber: one subscriber of any event
    makes Pyramid's router notify four events on *every* request
    (``registry.has_listeners``), ~50,000 instructions of an uncached API
    list, for headers that only pages carry (myapp.pages.helpers says the
    same of ``BeforeRender``; tests/test_request_class.py checks the app has none).
    """

    def security_headers_tween(request: Request) -> Response:
        response = handler(request)
        if is_api(request) or response.content_type != "text/html":
            return response
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return security_headers_tween


def includeme(config: Configurator) -> None:
    config.add_tween(
        "myapp.pages.headers.security_headers_tween_factory",
        over=("pyramid_tm.tm_tween_factory", EXCVIEW),
    )
