"""What every page template may call, as ``h``: URLs, avatars, dates, CSRF.

Templates stay free of logic that needs testing: the default-avatar rule,
the pagination window and the debug state the browser scripts read are
decided here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pyramid.csrf import get_csrf_token
from pyramid.events import BeforeRender, subscriber
from pyramid.request import Request

from myapp.models import User
from myapp.pages.reads import Page

STATIC = "myapp:static/"
DEFAULT_AVATAR = "default-avatar.svg"
# Query parameters that survive paging (everything else is dropped).
KEPT_QUERY = ("feed",)


def page_numbers(page: Page) -> list[int | None]:
    """The page links to show: all of them for short lists, else the first,
    the last and a window around the current one (None marks a gap)."""
    last, current = page.last, page.number
    if last <= 10:
        return list(range(1, last + 1))
    shown = {1, last, *range(max(1, current - 2), min(last, current + 2) + 1)}
    if current <= 4:
        shown.update(range(1, 6))
    if current >= last - 3:
        shown.update(range(last - 4, last + 1))
    numbers: list[int | None] = []
    for number in sorted(shown):
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


def display_date(value: str | datetime) -> str:
    """``January 20, 2025`` from a datetime or the API's ISO timestamp."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{value:%B} {value.day}, {value.year}"


class Helpers:
    def __init__(self, request: Request):
        self.request = request

    @property
    def user(self) -> User | None:
        return self.request.identity

    def route(self, name: str, **kw: Any) -> str:
        return self.request.route_path(name, **kw)

    def static(self, path: str) -> str:
        return self.request.static_path(STATIC + path)

    def avatar(self, image: str | None) -> str:
        """The user's image, or our default avatar when they have none."""
        return image if image and image.strip() else self.static(DEFAULT_AVATAR)

    def date(self, value: str | datetime) -> str:
        return display_date(value)

    def iso(self, value: str | datetime) -> str:
        return value if isinstance(value, str) else value.isoformat()

    @property
    def here(self) -> str:
        """This page's path and query: where forms come back to."""
        return self.request.path_qs

    def csrf_token(self) -> str:
        """The CSRF token for a form; a page holding one is never stored by caches."""
        response = self.request.response
        response.cache_control.private = True
        response.cache_control.no_store = True
        return get_csrf_token(self.request)

    def page_url(self, number: int) -> str:
        request = self.request
        query = {k: request.GET[k] for k in KEPT_QUERY if k in request.GET}
        if number > 1:
            query["page"] = str(number)
        route = request.matched_route
        if route is None:
            return request.route_path("home", _query=query)
        return request.route_path(route.name, **request.matchdict, _query=query)

    def page_numbers(self, page: Page) -> list[int | None]:
        return page_numbers(page)

    def debug_state(self) -> dict[str, Any]:
        """What ``window.__conduit_debug__`` reports: the server's view of the user.

        The token is a fresh API token for that user, so scripts (and the
        RealWorld end-to-end suite) can call the JSON API as them.
        """
        user = self.user
        if user is None:
            return {"user": None}
        return {
            "user": {
                "username": user.username,
                "email": user.email,
                "bio": user.bio,
                "image": user.image,
                "token": self.request.registry["tokens"].issue(user.id),
            }
        }


@subscriber(BeforeRender)
def add_helpers(event: BeforeRender) -> None:
    """Give page templates ``h`` (and nothing to the API's JSON renderer)."""
    request = event.get("request")
    if request is not None and str(event.get("renderer_name", "")).endswith(".jinja2"):
        event.setdefault("h", Helpers(request))
