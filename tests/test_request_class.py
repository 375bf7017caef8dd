"""The request class carries the request methods: none is applied per request (myapp.request)."""

from __future__ import annotations

from typing import Any

import webtest
from pyramid.request import Request
from pyramid.response import Response
from pyramid.scripting import prepare

from myapp.config import configure


def _probe_app(settings: dict[str, Any], seen: list[Request]) -> Any:
    config = configure(settings)

    def probe(request: Request) -> Response:
        seen.append(request)
        # Extensions from three places: our own, pyramid_tm's, the cache's.
        assert request.dbsession is request.dbsession  # reified
        assert request.tm is request.tm  # (a GET begins no transaction: myapp.db_reads)
        return Response(type(request.cache).__name__)

    config.add_route("probe", "/probe")
    config.add_view(probe, route_name="probe")
    return config.make_wsgi_app()


def test_every_request_is_one_class_with_the_extensions(app_settings: dict[str, Any]) -> None:
    seen: list[Request] = []
    app = webtest.TestApp(_probe_app(app_settings, seen))
    assert app.get("/probe").text == "Cache"
    app.get("/probe")
    first, second = seen
    # Pyramid's own way builds a class for each request; ours is built once.
    assert type(first) is type(second)
    assert issubclass(type(first), Request)
    assert "dbsession" in vars(type(first)) and "tm" in vars(type(first))
    # Reified per request, not shared between them.
    assert first.dbsession is not second.dbsession


def test_a_request_made_elsewhere_still_gets_the_extensions(
    app_settings: dict[str, Any],
) -> None:
    app = configure(app_settings).make_wsgi_app()
    # What a script does: its own request, then pyramid.scripting.prepare.
    env = prepare(request=Request.blank("/"), registry=app.registry)
    try:
        assert env["request"].dbsession is not None
        assert callable(env["request"].dispatch)
    finally:
        env["closer"]()


def test_the_app_subscribes_to_no_event(wsgi_app: Any) -> None:
    """One subscriber of any event makes the router notify NewRequest,
    BeforeTraversal, ContextFound and NewResponse on every request
    (``registry.has_listeners``): ~50,000 instructions of an uncached API
    list. The pages give templates ``h`` by wrapping the Jinja2 renderer and
    add their security headers in a tween instead (myapp.pages)."""
    assert not wsgi_app.registry.has_listeners


def test_pages_still_get_their_helpers_and_headers(testapp: webtest.TestApp) -> None:
    home = testapp.get("/")
    assert 'href="/login"' in home.text  # h.route, in the layout
    assert home.headers["X-Frame-Options"] == "DENY"
    missing = testapp.get("/no/such/page", status=404)  # an exception view's page
    assert missing.headers["X-Frame-Options"] == "DENY" and 'href="/login"' in missing.text
