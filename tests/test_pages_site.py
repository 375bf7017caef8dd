"""Site-wide behaviour of the pages: assets, headers, errors, and the API
living next to them untouched."""

from __future__ import annotations

import re
from typing import Any

import webtest
from pyramid.request import Request
from pyramid.response import Response

from myapp.config import configure
from tests.pages_support import PASSWORD, Browser, form, state


def test_assets_are_ours_cache_busted_and_long_lived(testapp: webtest.TestApp) -> None:
    page = testapp.get("/")
    urls = [
        tag.get("href") or tag.get("src") for tag in page.html.select("link[href], script[src]")
    ]
    assert urls and all(url.startswith("/static/") for url in urls), urls
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    css = page.html.select_one('link[rel="stylesheet"]')["href"]
    assert re.fullmatch(r"/static/css/conduit\.css\?v=[0-9a-f]{12}", css)
    response = testapp.get(css)
    assert response.content_type == "text/css"
    assert response.cache_control.max_age == 365 * 24 * 3600
    for font in re.findall(r'url\("\.\./fonts/([^"]+)"\)', response.text):
        assert testapp.get(f"/static/fonts/{font}").body[:4] == b"wOF2"
    js = page.html.select_one("script[src]")["src"]
    assert "__conduit_debug__" in testapp.get(js).text
    avatar = testapp.get("/static/default-avatar.svg")
    assert avatar.content_type == "image/svg+xml" and b"<svg" in avatar.body


def test_pages_carry_security_headers(testapp: webtest.TestApp) -> None:
    for url, status in [("/", 200), ("/login", 200), ("/nowhere", 404)]:
        response = testapp.get(url, status=status)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in testapp.get("/api/tags").headers


def test_form_pages_are_never_stored_by_caches(testapp: webtest.TestApp) -> None:
    home = testapp.get("/")
    assert home.cache_control.public  # nothing personal on it for a first visit
    login = testapp.get("/login")
    assert login.cache_control.no_store and login.cache_control.private


def test_unknown_url_is_a_404_page_and_wrong_method_too(testapp: webtest.TestApp) -> None:
    for method, url in [("GET", "/no/such/page"), ("GET", "/logout"), ("POST", "/tag/x")]:
        response = testapp.request(url, method=method, status=404)
        assert response.content_type == "text/html"
        assert "Page not found" in response.text


def test_undecodable_form_is_a_400_not_a_500(testapp: webtest.TestApp) -> None:
    token = form(testapp.get("/login"), "/login")["csrf_token"].value
    body = b"csrf_token=" + token.encode() + b"&email=\xff\xfe&password=x"
    response = testapp.post(
        "/login", body, content_type="application/x-www-form-urlencoded", status="*"
    )
    assert response.status_int in (400, 422), response.status


def test_debug_state_for_visitors_and_users(testapp: webtest.TestApp) -> None:
    assert state(testapp.get("/")) == {"user": None}
    browser = Browser(testapp)
    name = browser.register()
    for url in ["/", "/settings", f"/profile/{name}", "/nowhere"]:
        user = state(browser.get(url, status="*"))["user"]
        assert set(user) == {"username", "email", "bio", "image", "token"}
        assert user["username"] == name


def test_api_keeps_token_auth_and_needs_no_csrf(testapp: webtest.TestApp) -> None:
    body = {"user": {"username": "apiuser", "email": "api@example.com", "password": PASSWORD}}
    created = testapp.post_json("/api/users", body, status=201).json["user"]
    assert testapp.get("/api/user", headers={"Authorization": f"Token {created['token']}"})
    # A logged-in page session is no credential for the API: the API never
    # reads cookies, which is why it needs no CSRF token.
    browser = Browser.new(testapp)
    browser.register()
    browser.app.get("/api/user", status=401)
    browser.app.post_json("/api/articles", {"article": {"title": "t"}}, status=401)


def test_tags_with_slashes_have_working_pages(testapp: webtest.TestApp) -> None:
    browser = Browser(testapp)
    browser.register()
    browser.write("Pipelines", tags="ci/cd")
    home = browser.get("/")
    link = [a["href"] for a in home.html.select(".sidebar a.tag-pill") if a.get_text() == "ci/cd"]
    assert link == ["/tag/ci/cd"]
    page = browser.get(link[0])
    assert [h.get_text() for h in page.html.select(".article-preview h1")] == ["Pipelines"]


def test_a_page_whose_commit_fails_is_an_error_page_with_the_security_headers(
    app_settings: dict[str, Any],
) -> None:
    """pyramid_tm renders the exception view itself when the commit raises:
    that page carries the headers too (myapp.pages.headers sits above it)."""
    config = configure(app_settings)

    def fails_at_commit(request: Request) -> Response:
        def boom() -> None:
            raise RuntimeError("the commit failed")

        request.tm.get().addBeforeCommitHook(boom)
        return Response("done")

    config.add_route("test.fails_at_commit", "/test/fails-at-commit")
    config.add_view(fails_at_commit, route_name="test.fails_at_commit", require_csrf=False)
    app = webtest.TestApp(config.make_wsgi_app(), extra_environ={"HTTP_HOST": "localhost"})
    page = app.post("/test/fails-at-commit", status=500)
    assert page.content_type == "text/html" and "Something went wrong" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
