"""Security headers on every HTML page.

The Content-Security-Policy is the second line of defence behind escaping
and sanitizing: even if markup slipped through, no inline script, no script
from elsewhere and no form posting elsewhere would run. Our own pages need
nothing more: one stylesheet and one script from /static, data in a
``<script type="application/json">`` block. Images may come from anywhere
(profile pictures and article images are URLs people give us).
"""

from __future__ import annotations

from pyramid.events import NewResponse, subscriber

from myapp.sessions import is_api

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


@subscriber(NewResponse)
def security_headers(event: NewResponse) -> None:
    response = event.response
    if response.content_type != "text/html" or is_api(event.request):
        return
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
