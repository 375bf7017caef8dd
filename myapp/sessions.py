"""Browser state: the page session (who is logged in) and CSRF tokens.

Sessions
    Logged-in state for the HTML pages lives in a server-side session. With
    ``redis.url`` set (``REDIS_URL``) the session is stored in Redis by
    pyramid_session_redis, so any replica serves any request and logout
    deletes the session server-side. Without Redis (the embedded default,
    ``make run``) Pyramid's signed-cookie session is used: still shared by
    every process that knows the secret, but logout can only clear the
    browser's cookie.

    The cookie is HttpOnly and SameSite=Lax, Secure when the request came over
    https (``session.secure = auto``, the default; ``true``/``false`` pin it).
    Logging in throws the old session away and starts one with a new id, so a
    session id planted before login is worthless (no fixation). The session
    also holds a fingerprint of the password hash: changing the password logs
    every other browser out.

    Only the pages read the session. The JSON API under /api authenticates
    with its ``Authorization`` header alone and never looks at cookies, which
    is why the API needs no CSRF protection (see below). A request without the
    session cookie never creates a session, so anonymous browsing writes
    nothing to Redis ("sessions only where declared").

CSRF
    Every state-changing request to a page view must carry a token
    (``config.set_default_csrf_options(require_csrf=True)``). The token lives
    in its own cookie (Pyramid's double-submit ``CookieCSRFStoragePolicy``,
    HttpOnly, SameSite=Lax) rather than in the session, so the login and
    register forms work without creating a session for every visitor. Pyramid
    also checks ``Origin``/``Referer`` on https. The ``callback`` exempts
    /api: a cross-site page cannot make a browser send an ``Authorization``
    header, so requests the API accepts cannot be forged that way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from pyramid.config import Configurator
from pyramid.csrf import CookieCSRFStoragePolicy, new_csrf_token
from pyramid.interfaces import ICSRFStoragePolicy, ISession
from pyramid.request import Request
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool
from pyramid_session_redis import RedisSessionFactory
from pyramid_session_redis.util import prefixed_id
from zope.interface import implementer

from myapp import identities
from myapp.models import User

log = logging.getLogger(__name__)

SessionFactory = Callable[[Request], ISession]

AUTH_KEY = "auth"
DEFAULT_COOKIE = "session"
CSRF_COOKIE = "csrf_token"
DEFAULT_TIMEOUT = 14 * 24 * 3600
DEFAULT_PREFIX = "conduit:session:"


def is_api(request: Request) -> bool:
    """Requests for the JSON API, which authenticates by header only."""
    # The raw WSGI path: request.path_info decodes it, and raises on bytes
    # that are not UTF-8 (/%ff), which must be a 4xx, not a 500.
    path = request.environ.get("PATH_INFO", "")
    return path == "/api" or path.startswith("/api/")


def csrf_applies(request: Request) -> bool:
    """Pyramid's CSRF ``callback``: check every unsafe request except the API's."""
    return not is_api(request)


def password_fingerprint(user: User) -> str:
    """A short digest of the password hash: it changes when the password does."""
    return identities.password_fingerprint(user.password_hash)


# -- who is logged in --------------------------------------------------------


def session_identity(request: Request) -> User | None:
    """The user the page session names, or None (never raises)."""
    if is_api(request):
        return None
    cookie_name = request.registry.settings.get("session.cookie_name", DEFAULT_COOKIE)
    if cookie_name not in request.cookies:
        # Reading request.session would create a session: don't, for nobody.
        return None
    try:
        auth = request.session.get(AUTH_KEY)
    except redis.RedisError as exc:
        # Redis being down must not turn every page into a 500: the visitor
        # is anonymous until it is back (logging in answers 503).
        log.warning("session store unavailable: %s", exc)
        return None
    if not isinstance(auth, dict) or not isinstance(auth.get("uid"), int):
        return None
    found = identities.load(request, auth["uid"])
    if found is None or auth.get("pw") != found.fingerprint:
        # Deleted user, or the password changed since this browser logged in.
        request.session.invalidate()
        return None
    return found.user


def remember(request: Request, user: User) -> list[tuple[str, str]]:
    """Log ``user`` in: a brand-new session (new id) and a new CSRF token."""
    request.session.invalidate()
    request.session[AUTH_KEY] = {"uid": user.id, "pw": password_fingerprint(user)}
    new_csrf_token(request)
    # The session factory sets its cookie itself (a response callback).
    return []


def forget(request: Request) -> list[tuple[str, str]]:
    """Log out: delete the session (server-side with Redis) and its cookie."""
    request.session.invalidate()
    new_csrf_token(request)
    return []


# -- factories ---------------------------------------------------------------


def _secure_mode(settings: dict[str, Any]) -> bool | None:
    """True/False pin the Secure flag; None means "when the request is https"."""
    value = str(settings.get("session.secure", "auto")).strip().lower()
    return None if value == "auto" else asbool(value)


def _per_scheme(secure: bool | None, build: Callable[[bool], Any]) -> Callable[[Request], Any]:
    """Pick the secure or the plain variant of ``build`` for each request."""
    if secure is not None:
        fixed = build(secure)
        return lambda request: fixed
    plain, https = build(False), build(True)
    return lambda request: https if request.scheme == "https" else plain


def _json_dumps(value: dict[str, Any]) -> bytes:
    # JSON, not pickle: what Redis hands back is data, never code.
    return json.dumps(value, separators=(",", ":")).encode()


def _json_loads(value: bytes) -> dict[str, Any]:
    return json.loads(value)


def _redis_client(settings: dict[str, Any]) -> redis.Redis:
    timeout = float(settings.get("session.redis_timeout", 2.0))
    return redis.Redis.from_url(
        str(settings["redis.url"]),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


def _session_secret(settings: dict[str, Any]) -> str:
    """``session.secret``, or one derived from ``auth.secret`` (never the same string)."""
    secret = settings.get("session.secret")
    if secret:
        return str(secret)
    return hashlib.sha256(b"conduit-session:" + str(settings["auth.secret"]).encode()).hexdigest()


def build_session_factory(settings: dict[str, Any]) -> SessionFactory:
    cookie_name = str(settings.get("session.cookie_name", DEFAULT_COOKIE))
    timeout = int(settings.get("session.timeout", DEFAULT_TIMEOUT))
    secret = _session_secret(settings)
    secure = _secure_mode(settings)

    if settings.get("redis.url"):
        client = _redis_client(settings)
        prefix = str(settings.get("session.redis_prefix", DEFAULT_PREFIX))

        def build(cookie_secure: bool) -> SessionFactory:
            return RedisSessionFactory(
                secret=secret,
                timeout=timeout,
                cookie_name=cookie_name,
                cookie_max_age=timeout,
                cookie_secure=cookie_secure,
                cookie_httponly=True,
                cookie_samesite="Lax",
                redis_client_callable=lambda request, **kw: client,
                serialize=_json_dumps,
                deserialize=_json_loads,
                deserialized_fails_new=True,
                id_generator=lambda: prefixed_id(prefix),
                # Meant to refresh the TTL at most once a tenth of the
                # timeout; pyramid_session_redis (1.7) still sends an EXPIRE
                # on every read of a session (one round trip per logged-in
                # page; its "readheavy" pipeline never executes). Noted, not
                # patched: the maintained fork is the one to fix it.
                timeout_trigger=max(timeout // 10, 60),
            )

        log.info("page sessions in Redis (%s*)", prefix)
    else:

        def build(cookie_secure: bool) -> SessionFactory:
            return SignedCookieSessionFactory(
                secret,
                cookie_name=cookie_name,
                max_age=timeout,
                timeout=timeout,
                reissue_time=max(timeout // 10, 60),
                secure=cookie_secure,
                httponly=True,
                samesite="Lax",
            )

        log.info("page sessions in signed cookies (no redis.url)")

    pick = _per_scheme(secure, build)
    return lambda request: pick(request)(request)


@implementer(ICSRFStoragePolicy)
class CSRFCookiePolicy:
    """Pyramid's double-submit cookie, Secure when the request is https."""

    def __init__(self, secure: bool | None, cookie_name: str = CSRF_COOKIE):
        self.pick = _per_scheme(
            secure,
            lambda flag: CookieCSRFStoragePolicy(
                cookie_name=cookie_name, secure=flag, httponly=True, samesite="Lax"
            ),
        )

    def new_csrf_token(self, request: Request) -> str:
        return self.pick(request).new_csrf_token(request)

    def get_csrf_token(self, request: Request) -> str:
        return self.pick(request).get_csrf_token(request)

    def check_csrf_token(self, request: Request, supplied_token: str) -> bool:
        return self.pick(request).check_csrf_token(request, supplied_token)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    config.set_session_factory(build_session_factory(settings))
    config.set_csrf_storage_policy(CSRFCookiePolicy(_secure_mode(settings)))
    config.set_default_csrf_options(require_csrf=True, callback=csrf_applies)
