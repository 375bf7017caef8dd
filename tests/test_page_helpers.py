"""The page helpers' shortcuts (myapp/pages/helpers.py, assets.py) against Pyramid's own URLs.

``h.route``/``h.static`` skip Pyramid's per-call URL machinery, ``h.csrf_token``
marks the response once, ``h.debug_state`` signs one token per request: each
must leave every byte of every page as it was. Pages are checked by rendering
them twice in the same request — once with :class:`PyramidHelpers` (the
helpers as they were, Pyramid doing all the work) and once as served — and
comparing the bytes, at the root and under a SCRIPT_NAME prefix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.events import BeforeRender
from pyramid.renderers import render
from pyramid.request import Request
from pyramid.scripting import prepare
from sqlalchemy.engine import Connection

from myapp.config import configure
from myapp.models import User
from myapp.pages import ROUTES, assets
from myapp.pages.helpers import STATIC, Helpers, display_date
from tests.pages_support import Browser, form

# Mount points: none, plain, and one a URL would have to quote (a space and
# a non-ASCII letter; WSGI carries it as UTF-8 bytes in a latin-1 str).
PREFIXES = ["", "/conduit", "/a b/ü"]
TRICKY = [
    "plain",
    "naïve café",
    "ci/cd",
    "100%",
    "what?",
    "#hash",
    "a b",
    "a+b&c=d;e",
    "..",
    "%2F",
    "日本語",
    "emoji-😀",
    "",
    7,
    "~user_.-",
]
REFERENCE = "test.reference_html"  # environ key: render the page both ways
STATIC_ROOT = Path(assets.__file__).parent.parent / "static"


def wsgi_prefix(prefix: str) -> str:
    return prefix.encode().decode("latin-1")


def blank(registry: Any, prefix: str = "") -> Request:
    request = Request.blank("/", environ={"SCRIPT_NAME": wsgi_prefix(prefix)})
    request.registry = registry
    return request


def outcome(call: Any, *args: Any, **kw: Any) -> tuple[str, Any]:
    """A result or the exception's type, so failures are compared too."""
    try:
        return ("ok", call(*args, **kw))
    except Exception as exc:
        return ("raised", type(exc))


class PyramidHelpers(Helpers):
    """The helpers as they were before the shortcuts: Pyramid does every URL,
    every call marks the response, every call signs a token."""

    @property
    def user(self) -> User | None:  # type: ignore[override]
        return self.request.identity

    @property
    def here(self) -> str:  # type: ignore[override]
        return self.request.path_qs

    def route(self, name: str, **kw: Any) -> str:
        return self.request.route_path(name, **kw)

    def date(self, value: str | datetime) -> str:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return f"{value:%B} {value.day}, {value.year}"

    def static(self, path: str) -> str:
        return self.request.static_path(STATIC + path)

    def csrf_token(self) -> str:
        response = self.request.response
        response.cache_control.private = True
        response.cache_control.no_store = True
        return get_csrf_token(self.request)

    def debug_state(self) -> dict[str, Any]:
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


def render_reference(event: BeforeRender) -> None:
    """Before a page renders as served, render it with PyramidHelpers (into a
    throwaway response: ``render`` hides ``request.response``)."""
    request = event.get("request")
    if request is None or not str(event.get("renderer_name", "")).endswith(".jinja2"):
        return
    if request.environ.get(REFERENCE) != "wanted":
        return  # not compared, the reference render itself, or one already made
    request.environ[REFERENCE] = "rendering"
    values = dict(event.rendering_val, h=PyramidHelpers(request))
    request.environ[REFERENCE] = render(event["renderer_name"], values, request)


@pytest.fixture(scope="module")
def compare_app(app_settings: dict[str, Any]) -> Any:
    config: Configurator = configure(app_settings)
    config.add_subscriber(render_reference, BeforeRender)
    return config.make_wsgi_app()


@pytest.fixture
def site(compare_app: Any, connection: Connection) -> webtest.TestApp:
    compare_app.registry["dbsession_factory"].configure(
        bind=connection, join_transaction_mode="create_savepoint"
    )
    compare_app.registry["cache"].invalidate_all()
    return webtest.TestApp(compare_app, extra_environ={"HTTP_HOST": "localhost"})


# --- h.route ---------------------------------------------------------------


