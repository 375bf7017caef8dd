"""Reading HTML forms and turning domain errors into messages.

Forms are plain ``application/x-www-form-urlencoded`` posts; every value is
read as text (a file upload or a missing field reads as ""), and the rules
themselves live in myapp.services.rules, shared with the API.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request

from myapp.services.errors import ErrorMap

NEXT_MAX = 2000
TAG_SPLIT = re.compile(r"[,\n]")
# RealWorld's field names, as people read them.
FIELD_LABELS = {"tagList": "tags", "body": "body"}


def text(request: Request, name: str) -> str:
    value = request.POST.get(name, "")
    return value if isinstance(value, str) else ""


def texts(request: Request, name: str) -> list[str]:
    return [v for v in request.POST.getall(name) if isinstance(v, str)]


def tags(request: Request) -> list[str]:
    """The tag pills (``tagList``, one field each) then the free-text input
    (``tags``, comma separated: what a browser without JavaScript sends)."""
    names = texts(request, "tagList") + TAG_SPLIT.split(text(request, "tags"))
    # Trimmed, without blanks or repeats: what the form shows again on error
    # (the service applies the same rule before storing).
    return list(dict.fromkeys(t.strip() for t in names if t.strip()))


def messages(errors: ErrorMap) -> list[str]:
    """``{"email": ["has already been taken"]}`` -> ``["email has already been taken"]``."""
    return [
        f"{FIELD_LABELS.get(field, field)} {message}"
        for field, field_messages in errors.items()
        for message in field_messages
    ]


def safe_next(value: object) -> str | None:
    """A local path to return to, or None: never another site (open redirect)."""
    if not isinstance(value, str) or not value or len(value) > NEXT_MAX:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return None
    return value


def redirect(location: str) -> HTTPSeeOther:
    """POST-redirect-GET: 303 makes the browser follow with a GET."""
    return HTTPSeeOther(location=location)


def back(request: Request, default: str) -> HTTPSeeOther:
    """Redirect to the form's ``next`` field when it is a local path, else ``default``."""
    return redirect(safe_next(request.POST.get("next")) or default)


def login_redirect(request: Request, next_path: str | None = None) -> HTTPSeeOther:
    query = {"next": next_path} if safe_next(next_path) else {}
    return redirect(request.route_path("login", _query=query))
