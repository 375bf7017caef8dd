"""What every page template may call, as ``h``: URLs, avatars, dates, CSRF.

Templates stay free of logic that needs testing: the default-avatar rule,
the pagination window and the debug state the browser scripts read are
decided here.

A page calls these helpers dozens of times (a home page: ~70 route URLs,
~14 static URLs, a CSRF token per article preview), so the URL helpers skip
Pyramid's general machinery where it adds nothing, and the per-request work
(the Cache-Control of a page with a form, the debug API token) is done once
per request. Every shortcut must give exactly what Pyramid would
(tests/test_page_helpers.py renders pages both ways and compares the bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

from markupsafe import Markup
from pyramid.config import PHASE2_CONFIG, Configurator
from pyramid.csrf import get_csrf_token
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRendererFactory, IRoutesMapper
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from myapp.models import User
from myapp.pages import assets, fragments
from myapp.pages.reads import Page

STATIC = assets.STATIC_SPEC
DEFAULT_AVATAR = "default-avatar.svg"
# Query parameters that survive paging (everything else is dropped).
KEPT_QUERY = ("feed",)
# Where the per-registry route generators are kept (the registry is a dict).
ROUTE_PATHS = "pages.route_paths"
# Request attributes: the response already marked "never store", and the
# debug state's (user id, API token).
NO_STORE_DONE = "_pages_no_store_response"
DEBUG_TOKEN = "_pages_debug_token"

# The arguments ``route_url`` takes for itself (pyramid.url.parse_url_overrides).
URL_OVERRIDES = frozenset(("_app_url", "_scheme", "_host", "_port", "_query", "_anchor"))

Generate = Callable[[dict[str, Any]], str]


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


@lru_cache(maxsize=12)
def month_name(month: int) -> str:
    # strftime("%B") costs ~5 µs a call and a page shows a date per article;
    # the answer only depends on the month (and the locale, which the app
    # never changes).
    return f"{datetime(2000, month, 1):%B}"


def display_date(value: str | datetime) -> str:
    """``January 20, 2025`` from a datetime or the API's ISO timestamp."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{month_name(value.month)} {value.day}, {value.year}"


class RoutePaths:
    """The generators of one registry's routes, for ``route_path`` without its overhead.

    ``request.route_path(name, **kw)`` is ``request.script_name`` (unquoted)
    plus ``route.generate(kw)`` unless the route has a pregenerator or ``kw``
    holds one of ``route_url``'s own ``_query``/``_anchor``/``_app_url``...
    arguments (pyramid.url.parse_url_overrides). The rest of its ~25 µs is
    looking those up on every call; routes are fixed once the app is made,
    so their generators are looked up once.
    """

    def __init__(self, registry: Registry):
        self.mapper = registry.getUtility(IRoutesMapper)
        self.generators: dict[str, Generate] = {}

    @classmethod
    def of(cls, registry: Registry) -> RoutePaths:
        found: RoutePaths | None = registry.get(ROUTE_PATHS)
        if found is None:
            # setdefault: two threads racing here agree on one instance.
            found = registry.setdefault(ROUTE_PATHS, cls(registry))
        return found

    def generator(self, name: str) -> Generate | None:
        """The route's generator, or None when only ``route_path`` will do
        (an unknown route, which it reports, or one with a pregenerator)."""
        generate = self.generators.get(name)
        if generate is None:
            route = self.mapper.get_route(name)
            if route is None or route.pregenerator is not None:
                return None
            generate = self.generators[name] = route.generate
        return generate