def placeholders(pattern: str) -> list[str]:
    return re.findall(r"\{(\w+)", pattern)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_route_is_route_path_for_every_page_route_and_tricky_value(
    wsgi_app: Any, prefix: str
) -> None:
    request = blank(wsgi_app.registry, prefix)
    h = Helpers(request)
    checked = 0
    for name, pattern in ROUTES:
        for value in TRICKY:
            kw = {key: value for key in placeholders(pattern)}
            expected = request.route_path(name, **kw)
            assert h.route(name, **kw) == expected, (name, kw)
            checked += 1
    assert checked == len(ROUTES) * len(TRICKY)
    assert h.route("tag", tag="ci/cd") == prefix + "/tag/ci/cd"
    assert h.route("profile", username="a b") == prefix + "/profile/a%20b"


values = st.one_of(
    st.text(),
    st.text(alphabet="/%?#&=+ ;:@~.éü😀"),
    st.integers(),
    st.sampled_from(TRICKY),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), prefix=st.sampled_from(PREFIXES), data=st.data())
def test_route_is_route_path_for_any_values(
    wsgi_app: Any, route: tuple[str, str], prefix: str, data: st.DataObject
) -> None:
    name, pattern = route
    kw = {key: data.draw(values, label=key) for key in placeholders(pattern)}
    request = blank(wsgi_app.registry, prefix)
    assert outcome(Helpers(request).route, name, **kw) == outcome(request.route_path, name, **kw)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_route_falls_back_to_pyramid_for_what_it_does_not_shortcut(
    wsgi_app: Any, prefix: str
) -> None:
    request = blank(wsgi_app.registry, prefix)
    h = Helpers(request)
    for name, kw in [
        ("home", {"_query": {"feed": "following", "page": "2"}}),
        ("tag", {"tag": "ci/cd", "_query": "x=1&y=ü"}),
        ("article", {"slug": "a-b", "_anchor": "comment 1"}),
        ("profile", {"username": "x", "_app_url": "http://elsewhere"}),
        ("article", {}),  # a missing placeholder
        ("no-such-route", {}),
    ]:
        assert outcome(h.route, name, **kw) == outcome(request.route_path, name, **kw), (name, kw)
    with pytest.raises(KeyError):
        h.route("no-such-route")


# --- h.static --------------------------------------------------------------


def static_files() -> list[str]:
    return sorted(
        str(path.relative_to(STATIC_ROOT)) for path in STATIC_ROOT.rglob("*") if path.is_file()
    )


@pytest.mark.parametrize("prefix", PREFIXES)
def test_static_is_static_path_for_every_asset(wsgi_app: Any, prefix: str) -> None:
    files = static_files()
    assert "css/conduit.css" in files and "default-avatar.svg" in files
    for subpath in [*files, "no/such/file.css", "../setup.py", "a b/ü.css"]:
        for _ in range(2):  # the first call fills the memo, the second reads it
            request = blank(wsgi_app.registry, prefix)
            expected = request.static_path(STATIC + subpath)
            assert Helpers(request).static(subpath) == expected, subpath
    request = blank(wsgi_app.registry, prefix)
    assert Helpers(request).avatar(None) == request.static_path(STATIC + "default-avatar.svg")


