"""Sign up, sign in, sign out, and what needs a login — as plain HTML forms."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import webtest

from tests.pages_support import PASSWORD, Browser, errors, form, state, texts


@pytest.fixture
def browser(testapp: webtest.TestApp) -> Browser:
    return Browser(testapp)


def test_register_page_follows_the_selectors_contract(browser: Browser) -> None:
    page = browser.get("/register")
    assert texts(page, "h1") == ["Sign up"]
    register = form(page, "/register")
    assert register.method.upper() == "POST"
    assert {"username", "email", "password", "csrf_token"} <= set(register.fields)
    assert page.html.select('button[type="submit"]')[0].get_text(strip=True) == "Sign up"
    assert page.html.select_one('a.nav-link[href="/login"]').get_text(strip=True) == "Sign in"
    assert page.html.select_one("a.nav-link.active").get_text(strip=True) == "Sign up"


def test_register_logs_in_and_redirects_home(browser: Browser) -> None:
    name = browser.register()
    home = browser.get("/")
    link = home.html.select_one(f'nav a[href="/profile/{name}"]')
    assert link is not None and link.get_text(strip=True) == name
    assert "default-avatar.svg" in link.select_one("img.user-pic")["src"]
    assert home.html.select_one('a[href="/editor"]') is not None
    assert home.html.select_one('a[href="/login"]') is None
    user = state(home)["user"]
    assert user["username"] == name and user["email"] == f"{name}@example.com"
    assert user["bio"] is None and user["image"] is None
    # The token is a real API token for that user.
    me = browser.app.get("/api/user", headers={"Authorization": f"Token {user['token']}"})
    assert me.json["user"]["username"] == name


def test_session_cookie_flags(testapp: webtest.TestApp) -> None:
    register = form(testapp.get("/register"), "/register")
    register["username"], register["email"] = "flags", "flags@example.com"
    register["password"] = PASSWORD
    result = register.submit(status=303)
    cookies = [h for h in result.headerlist if h[0] == "Set-Cookie"]
    session = [v for _, v in cookies if v.startswith("session=")]
    assert len(session) == 1
    flags = session[0].lower()
    assert "httponly" in flags and "samesite=lax" in flags
    assert "secure" not in flags  # plain http here; https gets Secure (see Redis tests)
    csrf = [v for _, v in cookies if v.startswith("csrf_token=")]
    assert csrf and "httponly" in csrf[0].lower() and "samesite=lax" in csrf[0].lower()


def test_register_errors_rerender_the_form_with_input_kept(browser: Browser) -> None:
    page = browser.get("/register")
    register = form(page, "/register")
    register["username"], register["email"], register["password"] = "", "not-an-email", "x"
    result = register.submit(status=422)
    assert "username can't be blank" in errors(result)
    assert "email is invalid" in errors(result)
    assert any(message.startswith("password is too short") for message in errors(result))
    again = form(result, "/register")
    assert again["email"].value == "not-an-email"
    assert again["password"].value == ""  # never echoed back
    assert texts(result, "h1") == ["Sign up"]


def test_register_duplicate_email_and_username(testapp: webtest.TestApp) -> None:
    first = Browser(testapp)
    name = first.register()
    second = Browser.new(testapp)
    register = form(second.get("/register"), "/register")
    register["username"], register["email"], register["password"] = (
        name,
        f"{name}@example.com",
        PASSWORD,
    )
    result = register.submit(status=422)
    assert "username has already been taken" in errors(result)
    assert "email has already been taken" in errors(result)
    assert form(result, "/register")["username"].value == name


def test_empty_register_form_stays_on_register(browser: Browser) -> None:
    result = form(browser.get("/register"), "/register").submit(status=422)
    assert result.request.path == "/register"
    assert errors(result)
    assert result.html.select_one('a[href="/login"]').get_text(strip=True) == "Sign in"


def test_login_and_logout(testapp: webtest.TestApp) -> None:
    browser = Browser(testapp)
    name = browser.register()
    browser.logout()
    home = browser.get("/")
    assert home.html.select_one('a[href="/login"]') is not None
    assert home.html.select_one(f'a[href="/profile/{name}"]') is None
    assert state(home) == {"user": None}
    result = browser.login(f"{name}@example.com")
    assert result.location.endswith("/")
    assert browser.get("/").html.select_one(f'nav a[href="/profile/{name}"]') is not None


def test_login_is_case_insensitive_on_email(browser: Browser) -> None:
    name = browser.register()
    browser.logout()
    browser.login(f"{name.upper()}@EXAMPLE.COM")
    assert state(browser.get("/"))["user"]["username"] == name


def test_wrong_password_shows_an_error_on_the_login_page(browser: Browser) -> None:
    name = browser.register()
    browser.logout()
    result = browser.login(f"{name}@example.com", "wrong-password", status=422)
    assert errors(result) == ["email or password is invalid"]
    assert result.request.path == "/login"
    assert form(result, "/login")["email"].value == f"{name}@example.com"
    assert texts(result, "h1") == ["Sign in"]
    assert state(result) == {"user": None}


def test_unknown_email_and_blank_fields(browser: Browser) -> None:
    result = browser.login("nobody@example.com", "whatever-password", status=422)
    assert errors(result) == ["email or password is invalid"]
    blank = browser.login("", "", status=422)
    assert "email can't be blank" in errors(blank) and "password can't be blank" in errors(blank)


def test_login_returns_to_next_but_never_to_another_site(testapp: webtest.TestApp) -> None:
    browser = Browser(testapp)
    name = browser.register()
    browser.logout()
    for target, expected in [
        ("/editor", "/editor"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        page = browser.get(f"/login?next={target}")
        login = form(page, "/login")
        login["email"], login["password"] = f"{name}@example.com", PASSWORD
        result = login.submit(status=303)
        assert urlsplit(result.location).path == expected, target
        assert urlsplit(result.location).netloc == "localhost"
        browser.logout()


@pytest.mark.parametrize("path", ["/editor", "/settings", "/editor/some-slug", "/?feed=following"])
def test_pages_that_need_a_login_redirect_to_it(browser: Browser, path: str) -> None:
    result = browser.get(path, status=303)
    location = urlsplit(result.location)
    assert location.path == "/login"
    # next is percent-encoded: the URL never contains "/editor/..." literally.
    assert "/editor" not in location.query
    assert parse_qs(location.query)["next"] == [path]


def test_logged_in_user_visiting_login_goes_home(browser: Browser) -> None:
    browser.register()
    assert browser.get("/login", status=303).location.endswith("/")
    assert browser.get("/register", status=303).location.endswith("/")


def test_post_without_csrf_token_is_rejected(browser: Browser) -> None:
    name = browser.register()
    # Logout without the token: refused, and still logged in.
    result = browser.app.post("/logout", status=400)
    assert "This form has expired" in result.text
    assert result.html.select_one("nav.navbar") is not None
    assert state(browser.get("/"))["user"]["username"] == name
    # A wrong token is no better.
    browser.app.post("/logout", {"csrf_token": "forged"}, status=400)
    assert state(browser.get("/"))["user"]["username"] == name


def test_login_form_without_csrf_token_is_rejected(testapp: webtest.TestApp) -> None:
    browser = Browser(testapp)
    name = browser.register()
    other = Browser.new(testapp)
    other.app.post("/login", {"email": f"{name}@example.com", "password": PASSWORD}, status=400)
    assert state(other.get("/")) == {"user": None}


def test_csrf_token_is_rotated_at_login(browser: Browser) -> None:
    before = form(browser.get("/login"), "/login")["csrf_token"].value
    browser.register()
    after = form(browser.get("/settings"), "/settings")["csrf_token"].value
    assert before != after


def test_new_password_logs_out_other_browsers(testapp: webtest.TestApp) -> None:
    first = Browser(testapp)
    name = first.register()
    second = Browser.new(testapp)
    second.login(f"{name}@example.com")
    assert state(second.get("/"))["user"]["username"] == name
    settings = form(first.get("/settings"), "/settings")
    settings["password"] = "a-brand-new-password"
    settings.submit(status=303)
    # The browser that changed it stays logged in; the other one is out.
    assert state(first.get("/"))["user"]["username"] == name
    assert state(second.get("/")) == {"user": None}
    second.login(f"{name}@example.com", "a-brand-new-password")
    assert state(second.get("/"))["user"]["username"] == name
