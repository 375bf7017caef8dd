"""Page sessions in Redis, as production runs them: any replica serves any
request, login rotates the session id, logout deletes the session, cookies
are HttpOnly/SameSite=Lax and Secure over https, and a Redis outage leaves
visitors browsing anonymously instead of failing.

Each "replica" is a separately configured app sharing Redis (under a key
prefix unique to this test) and the test's database connection.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import webtest
from sqlalchemy.engine import Connection

from myapp.config import configure
from tests.pages_support import PASSWORD, Browser, form, state

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

Replica = Callable[..., webtest.TestApp]


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"conduit-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def replica(app_settings: dict[str, Any], connection: Connection, prefix: str) -> Iterator[Replica]:
    apps: list[Any] = []

    def make(https: bool = False, **overrides: Any) -> webtest.TestApp:
        settings = {k: v for k, v in app_settings.items() if k != "_explicit"}
        settings.update(
            {
                "redis.url": REDIS_URL,
                "session.redis_prefix": prefix + "session:",
                "cache.prefix": prefix + "cache:",
            }
        )
        settings.update(overrides)
        settings["_explicit"] = list(settings)
        app = configure(settings).make_wsgi_app()
        app.registry["dbsession_factory"].configure(
            bind=connection, join_transaction_mode="create_savepoint"
        )
        apps.append(app)
        environ = {"HTTP_HOST": "localhost"}
        if https:
            environ["wsgi.url_scheme"] = "https"
        return webtest.TestApp(app, extra_environ=environ)

    yield make
    for app in apps:
        app.registry["db_engine"].dispose()


def same_browser(source: webtest.TestApp, target: webtest.TestApp) -> webtest.TestApp:
    """``target`` carrying ``source``'s cookies: the next request of one browser
    landing on another replica."""
    for cookie in source.cookiejar:
        target.set_cookie(cookie.name, cookie.value)
    return target


def session_keys(store: redis.Redis, prefix: str) -> list[bytes]:
    return list(store.scan_iter(match=prefix + "session:*", count=1000))


def test_logged_in_on_one_replica_still_logged_in_on_another(replica: Replica) -> None:
    a, b = replica(), replica()
    alice = Browser(a)
    name = alice.register()
    on_b = Browser(same_browser(a, b))
    home = on_b.get("/")
    assert state(home)["user"]["username"] == name
    assert home.html.select_one(f'nav a[href="/profile/{name}"]') is not None
    # ...and can keep working there: a form from B, posted to B.
    slug = on_b.write("Written on replica B", tags="replicas")
    # Back on A (same browser, cookies from B's responses included).
    back_on_a = Browser(same_browser(b, a))
    page = back_on_a.get(f"/article/{slug}")
    links = [" ".join(a.get_text().split()) for a in page.html.select("a")]
    assert links.count("Edit Article") == 2
    assert "Written on replica B" in back_on_a.get("/tag/replicas").text


def test_session_is_json_in_redis_under_the_prefix(
    replica: Replica, store: redis.Redis, prefix: str
) -> None:
    app = replica()
    assert session_keys(store, prefix) == []
    app.get("/")
    app.get("/login")
    assert session_keys(store, prefix) == []  # visitors write nothing to Redis
    Browser(app).register()
    keys = session_keys(store, prefix)
    assert len(keys) == 1
    payload = json.loads(store.get(keys[0]))
    assert set(payload["m"]["auth"]) == {"uid", "pw"}
    assert 0 < store.ttl(keys[0]) <= 14 * 24 * 3600


def test_login_rotates_the_session_id(replica: Replica, store: redis.Redis, prefix: str) -> None:
    app = replica()
    attacker = Browser(app)
    attacker.register()
    planted = app.cookies["session"]
    (planted_key,) = session_keys(store, prefix)
    # The attacker's session id is planted in the victim's browser...
    victim = Browser(replica())
    victim_name = Browser(replica()).register()
    victim.app.set_cookie("session", planted)
    token = form(victim.get("/settings"), "/settings")["csrf_token"].value
    # ...and the victim signs in: a brand-new id, the planted one is gone.
    victim.app.post(
        "/login",
        {"csrf_token": token, "email": f"{victim_name}@example.com", "password": PASSWORD},
        status=303,
    )
    assert victim.app.cookies["session"] != planted
    assert store.get(planted_key) is None
    assert state(victim.get("/"))["user"]["username"] == victim_name
    assert state(attacker.get("/")) == {"user": None}


def test_logout_deletes_the_session_server_side(
    replica: Replica, store: redis.Redis, prefix: str
) -> None:
    app = replica()
    browser = Browser(app)
    browser.register()
    stolen = app.cookies["session"]
    assert len(session_keys(store, prefix)) == 1
    browser.logout()
    assert session_keys(store, prefix) == []
    assert "session" not in app.cookies
    # Replaying the old cookie (another replica, say) is worth nothing.
    replay = replica()
    replay.set_cookie("session", stolen)
    assert state(replay.get("/")) == {"user": None}


def test_cookies_are_secure_over_https_and_origin_is_checked(replica: Replica) -> None:
    app = replica(https=True)
    page = app.get("/register")
    csrf_cookie = next(v for k, v in page.headerlist if k == "Set-Cookie")
    assert "; secure" in csrf_cookie.lower() and "httponly" in csrf_cookie.lower()
    register = form(page, "/register")
    register["username"], register["email"] = "secure", "secure@example.com"
    register["password"] = PASSWORD
    # Over https Pyramid also checks where the form came from: no Origin nor
    # Referer, or another site's, is refused even with the right token.
    fields = dict(register.submit_fields())
    app.post("/register", fields, status=400)
    app.post("/register", fields, headers={"Origin": "https://evil.example"}, status=400)
    result = app.post("/register", fields, headers={"Origin": "https://localhost"}, status=303)
    session_cookie = [v for k, v in result.headerlist if k == "Set-Cookie" and "session=" in v]
    flags = session_cookie[0].lower()
    assert "; secure" in flags and "httponly" in flags and "samesite=lax" in flags


def test_redis_down_means_anonymous_pages_and_a_503_login(
    replica: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    working = replica()
    browser = Browser(working)
    name = browser.register()
    # Same secret, but its Redis is unreachable (nothing listens on port 1).
    broken = replica(**{"redis.url": "redis://127.0.0.1:1/0", "cache.backend": "memory"})
    same_browser(working, broken)
    home = broken.get("/", status=200)
    assert state(home) == {"user": None}
    assert "session store unavailable" in caplog.text
    token = form(broken.get("/login"), "/login")["csrf_token"].value
    result = broken.post(
        "/login",
        {"csrf_token": token, "email": f"{name}@example.com", "password": PASSWORD},
        status=503,
    )
    assert "Signing in is unavailable" in result.text
    assert result.headers["Retry-After"] == "5"