class Helpers:
    """One template render's ``h``: created per render, so it may remember
    what cannot change while a page renders (the user, the URL, the prefix)."""

    def __init__(self, request: Request):
        self.request = request
        self._static: dict[str, str] = {}

    @cached_property
    def user(self) -> User | None:
        # Asked ~15 times per page; Pyramid's ``identity`` re-enters the
        # security policy each time.
        return self.request.identity

    @cached_property
    def _routes(self) -> RoutePaths:
        return RoutePaths.of(self.request.registry)

    @cached_property
    def _script_name(self) -> str:
        return self.request.script_name

    def route(self, name: str, **kw: Any) -> str:
        """``request.route_path(name, **kw)``, the same string, faster."""
        generate = self._routes.generator(name)
        if generate is None or not URL_OVERRIDES.isdisjoint(kw):
            # Unknown route, pregenerator, or _query/_anchor/...: Pyramid's way.
            return self.request.route_path(name, **kw)
        return self._script_name + generate(kw)

    def static(self, path: str) -> str:
        # Most calls are the default avatar, once per article: one look at
        # the file per render is enough.
        found = self._static.get(path)
        if found is None:
            found = self._static[path] = assets.static_path(self.request, path)
        return found

    def avatar(self, image: str | None) -> str:
        """The user's image, or our default avatar when they have none."""
        return image if image and image.strip() else self.static(DEFAULT_AVATAR)

    def date(self, value: str | datetime) -> str:
        return display_date(value)

    @cached_property
    def here(self) -> str:
        """This page's path and query: where forms come back to."""
        return self.request.path_qs

    def csrf_token(self) -> str:
        """The CSRF token for a form; a page holding one is never stored by caches."""
        request = self.request
        response: Response = request.response
        # Once per response, not per form: each cache_control assignment
        # makes WebOb re-serialize the header. Kept per response object, not
        # per request: an exception view renders into a fresh response.
        if getattr(request, NO_STORE_DONE, None) is not response:
            response.cache_control.private = True
            response.cache_control.no_store = True
            setattr(request, NO_STORE_DONE, response)
        return get_csrf_token(request)

    def preview(self, article: dict[str, Any], render: Callable[[dict[str, Any]], Any]) -> Any:
        """``render(article)`` (the article_preview macro), or the same HTML
        kept from an earlier render (myapp.pages.fragments)."""
        request = self.request
        store = fragments.previews(request)
        if store is None:
            return render(article)
        digest = fragments.key(request, article, self.user is not None)
        found = fragments.kept(store, digest)
        if found is not None:
            if fragments.HOLE in found:
                return fragments.fill(found, self.csrf_token())
            return Markup(found)
        html = render(article)
        # The token, if this page has asked for one (it would be in the HTML).
        asked = getattr(request, NO_STORE_DONE, None) is request.response
        fragments.keep(store, digest, str(html), get_csrf_token(request) if asked else None)
        return html

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
        RealWorld end-to-end suite) can call the JSON API as them; one per
        request (signing one costs ~80 µs), however many templates it renders.
        """
        user = self.user
        if user is None:
            return {"user": None}
        issued: tuple[int, str] | None = getattr(self.request, DEBUG_TOKEN, None)
        if issued is None or issued[0] != user.id:
            issued = (user.id, self.request.registry["tokens"].issue(user.id))
            setattr(self.request, DEBUG_TOKEN, issued)
        return {
            "user": {
                "username": user.username,
                "email": user.email,
                "bio": user.bio,
                "image": user.image,
                "token": issued[1],
            }
        }


Renderer = Callable[[Any, dict[str, Any]], str]


def with_helpers(factory: Callable[[Any], Renderer]) -> Callable[[Any], Renderer]:
    """A template renderer factory whose templates get ``h``.

    Not a ``BeforeRender`` subscriber: one subscriber of any event makes
    Pyramid's router notify four other events on *every* request, API calls
    included (myapp.pages.headers says how much that costs)."""

    def make(info: Any) -> Renderer:
        render = factory(info)

        def render_with_helpers(value: Any, system: dict[str, Any]) -> str:
            request = system.get("request")
            if request is not None:
                system.setdefault("h", Helpers(request))
            return render(value, system)

        return render_with_helpers

    return make


def includeme(config: Configurator) -> None:
    def wrap() -> None:
        registry = config.registry
        factory = registry.queryUtility(IRendererFactory, name=".jinja2")
        if factory is None:
            raise ConfigurationError("myapp.pages needs pyramid_jinja2 (config.include it first)")
        registry.registerUtility(with_helpers(factory), IRendererFactory, name=".jinja2")

    # After pyramid_jinja2 registered its factory (config.add_renderer acts
    # in PHASE1_CONFIG), before any view renders (renderers are looked up
    # on first use).
    config.action(("myapp.pages.helpers", ".jinja2"), wrap, order=PHASE2_CONFIG)