def test_static_path_follows_an_edited_file(tmp_path: Path) -> None:
    """Development: an edited asset gets its new URL at once, memo or not."""
    asset = tmp_path / "site.css"
    asset.write_text("body {}")
    spec = str(tmp_path) + "/"
    config = Configurator(settings={})
    buster = assets.ContentHashCacheBuster(spec)
    config.add_static_view("static", spec)
    config.add_cache_buster(spec, buster)
    registry = config.make_wsgi_app().registry
    paths = assets.StaticPaths(buster, spec)

    def both() -> tuple[str, str]:
        request = blank(registry, "/conduit")
        return paths(request, "site.css"), request.static_path(spec + "site.css")

    before, expected = both()
    assert before == expected and before.startswith("/conduit/static/site.css?v=")
    asset.write_text("body { color: red }")
    stat = asset.stat()
    os.utime(asset, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after, expected = both()
    assert after == expected != before


# --- h.date ----------------------------------------------------------------


def test_date_names_every_month_as_strftime_does() -> None:
    reference = PyramidHelpers(Request.blank("/"))
    for month in range(1, 13):
        value = datetime(2025, month, 9, 23, 59)
        assert display_date(value) == reference.date(value) == value.strftime("%B %-d, %Y")
        assert display_date(value.isoformat() + "Z") == reference.date(value.isoformat() + "Z")


# --- whole pages -----------------------------------------------------------

TOKEN = re.compile(r'"token": "([^"]+)"')


def same_page(site: webtest.TestApp, url: str, prefix: str, status: int = 200) -> str:
    """GET ``url``; assert it is byte for byte what PyramidHelpers render,
    the debug API token aside (signed at a different moment: ``iat``)."""
    environ = {REFERENCE: "wanted", "SCRIPT_NAME": wsgi_prefix(prefix)}
    response = site.get(url, extra_environ=environ, status=status)
    reference = response.request.environ[REFERENCE]
    assert reference not in ("wanted", "rendering"), f"{url} was not rendered"
    tokens = site.app.registry["tokens"]
    served_tokens, reference_tokens = TOKEN.findall(response.text), TOKEN.findall(reference)
    assert [tokens.user_id(t) for t in served_tokens] == [
        tokens.user_id(t) for t in reference_tokens
    ]
    assert TOKEN.sub("TOKEN", response.text).encode() == TOKEN.sub("TOKEN", reference).encode()
    assert response.body == response.text.encode()
    return response.text


@pytest.mark.parametrize("prefix", PREFIXES)
def test_pages_are_byte_identical_to_pyramids_helpers(site: webtest.TestApp, prefix: str) -> None:
    author = Browser(site)
    name = author.register("Jösé_ü.-x")
    slugs = [
        author.write(f"Ünïcode title {n}", tags=tags)
        for n, tags in enumerate(["ci/cd, a b", "100%, what?", "#hash, naïve", "", "日本語"])
    ]
    reader = Browser.new(site)
    reader.register()
    favorite = f"/article/{slugs[0]}/favorite"
    forms = reader.get(f"/article/{slugs[0]}").forms.values()
    next(f for f in forms if f.action == favorite).submit(status=303)
    form(reader.get(f"/profile/{quote(name)}"), f"/profile/{quote(name)}/follow").submit(status=303)
    comment = form(reader.get(f"/article/{slugs[1]}"), f"/article/{slugs[1]}/comments")
    comment["body"] = "Nice — ü"
    comment.submit(status=303)

    profile = f"/profile/{quote(name)}"
    pages = [
        "/",
        "/?page=2",
        "/tag/ci/cd",
        "/tag/a%20b",
        "/tag/100%25",
        profile,
        profile + "/favorites",
        f"/article/{slugs[0]}",
        f"/article/{slugs[1]}",
        "/editor",
        "/settings",
    ]
    for who in (author, reader):
        for url in [*pages, "/?feed=following"]:
            same_page(who.app, url, prefix)
        same_page(who.app, "/no/such/page", prefix, status=404)
    same_page(author.app, f"/editor/{slugs[2]}", prefix)
    same_page(reader.app, f"/editor/{slugs[2]}", prefix, status=403)
    visitor = Browser.new(site)
    for url in ["/", "/login", "/register", f"/article/{slugs[1]}", profile, "/tag/ci/cd"]:
        same_page(visitor.app, url, prefix)
    home = same_page(reader.app, "/", prefix)
    assert f'href="{prefix}/profile/J%C3%B6s%C3%A9_%C3%BC.-x"' in home
    assert f'href="{prefix}/static/css/conduit.css?v=' in home


def test_page_full_of_forms_is_never_stored_and_every_form_has_the_token(
    site: webtest.TestApp,
) -> None:
    author = Browser(site)
    author.register()
    for n in range(6):
        author.write(f"Article {n}")
    page = author.get("/")
    posts = [f for f in page.forms.values() if f.method.lower() == "post"]
    assert len(posts) >= 6
    assert page.headers["Cache-Control"] == "no-store, private"  # as before: WebOb sorts
    cookie = site.cookies["csrf_token"]
    assert all(f["csrf_token"].value == cookie for f in posts)
    favorite = next(f for f in posts if f.action.endswith("/favorite"))
    assert favorite.submit().status_int == 303  # the token is accepted


# --- h.debug_state ---------------------------------------------------------


@pytest.fixture
def logged_in_request(wsgi_app: Any, api: Any) -> Iterator[Request]:
    user = api.register()
    request = Request.blank("/", headers={"Authorization": f"Token {user['token']}"})
    env = prepare(request=request, registry=wsgi_app.registry)
    request.tm.begin()
    yield request
    request.tm.abort()
    env["closer"]()


def test_debug_state_signs_one_token_per_request(logged_in_request: Request) -> None:
    request = logged_in_request
    first, second = Helpers(request).debug_state(), Helpers(request).debug_state()
    user = request.identity
    assert first == second and first["user"]["username"] == user.username
    token = first["user"]["token"]
    assert second["user"]["token"] is token  # not signed again
    assert request.registry["tokens"].user_id(token) == user.id
